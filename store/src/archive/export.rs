//! Writing a cached image out: as a tar of an OCI image layout, as a
//! `docker save` archive, or unpacked into a directory. Nothing is left at
//! the target when an export fails.

use std::fs;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use contract::Arch;
use report::BadInput;

use super::{bad, io, ArchiveError};
use crate::cache::{blob_digests, digest_hex, Cache, CacheError, INDEX_OCI, MANIFEST_OCI};

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
    type Err = BadInput;
    fn from_str(s: &str) -> Result<Self, BadInput> {
        match s {
            "oci" => Ok(ExportFormat::Oci),
            "docker" => Ok(ExportFormat::Docker),
            "filesystem" => Ok(ExportFormat::Filesystem),
            _ => Err(BadInput::new(format!(
                "unknown export format {s:?}: use oci, docker or filesystem"
            ))),
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
    arch: Arch,
    format: ExportFormat,
    out: &Path,
) -> Result<Exported, ArchiveError> {
    if out.exists() {
        return Err(ArchiveError::Exists {
            path: out.into(),
            input: report::BadInput::marker(),
        });
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
    arch: Arch,
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
            "platform": {"architecture": arch.oci(), "os": "linux"},
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
    use crate::archive::import;
    use fstree::{Entry, Tree};

    fn cache_with_image(dir: &Path) -> Cache {
        let cache = Cache::open(dir).unwrap();
        let mut t = Tree::new();
        t.insert("etc/motd", Entry::file(b"hello\n".to_vec(), 0o644))
            .unwrap();
        t.insert("bin/sh", Entry::file(b"#!sh".to_vec(), 0o755))
            .unwrap();
        cache
            .write_image("test/img:1", Arch::Aarch64, &t, &serde_json::Map::new(), 0)
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
        let want = a.read_image("test/img:1", Arch::Aarch64).unwrap().rootfs;
        for (format, file, layer) in [
            (ExportFormat::Docker, "d.tar", "/layer.tar"),
            (ExportFormat::Oci, "o.tar", "blobs/sha256/"),
        ] {
            let path = dir.path().join(file);
            export(&a, "test/img:1", Arch::Aarch64, format, &path).unwrap();
            let b = Cache::open(dir.path().join(format!("b-{file}"))).unwrap();
            let got = import(&b, &path, None).unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(
                (got[0].name.as_str(), got[0].arch.as_str()),
                ("test/img:1", "arm64")
            );
            assert_eq!(
                b.read_image("test/img:1", Arch::Aarch64).unwrap().rootfs,
                want
            );

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
        export(
            &a,
            "test/img:1",
            Arch::Aarch64,
            ExportFormat::Filesystem,
            &out,
        )
        .unwrap();
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
            export(
                &a,
                "test/img:1",
                Arch::Aarch64,
                ExportFormat::Filesystem,
                &out
            ),
            Err(ArchiveError::Exists { .. })
        ));
    }
}
