//! The image cache: an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) under `$HULL_CACHE`, `$XDG_CACHE_HOME/hull` or
//! `~/.cache/hull`. Blobs are content-addressed, verified on the way in and on
//! the way out, and written atomically (a temp file in `tmp/`, then rename);
//! `index.json` names images by `org.opencontainers.image.ref.name` and
//! platform, and is rewritten under an exclusive lock so that two hull
//! processes never lose each other's tags. Writers hold a shared lock on
//! `gc.lock` while their blobs are not yet tagged; `clean` takes it
//! exclusively, so it never removes a blob a running pull is about to name.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use fstree::Tree;
use nix::fcntl::{Flock, FlockArg};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("blob {digest} in the cache does not match its digest (the cache is damaged: run `hull cache rm` on the image, or `hull cache clean`, and fetch it again)")]
    Corrupt { digest: String },
    #[error("blob {digest} is missing from the cache")]
    Missing { digest: String },
    #[error("{digest} is not a sha256 digest")]
    BadDigest { digest: String },
    #[error("{path}: not valid JSON")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("no image {name} for {arch} in the cache")]
    NotFound { name: String, arch: String },
    #[error("image {name}: {message}")]
    BadImage { name: String, message: String },
    #[error("layer {digest} of {name}")]
    Layer {
        name: String,
        digest: String,
        #[source]
        source: fstree::TreeError,
    },
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The OCI architecture name of a hull arch.
pub fn oci_arch(arch: &str) -> &'static str {
    match arch {
        "aarch64" | "arm64" => "arm64",
        _ => "amd64",
    }
}

pub const MANIFEST_OCI: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_OCI: &str = "application/vnd.oci.image.index.v1+json";
pub const MANIFEST_DOCKER: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const INDEX_DOCKER: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// An image read back from the cache: its root filesystem and OCI config.
pub struct CachedImage {
    pub rootfs: Tree,
    pub config: Value,
    /// Device nodes and FIFOs the layers held, which the tree leaves out.
    pub skipped: Vec<PathBuf>,
}

/// One name in `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageRecord {
    pub name: String,
    /// OCI architecture (`amd64`, `arm64`).
    pub arch: String,
    pub digest: String,
    /// Bytes of the manifest, its config and its layers (compressed).
    pub size: u64,
}

/// What `Cache::clean` removed.
#[derive(Debug, Default, serde::Serialize)]
pub struct Cleaned {
    pub blobs: usize,
    pub bytes: u64,
}

pub struct Cache {
    root: PathBuf,
}

