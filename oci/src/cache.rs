//! The image cache: an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) under `$HULL_CACHE`, `$XDG_CACHE_HOME/hull` or
//! `~/.cache/hull`. Blobs are content-addressed and written atomically (temp
//! file, then rename); `index.json` names images by
//! `org.opencontainers.image.ref.name` and platform, and is rewritten under an
//! exclusive lock so that two hull processes never lose each other's tags.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use fstree::Tree;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "blob {digest} in the cache does not match its digest (the cache is damaged; remove it)"
    )]
    Corrupt { digest: String },
    #[error("{path}: not valid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("no image {name} for {arch} in the cache")]
    NotFound { name: String, arch: String },
    #[error("image {name}: {message}")]
    BadImage { name: String, message: String },
    #[error("layer of {name}: {source}")]
    Layer {
        name: String,
        #[source]
        source: fstree::TreeError,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
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

/// An image read back from the cache: its root filesystem and OCI config.
pub struct CachedImage {
    pub rootfs: Tree,
    pub config: Value,
}

pub struct Cache {
    root: PathBuf,
}

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
        let blobs = root.join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(io(&blobs))?;
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        Ok(Cache { root })
    }

    /// Where other host caches (Debian packages, cargo builds) live.
    pub fn subdir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn put_blob(&self, data: &[u8]) -> Result<String, CacheError> {
        let hex = hex::encode(Sha256::digest(data));
        let path = self.root.join("blobs/sha256").join(&hex);
        if !path.exists() {
            write_atomic(&path, data)?;
        }
        Ok(format!("sha256:{hex}"))
    }

    /// Reads a blob and checks it against its digest.
    pub fn blob(&self, digest: &str) -> Result<Vec<u8>, CacheError> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let path = self.root.join("blobs/sha256").join(hex);
        let data = fs::read(&path).map_err(io(&path))?;
        if hex::encode(Sha256::digest(&data)) != hex {
            return Err(CacheError::Corrupt {
                digest: digest.to_string(),
            });
        }
        Ok(data)
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
        let tar = rootfs
            .write_tar(Vec::new(), mtime)
            .map_err(|source| CacheError::Layer {
                name: name.to_string(),
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
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_bytes.len() },
            "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len() }],
        });
        let manifest_bytes = serde_json::to_vec(&manifest).unwrap_or_default();
        let manifest_digest = self.put_blob(&manifest_bytes)?;
        self.tag(name, arch, &manifest_digest, manifest_bytes.len())?;
        Ok(manifest_digest)
    }

    /// Points `name` (for `arch`) at a manifest in `index.json`.
    fn tag(&self, name: &str, arch: &str, digest: &str, size: usize) -> Result<(), CacheError> {
        let lock_path = self.root.join("index.lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).map_err(
            |(_, e)| CacheError::Io {
                path: lock_path.clone(),
                source: e.into(),
            },
        )?;
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
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": size,
            "platform": { "architecture": oci_arch(arch), "os": "linux" },
            "annotations": { "org.opencontainers.image.ref.name": name },
        }));
        kept.sort_by(|a, b| {
            (ref_name(a), a["platform"]["architecture"].as_str())
                .cmp(&(ref_name(b), b["platform"]["architecture"].as_str()))
        });
        index["manifests"] = Value::Array(kept);
        let path = self.root.join("index.json");
        write_atomic(
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

    /// Reads an image back: its layers applied in order, and its config.
    pub fn read_image(&self, name: &str, arch: &str) -> Result<CachedImage, CacheError> {
        let digest = self
            .lookup(name, arch)?
            .ok_or_else(|| CacheError::NotFound {
                name: name.to_string(),
                arch: arch.to_string(),
            })?;
        let bad = |message: &str| CacheError::BadImage {
            name: name.to_string(),
            message: message.to_string(),
        };
        let manifest: Value = serde_json::from_slice(&self.blob(&digest)?)
            .map_err(|_| bad("manifest is not JSON"))?;
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .ok_or_else(|| bad("manifest has no config"))?;
        let config: Value = serde_json::from_slice(&self.blob(config_digest)?)
            .map_err(|_| bad("config is not JSON"))?;
        let mut rootfs = Tree::new();
        for layer in manifest["layers"].as_array().into_iter().flatten() {
            let d = layer["digest"]
                .as_str()
                .ok_or_else(|| bad("layer without digest"))?;
            let data = self.blob(d)?;
            let media = layer["mediaType"].as_str().unwrap_or("");
            let result = if media.ends_with("gzip") || data.starts_with(&[0x1f, 0x8b]) {
                rootfs.apply_tar(flate2::read::GzDecoder::new(data.as_slice()))
            } else {
                rootfs.apply_tar(data.as_slice())
            };
            result.map_err(|source| CacheError::Layer {
                name: name.to_string(),
                source,
            })?;
        }
        Ok(CachedImage { rootfs, config })
    }
}

fn ref_name(m: &Value) -> Option<&str> {
    m["annotations"]["org.opencontainers.image.ref.name"].as_str()
}

/// Writes `data` to a temp file beside `path` and renames it into place, so
/// that a reader never sees half a file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), CacheError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
    tmp.write_all(data).map_err(io(path))?;
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
    }

    #[test]
    fn corrupt_blob_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let d = cache.put_blob(b"hello").unwrap();
        let path = dir
            .path()
            .join("blobs/sha256")
            .join(d.strip_prefix("sha256:").unwrap());
        fs::write(&path, b"jello").unwrap();
        assert!(matches!(cache.blob(&d), Err(CacheError::Corrupt { .. })));
    }
}
