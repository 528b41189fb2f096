//! Images that do not come from a registry: OCI image layouts (a directory
//! or a tar of one, as `skopeo copy … oci:` / `oci-archive:` write them) and
//! `docker save` archives go into the cache; cached images come out again in
//! either format, or unpacked into a directory.
//!
//! An archive is hostile input like a registry: every blob is hashed on its
//! way into the cache and must match the digest it is named by, and a name is
//! tagged only once everything its manifest needs is stored. A failed import
//! leaves at most untagged blobs, which `hull cache clean` removes.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::cache::{
    blob_digests, digest_hex, oci_arch, ref_name, Cache, CacheError, INDEX_DOCKER, INDEX_OCI,
    MANIFEST_OCI,
};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: neither an OCI image layout (oci-layout, index.json) nor a docker save archive (manifest.json)")]
    Unknown { path: PathBuf },
    #[error("{path}: {message}")]
    Bad { path: PathBuf, message: String },
    #[error("{path}: image {what} has no name: pass --name NAME")]
    NoName { path: PathBuf, what: String },
    #[error("{path}: blob {digest} does not match its digest")]
    Digest { path: PathBuf, digest: String },
    #[error("{path} exists; remove it first or choose another -o")]
    Exists { path: PathBuf },
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
            return Err(ArchiveError::Unknown { path: path.into() });
        }
        let index = read_json(&path.join("index.json"))?;
        // Copy the blobs the index reaches, verifying each.
        for d in reachable_in_layout(path, &index)? {
            let file = path.join("blobs/sha256").join(digest_hex(&d)?);
            let f = fs::File::open(&file).map_err(io(&file))?;
            store(cache, f, &d, path)?;
        }
        return tag_layout(cache, path, &index, name);
    }
    // A tar: first pass reads the small JSON files, second stores blobs.
    let small = scan(path, |p| {
        matches!(p, "oci-layout" | "index.json" | "manifest.json")
    })?;
    if let Some(manifest) = small.get("manifest.json") {
        let list: Value = serde_json::from_slice(manifest).map_err(|e| bad(path, e))?;
        return import_docker(cache, path, &list, name);
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
        return tag_layout(cache, path, &index, name);
    }
    Err(ArchiveError::Unknown { path: path.into() })
}