/// A lock file held for as long as the value lives.
pub struct Lock(#[allow(dead_code)] Flock<fs::File>);

impl Cache {
    pub fn default_root() -> PathBuf {
        if let Some(p) = std::env::var_os("HULL_CACHE") {
            return p.into();
        }
        if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
            return PathBuf::from(p).join("hull");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/root".into());
        home.join(".cache/hull")
    }

    pub fn open(root: impl Into<PathBuf>) -> Result<Cache, CacheError> {
        let root = root.into();
        for d in [root.join("blobs/sha256"), root.join("tmp")] {
            fs::create_dir_all(&d).map_err(io(&d))?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        Ok(Cache { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where other host caches (Debian packages, cargo builds) live.
    pub fn subdir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// A directory for temp files on the cache's filesystem (renames into
    /// `blobs/` are atomic from there).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn lock(&self, name: &str, arg: FlockArg) -> Result<Lock, CacheError> {
        let path = self.root.join(name);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        Flock::lock(file, arg)
            .map(Lock)
            .map_err(|(_, e)| CacheError::Io {
                path,
                source: e.into(),
            })
    }

    /// Held by anyone writing blobs that are not tagged yet (pulls, imports,
    /// package builds): `clean` waits for them.
    pub fn writer_lock(&self) -> Result<Lock, CacheError> {
        self.lock("gc.lock", FlockArg::LockShared)
    }

    /// Serialises the download of one blob between processes, so two pulls
    /// of the same image do not write one partial file at once. Never
    /// blocks (`None`: another process holds it): a pull waits for it with an
    /// async sleep, because blocking its only thread while it holds other
    /// blob locks could deadlock against a pull taking them in another order.
    pub fn try_blob_lock(&self, digest: &str) -> Result<Option<Lock>, CacheError> {
        let hex = digest_hex(digest)?;
        match self.lock(&format!("tmp/{hex}.lock"), FlockArg::LockExclusiveNonblock) {
            Ok(l) => Ok(Some(l)),
            Err(CacheError::Io { source, .. })
                if source.raw_os_error() == Some(nix::libc::EWOULDBLOCK) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, CacheError> {
        Ok(self.root.join("blobs/sha256").join(digest_hex(digest)?))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).map(|p| p.is_file()).unwrap_or(false)
    }

    pub fn put_blob(&self, data: &[u8]) -> Result<String, CacheError> {
        let hex = hex::encode(Sha256::digest(data));
        let path = self.root.join("blobs/sha256").join(&hex);
        if !path.exists() {
            write_atomic_in(&self.tmp_dir(), &path, data)?;
        }
        Ok(format!("sha256:{hex}"))
    }

    /// Moves a finished download or import (`file`, in `tmp_dir()`) into the
    /// cache as blob `digest`, after checking its content against it.
    pub fn put_blob_file(&self, file: &Path, digest: &str) -> Result<(), CacheError> {
        let actual = sha256_file(file)?;
        if actual != digest {
            let _ = fs::remove_file(file);
            return Err(CacheError::Corrupt {
                digest: digest.to_string(),
            });
        }
        let path = self.blob_path(digest)?;
        fs::rename(file, &path).map_err(io(&path))
    }

    /// Streams `reader` into the cache as a blob, hashing on the way; when
    /// `expected` is given the content must match it. Returns the digest and
    /// the size.
    pub fn put_blob_reader(
        &self,
        mut reader: impl Read,
        expected: Option<&str>,
    ) -> Result<(String, u64), CacheError> {
        let dir = self.tmp_dir();
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io(&dir))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(io(tmp.path()))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            tmp.write_all(&buf[..n]).map_err(io(tmp.path()))?;
            size += n as u64;
        }
        let digest = format!("sha256:{}", hex::encode(h.finalize()));
        if let Some(e) = expected {
            if e != digest {
                return Err(CacheError::Corrupt {
                    digest: e.to_string(),
                });
            }
        }
        let path = self.blob_path(&digest)?;
        if !path.exists() {
            fs::set_permissions(
                tmp.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o644),
            )
            .map_err(io(&path))?;
            tmp.persist(&path).map_err(|e| CacheError::Io {
                path: path.clone(),
                source: e.error,
            })?;
        }
        Ok((digest, size))
    }

    /// Reads a blob and checks it against its digest.
    pub fn blob(&self, digest: &str) -> Result<Vec<u8>, CacheError> {
        let path = self.blob_path(digest)?;
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CacheError::Missing {
                    digest: digest.to_string(),
                })
            }
            Err(e) => return Err(io(&path)(e)),
        };
        if format!("sha256:{}", hex::encode(Sha256::digest(&data))) != digest {
            return Err(CacheError::Corrupt {
                digest: digest.to_string(),
            });
        }
        Ok(data)
    }

    /// Reads a JSON blob (a manifest or a config), verified.
    pub fn json_blob(&self, digest: &str) -> Result<Value, CacheError> {
        let data = self.blob(digest)?;
        serde_json::from_slice(&data).map_err(|source| CacheError::Json {
            path: self.blob_path(digest).unwrap_or_default(),
            source,
        })
    }

    /// Stores `rootfs` as a one-layer image named `name` for `arch`, with
    /// `labels` in its config (for example `org.mobyproject.config`).
    /// Deterministic: the same tree and labels give the same digest.
    pub fn write_image(
        &self,
        name: &str,
        arch: &str,
        rootfs: &Tree,
        labels: &serde_json::Map<String, Value>,
        mtime: u64,
    ) -> Result<String, CacheError> {
        let _writer = self.writer_lock()?;
        let tar = rootfs
            .write_tar(Vec::new(), mtime)
            .map_err(|source| CacheError::Layer {
                name: name.to_string(),
                digest: String::new(),
                source,
            })?;
        let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(&tar)));
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::new(6));
        gz.write_all(&tar).map_err(io(Path::new("<gzip>")))?;
        let layer = gz.finish().map_err(io(Path::new("<gzip>")))?;
        let layer_digest = self.put_blob(&layer)?;
        let config = json!({
            "architecture": oci_arch(arch),
            "os": "linux",
            "config": { "Labels": labels },
            "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        });
        let config_bytes = serde_json::to_vec(&config).unwrap_or_default();
        let config_digest = self.put_blob(&config_bytes)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_OCI,
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_bytes.len() },
            "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len() }],
        });
        let manifest_bytes = serde_json::to_vec(&manifest).unwrap_or_default();
        let manifest_digest = self.put_blob(&manifest_bytes)?;
        self.tag(
            name,
            arch,
            MANIFEST_OCI,
            &manifest_digest,
            manifest_bytes.len(),
        )?;
        Ok(manifest_digest)
    }

    /// Points `name` (for `arch`) at a manifest in `index.json`. The manifest
    /// and everything it names must be in the cache already.
    pub fn tag(
        &self,
        name: &str,
        arch: &str,
        media_type: &str,
        digest: &str,
        size: usize,
    ) -> Result<(), CacheError> {
        let _guard = self.lock("index.lock", FlockArg::LockExclusive)?;
        let mut index = self.index()?;
        let manifests = index["manifests"]
            .as_array_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let mut kept: Vec<Value> = manifests
            .into_iter()
            .filter(|m| {
                !(ref_name(m) == Some(name) && m["platform"]["architecture"] == oci_arch(arch))
            })
            .collect();
        kept.push(json!({
            "mediaType": media_type,
            "digest": digest,
            "size": size,
            "platform": { "architecture": oci_arch(arch), "os": "linux" },
            "annotations": { "org.opencontainers.image.ref.name": name },
        }));
        self.write_index(index, kept)
    }

    fn write_index(&self, mut index: Value, mut manifests: Vec<Value>) -> Result<(), CacheError> {
        manifests.sort_by(|a, b| {
            (ref_name(a), a["platform"]["architecture"].as_str())
                .cmp(&(ref_name(b), b["platform"]["architecture"].as_str()))
        });
        index["manifests"] = Value::Array(manifests);
        let path = self.root.join("index.json");
        write_atomic_in(
            &self.tmp_dir(),
            &path,
            &serde_json::to_vec_pretty(&index).unwrap_or_default(),
        )
    }

    fn index(&self) -> Result<Value, CacheError> {
        let path = self.root.join("index.json");
        match fs::read(&path) {
            Ok(data) => {
                serde_json::from_slice(&data).map_err(|source| CacheError::Json { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(json!({"schemaVersion": 2, "manifests": []}))
            }
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// The manifest digest of `name` for `arch`, if cached.
    pub fn lookup(&self, name: &str, arch: &str) -> Result<Option<String>, CacheError> {
        let index = self.index()?;
        Ok(index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| ref_name(m) == Some(name) && m["platform"]["architecture"] == oci_arch(arch))
            .and_then(|m| m["digest"].as_str().map(String::from)))
    }

    /// Every name in the cache, sorted by name and arch.
    pub fn images(&self) -> Result<Vec<ImageRecord>, CacheError> {
        let index = self.index()?;
        let mut out = Vec::new();
        for m in index["manifests"].as_array().into_iter().flatten() {
            let digest = m["digest"].as_str().unwrap_or("").to_string();
            let mut size = m["size"].as_u64().unwrap_or(0);
            if let Ok(manifest) = self.json_blob(&digest) {
                size += manifest["config"]["size"].as_u64().unwrap_or(0);
                for l in manifest["layers"].as_array().into_iter().flatten() {
                    size += l["size"].as_u64().unwrap_or(0);
                }
            }
            out.push(ImageRecord {
                name: ref_name(m).unwrap_or("").to_string(),
                arch: m["platform"]["architecture"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                digest,
                size,
            });
        }
        Ok(out)
    }

    /// Removes `name` (for `arch`, or every arch) from the index; its blobs
    /// stay until `clean`. Returns how many entries went.
    pub fn remove(&self, name: &str, arch: Option<&str>) -> Result<usize, CacheError> {
        let _guard = self.lock("index.lock", FlockArg::LockExclusive)?;
        let mut index = self.index()?;
        let manifests = index["manifests"]
            .as_array_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let before = manifests.len();
        let kept: Vec<Value> = manifests
            .into_iter()
            .filter(|m| {
                !(ref_name(m) == Some(name)
                    && arch.is_none_or(|a| m["platform"]["architecture"] == oci_arch(a)))
            })
            .collect();
        let removed = before - kept.len();
        self.write_index(index, kept)?;
        Ok(removed)
    }

    /// The digests every name in the index reaches (manifests, configs, layers).
    fn reachable(&self) -> Result<Vec<String>, CacheError> {
        let mut out = Vec::new();
        for rec in self.images()? {
            out.push(rec.digest.clone());
            if let Ok(m) = self.json_blob(&rec.digest) {
                out.extend(blob_digests(&m));
            }
        }
        Ok(out)
    }

    /// Removes blobs no name reaches and leftover temp files. Waits for
    /// running writers (they hold `gc.lock` shared).
    pub fn clean(&self) -> Result<Cleaned, CacheError> {
        let _gc = self.lock("gc.lock", FlockArg::LockExclusive)?;
        let keep: std::collections::BTreeSet<String> = self
            .reachable()?
            .into_iter()
            .filter_map(|d| d.strip_prefix("sha256:").map(String::from))
            .collect();
        let mut done = Cleaned::default();
        let blobs = self.root.join("blobs/sha256");
        for e in fs::read_dir(&blobs).map_err(io(&blobs))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                done.bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(e.path()).map_err(io(&e.path()))?;
                done.blobs += 1;
            }
        }
        let tmp = self.tmp_dir();
        for e in fs::read_dir(&tmp).map_err(io(&tmp))?.flatten() {
            let _ = fs::remove_file(e.path());
        }
        Ok(done)
    }

    /// Checks every blob every name reaches: present and matching its digest.
    /// Returns one line per problem (empty: the cache is sound).
    pub fn verify(&self) -> Result<Vec<String>, CacheError> {
        let mut problems = Vec::new();
        for rec in self.images()? {
            let mut digests = vec![rec.digest.clone()];
            match self.json_blob(&rec.digest) {
                Ok(m) => digests.extend(blob_digests(&m)),
                Err(e) => {
                    problems.push(format!("{} ({}): {e}", rec.name, rec.arch));
                    continue;
                }
            }
            for d in digests.iter().skip(1) {
                if let Err(e) = self.verify_blob(d) {
                    problems.push(format!("{} ({}): {e}", rec.name, rec.arch));
                }
            }
        }
        Ok(problems)
    }

    /// Streams a blob through sha256 without holding it in memory.
    pub fn verify_blob(&self, digest: &str) -> Result<(), CacheError> {
        let path = self.blob_path(digest)?;
        if !path.is_file() {
            return Err(CacheError::Missing {
                digest: digest.to_string(),
            });
        }
        if sha256_file(&path)? != digest {
            return Err(CacheError::Corrupt {
                digest: digest.to_string(),
            });
        }
        Ok(())
    }

    /// Reads an image back: its layers applied in order, and its config.
    pub fn read_image(&self, name: &str, arch: &str) -> Result<CachedImage, CacheError> {
        let digest = self
            .lookup(name, arch)?
            .ok_or_else(|| CacheError::NotFound {
                name: name.to_string(),
                arch: arch.to_string(),
            })?;
        self.read_manifest(name, &digest)
    }

    /// Reads the image whose manifest is `digest` (`name` is for messages).
    pub fn read_manifest(&self, name: &str, digest: &str) -> Result<CachedImage, CacheError> {
        let bad = |message: &str| CacheError::BadImage {
            name: name.to_string(),
            message: message.to_string(),
        };
        let manifest = self.json_blob(digest)?;
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .ok_or_else(|| bad("manifest has no config"))?;
        let config = self.json_blob(config_digest)?;
        let mut rootfs = Tree::new();
        let mut skipped = Vec::new();
        for layer in manifest["layers"].as_array().into_iter().flatten() {
            let d = layer["digest"]
                .as_str()
                .ok_or_else(|| bad("layer without digest"))?;
            let media = layer["mediaType"].as_str().unwrap_or("");
            if media.contains("zstd") {
                return Err(bad(&format!(
                    "layer {d} is zstd-compressed ({media}); hull reads gzip and plain tar layers"
                )));
            }
            self.verify_blob(d)?;
            let path = self.blob_path(d)?;
            let file = fs::File::open(&path).map_err(io(&path))?;
            let mut reader = std::io::BufReader::new(file);
            let gz = {
                let buf = std::io::BufRead::fill_buf(&mut reader).map_err(io(&path))?;
                buf.starts_with(&[0x1f, 0x8b])
            };
            let result = if gz {
                rootfs.apply_tar(flate2::read::GzDecoder::new(reader))
            } else {
                rootfs.apply_tar(reader)
            };
            let s = result.map_err(|source| CacheError::Layer {
                name: name.to_string(),
                digest: d.to_string(),
                source,
            })?;
            skipped.extend(s);
        }
        Ok(CachedImage {
            rootfs,
            config,
            skipped,
        })
    }
}

/// The config and layer digests a manifest names.
pub fn blob_digests(manifest: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(d) = manifest["config"]["digest"].as_str() {
        out.push(d.to_string());
    }
    for l in manifest["layers"].as_array().into_iter().flatten() {
        if let Some(d) = l["digest"].as_str() {
            out.push(d.to_string());
        }
    }
    out
}

pub(crate) fn ref_name(m: &Value) -> Option<&str> {
    m["annotations"]["org.opencontainers.image.ref.name"].as_str()
}

/// The hex part of a `sha256:` digest, checked (it becomes a file name).
pub fn digest_hex(digest: &str) -> Result<&str, CacheError> {
    match digest.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(h),
        _ => Err(CacheError::BadDigest {
            digest: digest.to_string(),
        }),
    }
}

