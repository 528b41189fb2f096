//! Images that do not come from a registry: OCI image layouts (a directory
//! or a tar of one, as `skopeo copy … oci:` / `oci-archive:` write them) and
//! `docker save` archives go into the cache; cached images come out again in
//! either format, or unpacked into a directory.
//!
//! An archive is hostile input like a registry: every blob is hashed on its
//! way into the cache and must match the digest it is named by, and a name is
//! tagged only once everything its manifest needs is stored. A failed import
//! leaves at most untagged blobs, which `hull cache clean` removes.
//!
//! One job per file: this one finds out what an archive is and reads it;
//! `oci_layout.rs` and `docker_save.rs` import each kind, `export.rs` writes
//! cached images out in either kind or as a directory.

mod docker_save;
mod export;
mod oci_layout;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use contract::Arch;
use report::BadInput;
use serde_json::Value;

use crate::cache::{digest_hex, Cache, CacheError};
pub use export::{export, ExportFormat, Exported};

/// One variant per failing step. An archive that is not what it should be
/// (unknown kind, malformed, nameless) and a target that exists are the
/// user's input being wrong: those carry a [`BadInput`] marker (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: neither an OCI image layout (oci-layout, index.json) nor a docker save archive (manifest.json)")]
    Unknown {
        path: PathBuf,
        #[source]
        input: BadInput,
    },
    #[error("{path}: {message}")]
    Bad {
        path: PathBuf,
        message: String,
        #[source]
        input: BadInput,
    },
    #[error("{path}: image {what} has no name: pass --name NAME")]
    NoName {
        path: PathBuf,
        what: String,
        #[source]
        input: BadInput,
    },
    #[error("{path}: blob {digest} does not match its digest")]
    Digest { path: PathBuf, digest: String },
    #[error("{path} exists; remove it first or choose another -o")]
    Exists {
        path: PathBuf,
        #[source]
        input: BadInput,
    },
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("{path}")]
    Tree {
        path: PathBuf,
        #[source]
        source: fstree::TreeError,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One name an import tagged.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Imported {
    pub name: String,
    pub arch: String,
    pub digest: String,
}

/// Small JSON files (manifests, index) read from an archive are capped: a
/// multi-gigabyte "manifest.json" is an attack, not an image.
const MAX_JSON: u64 = 16 << 20;

/// Imports an OCI layout (directory or tar) or a docker save archive
/// (tar, optionally gzipped). `name` overrides the names the archive gives.
pub fn import(
    cache: &Cache,
    path: &Path,
    name: Option<&str>,
) -> Result<Vec<Imported>, ArchiveError> {
    let _writer = cache.writer_lock()?;
    if path.is_dir() {
        if !path.join("oci-layout").is_file() {
            return Err(ArchiveError::Unknown {
                path: path.into(),
                input: BadInput::marker(),
            });
        }
        let index = read_json(&path.join("index.json"))?;
        // Copy the blobs the index reaches, verifying each.
        for d in oci_layout::reachable(path, &index)? {
            let file = path.join("blobs/sha256").join(digest_hex(&d)?);
            let f = fs::File::open(&file).map_err(io(&file))?;
            store(cache, f, &d, path)?;
        }
        return oci_layout::tag(cache, path, &index, name);
    }
    // A tar: first pass reads the small JSON files, second stores blobs.
    let small = scan(path, |p| {
        matches!(p, "oci-layout" | "index.json" | "manifest.json")
    })?;
    if let Some(manifest) = small.get("manifest.json") {
        let list: Value = serde_json::from_slice(manifest).map_err(|e| bad(path, e))?;
        return docker_save::import(cache, path, &list, name);
    }
    if let (Some(_), Some(index)) = (small.get("oci-layout"), small.get("index.json")) {
        let index: Value = serde_json::from_slice(index).map_err(|e| bad(path, e))?;
        for_each_entry(path, |entry_path, reader| {
            if let Some(hex) = entry_path.strip_prefix("blobs/sha256/") {
                let d = format!("sha256:{hex}");
                digest_hex(&d)?;
                store(cache, reader, &d, path)?;
            }
            Ok(())
        })?;
        return oci_layout::tag(cache, path, &index, name);
    }
    Err(ArchiveError::Unknown {
        path: path.into(),
        input: BadInput::marker(),
    })
}

fn bad(path: &Path, e: impl std::fmt::Display) -> ArchiveError {
    ArchiveError::Bad {
        path: path.into(),
        message: e.to_string(),
        input: BadInput::marker(),
    }
}

fn store(cache: &Cache, reader: impl Read, digest: &str, path: &Path) -> Result<(), ArchiveError> {
    match cache.put_blob_reader(reader, Some(digest)) {
        Ok(_) => Ok(()),
        Err(CacheError::Corrupt { digest }) => Err(ArchiveError::Digest {
            path: path.into(),
            digest,
        }),
        Err(e) => Err(e.into()),
    }
}

fn read_json(path: &Path) -> Result<Value, ArchiveError> {
    let f = fs::File::open(path).map_err(io(path))?;
    let mut data = Vec::new();
    f.take(MAX_JSON).read_to_end(&mut data).map_err(io(path))?;
    serde_json::from_slice(&data).map_err(|e| bad(path, e))
}

/// Opens a tar, decompressing gzip when it starts with the gzip magic.
fn open_tar(path: &Path) -> Result<Box<dyn Read>, ArchiveError> {
    let f = fs::File::open(path).map_err(io(path))?;
    let mut r = BufReader::new(f);
    let gz = r.fill_buf().map_err(io(path))?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(flate2::read::GzDecoder::new(r))
    } else {
        Box::new(r)
    })
}

/// Calls `f` with each regular file of the tar at `path` (path without `./`).
fn for_each_entry(
    path: &Path,
    mut f: impl FnMut(&str, &mut dyn Read) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    let mut archive = tar::Archive::new(open_tar(path)?);
    for entry in archive.entries().map_err(io(path))? {
        let mut entry = entry.map_err(io(path))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let p = entry
            .path()
            .map_err(io(path))?
            .to_string_lossy()
            .into_owned();
        let p = p.trim_start_matches("./").to_string();
        f(&p, &mut entry)?;
    }
    Ok(())
}

fn scan(
    path: &Path,
    want: impl Fn(&str) -> bool,
) -> Result<BTreeMap<String, Vec<u8>>, ArchiveError> {
    let mut out = BTreeMap::new();
    for_each_entry(path, |p, r| {
        if want(p) {
            let mut data = Vec::new();
            r.take(MAX_JSON).read_to_end(&mut data).map_err(io(path))?;
            out.insert(p.to_string(), data);
        }
        Ok(())
    })?;
    Ok(out)
}

/// The architecture an image's config names, when hull builds for it: a
/// missing or unknown one is an error, never a default.
fn image_arch(path: &Path, what: &str, config: &Value) -> Result<Arch, ArchiveError> {
    let named = config["architecture"].as_str().unwrap_or("");
    named.parse().map_err(|_| {
        bad(
            path,
            format!(
                "image {what} is for architecture {named:?}; hull builds for x86_64 (amd64) and aarch64 (arm64)"
            ),
        )
    })
}