fn bad(path: &Path, e: impl std::fmt::Display) -> ArchiveError {
    ArchiveError::Bad {
        path: path.into(),
        message: e.to_string(),
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

/// Every digest an OCI layout's index reaches, read from the layout dir.
fn reachable_in_layout(dir: &Path, index: &Value) -> Result<Vec<String>, ArchiveError> {
    let mut out = Vec::new();
    let mut queue: Vec<Value> = index["manifests"].as_array().cloned().unwrap_or_default();
    while let Some(desc) = queue.pop() {
        let Some(d) = desc["digest"].as_str() else {
            continue;
        };
        out.push(d.to_string());
        let file = dir.join("blobs/sha256").join(digest_hex(d)?);
        let v = read_json(&file)?;
        if let Some(m) = v["manifests"].as_array() {
            queue.extend(m.iter().cloned());
        } else {
            out.extend(blob_digests(&v));
        }
    }
    Ok(out)
}

/// The name to tag: `--name`, else the layout's ref.name when it is a whole
/// reference (skopeo writes what followed `oci:DIR:`).
fn pick_name(
    path: &Path,
    given: Option<&str>,
    annotation: Option<&str>,
    what: &str,
) -> Result<String, ArchiveError> {
    if let Some(n) = given {
        return Ok(n.to_string());
    }
    match annotation {
        Some(a) if a.contains(':') || a.contains('/') => Ok(a.to_string()),
        _ => Err(ArchiveError::NoName {
            path: path.into(),
            what: what.to_string(),
        }),
    }
}

/// Tags every image an OCI layout's index names, now that its blobs are in
/// the cache.
fn tag_layout(
    cache: &Cache,
    path: &Path,
    index: &Value,
    name: Option<&str>,
) -> Result<Vec<Imported>, ArchiveError> {
    let mut out = Vec::new();
    for desc in index["manifests"].as_array().into_iter().flatten() {
        let d = desc["digest"].as_str().unwrap_or("");
        let what = ref_name(desc).unwrap_or(d).to_string();
        let n = pick_name(path, name, ref_name(desc), &what)?;
        let media = desc["mediaType"].as_str().unwrap_or("");
        let v = cache.json_blob(d)?;
        let manifests: Vec<Value> =
            if media == INDEX_OCI || media == INDEX_DOCKER || v["manifests"].is_array() {
                v["manifests"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|m| m["platform"]["os"] == "linux")
                    .cloned()
                    .collect()
            } else {
                vec![desc.clone()]
            };
        for m in manifests {
            let md = m["digest"].as_str().unwrap_or("").to_string();
            let manifest = cache.json_blob(&md)?;
            for b in blob_digests(&manifest) {
                if !cache.has_blob(&b) {
                    return Err(bad(
                        path,
                        format!("blob {b} named by manifest {md} is not in the archive"),
                    ));
                }
            }
            let config = cache.json_blob(manifest["config"]["digest"].as_str().unwrap_or(""))?;
            let arch = config["architecture"]
                .as_str()
                .unwrap_or("amd64")
                .to_string();
            let media = manifest["mediaType"].as_str().unwrap_or(MANIFEST_OCI);
            let size = cache.blob(&md)?.len();
            cache.tag(&n, &arch, media, &md, size)?;
            out.push(Imported {
                name: n.clone(),
                arch,
                digest: md,
            });
        }
    }
    if out.is_empty() {
        return Err(bad(path, "the index names no linux image"));
    }
    Ok(out)
}

/// A `docker save` archive: `manifest.json` lists each image's config file,
/// layer tars and tags. Layers become blobs as they are (their digest is the
/// diff_id the config names), and an OCI manifest is written for them.
fn import_docker(
    cache: &Cache,
    path: &Path,
    list: &Value,
    name: Option<&str>,
) -> Result<Vec<Imported>, ArchiveError> {
    let images = list
        .as_array()
        .ok_or_else(|| bad(path, "manifest.json is not a list"))?;
    let mut wanted = std::collections::BTreeSet::new();
    for img in images {
        if let Some(c) = img["Config"].as_str() {
            wanted.insert(c.trim_start_matches("./").to_string());
        }
        for l in img["Layers"].as_array().into_iter().flatten() {
            if let Some(l) = l.as_str() {
                wanted.insert(l.trim_start_matches("./").to_string());
            }
        }
    }
    // file in the archive -> (digest, size, gzip?)
    let mut stored: BTreeMap<String, (String, u64, bool)> = BTreeMap::new();
    for_each_entry(path, |p, r| {
        if wanted.contains(p) {
            let mut r = BufReader::new(r);
            let gz = r.fill_buf().map_err(io(path))?.starts_with(&[0x1f, 0x8b]);
            // Blob-named files (newer docker) must match their name.
            let expected = p
                .strip_prefix("blobs/sha256/")
                .map(|h| format!("sha256:{h}"));
            let (d, size) = match cache.put_blob_reader(r, expected.as_deref()) {
                Ok(x) => x,
                Err(CacheError::Corrupt { digest }) => {
                    return Err(ArchiveError::Digest {
                        path: path.into(),
                        digest,
                    })
                }
                Err(e) => return Err(e.into()),
            };
            stored.insert(p.to_string(), (d, size, gz));
        }
        Ok(())
    })?;
    let get = |p: &str| {
        stored
            .get(p.trim_start_matches("./"))
            .cloned()
            .ok_or_else(|| {
                bad(
                    path,
                    format!("{p} is named by manifest.json but not in the archive"),
                )
            })
    };
    let mut out = Vec::new();
    for img in images {
        let (config_digest, config_size, _) = get(img["Config"].as_str().unwrap_or(""))?;
        let config = cache.json_blob(&config_digest)?;
        let diff_ids: Vec<&str> = config["rootfs"]["diff_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        let mut layers = Vec::new();
        for (i, l) in img["Layers"].as_array().into_iter().flatten().enumerate() {
            let (d, size, gz) = get(l.as_str().unwrap_or(""))?;
            // An uncompressed layer's digest is its diff_id: check it here,
            // so a layer swapped inside the archive is caught.
            if !gz && diff_ids.get(i).is_some_and(|want| *want != d) {
                return Err(ArchiveError::Digest {
                    path: path.into(),
                    digest: diff_ids[i].to_string(),
                });
            }
            layers.push(json!({
                "mediaType": if gz { "application/vnd.oci.image.layer.v1.tar+gzip" } else { "application/vnd.oci.image.layer.v1.tar" },
                "digest": d,
                "size": size,
            }));
        }
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_OCI,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": layers,
        }))
        .unwrap_or_default();
        let md = cache.put_blob(&manifest)?;
        let arch = config["architecture"]
            .as_str()
            .unwrap_or("amd64")
            .to_string();
        let tags: Vec<String> = match name {
            Some(n) => vec![n.to_string()],
            None => img["RepoTags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(String::from))
                .collect(),
        };
        if tags.is_empty() {
            return Err(ArchiveError::NoName {
                path: path.into(),
                what: config_digest,
            });
        }
        for t in tags {
            cache.tag(&t, &arch, MANIFEST_OCI, &md, manifest.len())?;
            out.push(Imported {
                name: t,
                arch: arch.clone(),
                digest: md.clone(),
            });
        }
    }
    Ok(out)
}

/// Output formats of `hull cache export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// A tar of an OCI image layout.
    Oci,
    /// A `docker save`/`docker load` archive.
    Docker,
    /// The image's root filesystem, unpacked into a directory.
    Filesystem,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "oci" => Ok(ExportFormat::Oci),
            "docker" => Ok(ExportFormat::Docker),
            "filesystem" => Ok(ExportFormat::Filesystem),
            _ => Err(format!(
                "unknown export format {s:?}: use oci, docker or filesystem"
            )),
        }
    }
}