/// `sha256:HEX` of a file, read in chunks.
pub fn sha256_file(path: &Path) -> Result<String, CacheError> {
    let mut f = fs::File::open(path).map_err(io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// Writes `data` to a temp file beside `path` and renames it into place, so
/// that a reader never sees half a file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), CacheError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    write_atomic_in(dir, path, data)
}

/// Like [`write_atomic`], with the temp file in `tmp_dir` (same filesystem).
pub fn write_atomic_in(tmp_dir: &Path, path: &Path, data: &[u8]) -> Result<(), CacheError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    fs::create_dir_all(tmp_dir).map_err(io(tmp_dir))?;
    let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir).map_err(io(tmp_dir))?;
    tmp.write_all(data).map_err(io(path))?;
    // tempfile creates 0600; the cache may be shared with other users.
    fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .map_err(io(path))?;
    tmp.persist(path).map_err(|e| CacheError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fstree::Entry;

    #[test]
    fn image_roundtrip_and_determinism() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let mut t = Tree::new();
        t.insert("bin/hello", Entry::file(b"#!/bin/sh\n".to_vec(), 0o755))
            .unwrap();
        let labels = serde_json::Map::new();
        let d1 = cache
            .write_image("hull/x:1", "x86_64", &t, &labels, 0)
            .unwrap();
        let d2 = cache
            .write_image("hull/x:1", "x86_64", &t, &labels, 0)
            .unwrap();
        assert_eq!(d1, d2);
        let img = cache.read_image("hull/x:1", "amd64").unwrap();
        assert_eq!(img.rootfs, t);
        assert!(matches!(
            cache.read_image("hull/x:1", "aarch64"),
            Err(CacheError::NotFound { .. })
        ));
        assert!(cache.verify().unwrap().is_empty());
    }

    #[test]
    fn corrupt_blob_is_detected_and_clean_keeps_what_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let stray = cache.put_blob(b"hello").unwrap();
        let mut t = Tree::new();
        t.insert("a", Entry::file(b"a".to_vec(), 0o644)).unwrap();
        let m = cache
            .write_image("x:1", "x86_64", &t, &serde_json::Map::new(), 0)
            .unwrap();
        let manifest = cache.json_blob(&m).unwrap();
        let layer = manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();

        let cleaned = cache.clean().unwrap();
        assert_eq!(cleaned.blobs, 1);
        assert!(!cache.has_blob(&stray));
        assert!(cache.read_image("x:1", "x86_64").is_ok());

        let path = cache.blob_path(&layer).unwrap();
        let mut data = fs::read(&path).unwrap();
        data[20] ^= 0xff;
        fs::write(&path, data).unwrap();
        assert!(matches!(
            cache.read_image("x:1", "x86_64"),
            Err(CacheError::Corrupt { .. })
        ));
        let problems = cache.verify().unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains(&layer), "{problems:?}");

        assert_eq!(cache.remove("x:1", None).unwrap(), 1);
        assert!(cache.images().unwrap().is_empty());
    }
}
