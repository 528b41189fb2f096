//! Whole images: a tree stored as a one-layer image (`hull pkg build`), and
//! an image read back as its root filesystem and config (`hull build`).

use std::fs;
use std::io::Write;
use std::path::Path;

use fstree::Tree;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use contract::Arch;

use super::{io, Cache, CacheError, CachedImage, MANIFEST_OCI};

impl Cache {
    /// Stores `rootfs` as a one-layer image named `name` for `arch`, with
    /// `labels` in its config (for example `org.mobyproject.config`).
    /// Deterministic: the same tree and labels give the same digest.
    pub fn write_image(
        &self,
        name: &str,
        arch: Arch,
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
            "architecture": arch.oci(),
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

    /// Reads an image back: its layers applied in order, and its config.
    pub fn read_image(&self, name: &str, arch: Arch) -> Result<CachedImage, CacheError> {
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
            .write_image("hull/x:1", Arch::X86_64, &t, &labels, 0)
            .unwrap();
        let d2 = cache
            .write_image("hull/x:1", Arch::X86_64, &t, &labels, 0)
            .unwrap();
        assert_eq!(d1, d2);
        let img = cache.read_image("hull/x:1", Arch::X86_64).unwrap();
        assert_eq!(img.rootfs, t);
        assert!(matches!(
            cache.read_image("hull/x:1", Arch::Aarch64),
            Err(CacheError::NotFound { .. })
        ));
        assert!(cache.verify().unwrap().is_empty());
    }
}