/// What an export left out.
#[derive(Debug, Default)]
pub struct Exported {
    /// Device nodes and FIFOs of the image (`filesystem` only).
    pub skipped: Vec<PathBuf>,
    /// Extended attributes the target filesystem refused (`filesystem` only).
    pub xattrs_refused: usize,
}

/// Writes the image `name` for `arch` to `out`. Files are written under a
/// temp name and renamed, a directory is filled beside `out` and renamed:
/// a failed export leaves nothing at `out`.
pub fn export(
    cache: &Cache,
    name: &str,
    arch: &str,
    format: ExportFormat,
    out: &Path,
) -> Result<Exported, ArchiveError> {
    if out.exists() {
        return Err(ArchiveError::Exists { path: out.into() });
    }
    let digest = cache
        .lookup(name, arch)?
        .ok_or_else(|| CacheError::NotFound {
            name: name.to_string(),
            arch: arch.to_string(),
        })?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io(&parent))?;
    match format {
        ExportFormat::Filesystem => {
            let img = cache.read_manifest(name, &digest)?;
            let tmp = tempfile::Builder::new()
                .prefix(".hull-export")
                .tempdir_in(&parent)
                .map_err(io(&parent))?;
            let refused = crate::unpack::write_tree(&img.rootfs, tmp.path()).map_err(|source| {
                ArchiveError::Tree {
                    path: out.into(),
                    source,
                }
            })?;
            // The top directory is the image's root: 0755 like every root.
            fs::set_permissions(
                tmp.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .map_err(io(out))?;
            let kept = tmp.keep();
            fs::rename(&kept, out).map_err(io(out))?;
            Ok(Exported {
                skipped: img.skipped,
                xattrs_refused: refused,
            })
        }
        ExportFormat::Oci | ExportFormat::Docker => {
            let mut tmp = tempfile::NamedTempFile::new_in(&parent).map_err(io(&parent))?;
            {
                let mut b = tar::Builder::new(std::io::BufWriter::new(tmp.as_file_mut()));
                if format == ExportFormat::Oci {
                    write_oci(cache, name, arch, &digest, &mut b)?;
                } else {
                    write_docker(cache, name, &digest, &mut b)?;
                }
                b.into_inner()
                    .and_then(|mut w| std::io::Write::flush(&mut w))
                    .map_err(io(out))?;
            }
            fs::set_permissions(
                tmp.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o644),
            )
            .map_err(io(out))?;
            tmp.persist(out).map_err(|e| ArchiveError::Io {
                path: out.into(),
                source: e.error,
            })?;
            Ok(Exported::default())
        }
    }
}

fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn append_bytes<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    data: &[u8],
) -> Result<(), ArchiveError> {
    b.append_data(&mut header(data.len() as u64), path, data)
        .map_err(io(Path::new(path)))
}

fn append_blob<W: std::io::Write>(
    cache: &Cache,
    b: &mut tar::Builder<W>,
    path: &str,
    digest: &str,
) -> Result<(), ArchiveError> {
    cache.verify_blob(digest)?;
    let file = cache.blob_path(digest)?;
    let mut f = fs::File::open(&file).map_err(io(&file))?;
    let len = f.metadata().map_err(io(&file))?.len();
    f.rewind().map_err(io(&file))?;
    b.append_data(&mut header(len), path, f).map_err(io(&file))
}

fn write_oci<W: std::io::Write>(
    cache: &Cache,
    name: &str,
    arch: &str,
    digest: &str,
    b: &mut tar::Builder<W>,
) -> Result<(), ArchiveError> {
    let manifest_bytes = cache.blob(digest)?;
    let manifest: Value =
        serde_json::from_slice(&manifest_bytes).map_err(|e| bad(Path::new(name), e))?;
    append_bytes(b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": INDEX_OCI,
        "manifests": [{
            "mediaType": manifest["mediaType"].as_str().unwrap_or(MANIFEST_OCI),
            "digest": digest,
            "size": manifest_bytes.len(),
            "platform": {"architecture": oci_arch(arch), "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": name},
        }],
    });
    append_bytes(
        b,
        "index.json",
        &serde_json::to_vec(&index).unwrap_or_default(),
    )?;
    let mut all = vec![digest.to_string()];
    all.extend(blob_digests(&manifest));
    all.sort();
    all.dedup();
    for d in all {
        append_blob(cache, b, &format!("blobs/sha256/{}", digest_hex(&d)?), &d)?;
    }
    Ok(())
}

/// docker's own layout: `<config hex>.json`, `<diff_id hex>/layer.tar`
/// (uncompressed, so its digest is the diff_id), `manifest.json`,
/// `repositories`.
fn write_docker<W: std::io::Write>(
    cache: &Cache,
    name: &str,
    digest: &str,
    b: &mut tar::Builder<W>,
) -> Result<(), ArchiveError> {
    let manifest = cache.json_blob(digest)?;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let config_hex = digest_hex(&config_digest)?.to_string();
    append_blob(cache, b, &format!("{config_hex}.json"), &config_digest)?;
    let mut layer_paths = Vec::new();
    for l in manifest["layers"].as_array().into_iter().flatten() {
        let d = l["digest"].as_str().unwrap_or("");
        cache.verify_blob(d)?;
        let file = cache.blob_path(d)?;
        // Decompress to a temp file (layers can be large), hashing as we go.
        let mut tmp = tempfile::tempfile_in(cache.tmp_dir()).map_err(io(&file))?;
        let f = BufReader::new(fs::File::open(&file).map_err(io(&file))?);
        let mut reader: Box<dyn Read> = {
            let mut f = f;
            if f.fill_buf().map_err(io(&file))?.starts_with(&[0x1f, 0x8b]) {
                Box::new(flate2::read::GzDecoder::new(f))
            } else {
                Box::new(f)
            }
        };
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut len = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(io(&file))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            std::io::Write::write_all(&mut tmp, &buf[..n]).map_err(io(&file))?;
            len += n as u64;
        }
        let diff_hex = hex::encode(h.finalize());
        tmp.rewind().map_err(io(&file))?;
        let p = format!("{diff_hex}/layer.tar");
        b.append_data(&mut header(len), &p, tmp)
            .map_err(io(&file))?;
        layer_paths.push(p);
    }
    // docker wants REPO:TAG; a digest name has no tag to give.
    let tags: Vec<String> = if name.contains('@') {
        Vec::new()
    } else if name.rsplit('/').next().unwrap_or("").contains(':') {
        vec![name.to_string()]
    } else {
        vec![format!("{name}:latest")]
    };
    let list = json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": tags,
        "Layers": layer_paths,
    }]);
    append_bytes(
        b,
        "manifest.json",
        &serde_json::to_vec(&list).unwrap_or_default(),
    )?;
    let mut repos = serde_json::Map::new();
    for t in &tags {
        if let Some((repo, tag)) = t.rsplit_once(':') {
            let last = layer_paths
                .last()
                .map(|p| p.trim_end_matches("/layer.tar").to_string())
                .unwrap_or_default();
            repos.insert(repo.to_string(), json!({ tag: last }));
        }
    }
    append_bytes(
        b,
        "repositories",
        &serde_json::to_vec(&repos).unwrap_or_default(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fstree::{Entry, Tree};

    fn cache_with_image(dir: &Path) -> Cache {
        let cache = Cache::open(dir).unwrap();
        let mut t = Tree::new();
        t.insert("etc/motd", Entry::file(b"hello\n".to_vec(), 0o644))
            .unwrap();
        t.insert("bin/sh", Entry::file(b"#!sh".to_vec(), 0o755))
            .unwrap();
        cache
            .write_image("test/img:1", "aarch64", &t, &serde_json::Map::new(), 0)
            .unwrap();
        cache
    }

    /// Rewrites the tar at `path`, flipping one byte in the entries `pick` selects.
    fn tamper(path: &Path, pick: impl Fn(&str) -> bool) {
        let mut out = tar::Builder::new(Vec::new());
        let mut a = tar::Archive::new(fs::File::open(path).unwrap());
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            if pick(&p) && !data.is_empty() {
                let n = data.len() / 2;
                data[n] ^= 0x20;
            }
            let mut h = e.header().clone();
            out.append_data(&mut h, &p, data.as_slice()).unwrap();
        }
        fs::write(path, out.into_inner().unwrap()).unwrap();
    }

    #[test]
    fn exports_import_back_and_tampered_archives_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = cache_with_image(&dir.path().join("a"));
        let want = a.read_image("test/img:1", "aarch64").unwrap().rootfs;
        for (format, file, layer) in [
            (ExportFormat::Docker, "d.tar", "/layer.tar"),
            (ExportFormat::Oci, "o.tar", "blobs/sha256/"),
        ] {
            let path = dir.path().join(file);
            export(&a, "test/img:1", "aarch64", format, &path).unwrap();
            let b = Cache::open(dir.path().join(format!("b-{file}"))).unwrap();
            let got = import(&b, &path, None).unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(
                (got[0].name.as_str(), got[0].arch.as_str()),
                ("test/img:1", "arm64")
            );
            assert_eq!(b.read_image("test/img:1", "aarch64").unwrap().rootfs, want);

            // One flipped byte in a layer: refused, and no name is given.
            tamper(&path, |p| p.contains(layer));
            let c = Cache::open(dir.path().join(format!("c-{file}"))).unwrap();
            let err = import(&c, &path, None).unwrap_err();
            assert!(
                matches!(err, ArchiveError::Digest { .. }),
                "{format:?}: {err:?}"
            );
            assert!(c.images().unwrap().is_empty());
        }
    }

    #[test]
    fn filesystem_export_writes_the_root_and_refuses_an_existing_target() {
        let dir = tempfile::tempdir().unwrap();
        let a = cache_with_image(&dir.path().join("a"));
        let out = dir.path().join("root");
        export(&a, "test/img:1", "arm64", ExportFormat::Filesystem, &out).unwrap();
        assert_eq!(fs::read(out.join("etc/motd")).unwrap(), b"hello\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(out.join("bin/sh"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
        assert!(matches!(
            export(&a, "test/img:1", "arm64", ExportFormat::Filesystem, &out),
            Err(ArchiveError::Exists { .. })
        ));
    }
}
