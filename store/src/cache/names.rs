//! `index.json`: which name points at which manifest, per architecture,
//! rewritten under an exclusive lock so that two hull processes never lose
//! each other's tags.

use std::fs;

use nix::fcntl::FlockArg;
use serde_json::{json, Value};

use contract::Arch;

use super::{io, ref_name, write_atomic_in, Cache, CacheError, ImageRecord};

impl Cache {
    /// Points `name` (for `arch`) at a manifest in `index.json`. The manifest
    /// and everything it names must be in the cache already.
    pub fn tag(
        &self,
        name: &str,
        arch: Arch,
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
            .filter(|m| !(ref_name(m) == Some(name) && m["platform"]["architecture"] == arch.oci()))
            .collect();
        kept.push(json!({
            "mediaType": media_type,
            "digest": digest,
            "size": size,
            "platform": { "architecture": arch.oci(), "os": "linux" },
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
    pub fn lookup(&self, name: &str, arch: Arch) -> Result<Option<String>, CacheError> {
        let index = self.index()?;
        Ok(index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| ref_name(m) == Some(name) && m["platform"]["architecture"] == arch.oci())
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
    pub fn remove(&self, name: &str, arch: Option<Arch>) -> Result<usize, CacheError> {
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
                    && arch.is_none_or(|a| m["platform"]["architecture"] == a.oci()))
            })
            .collect();
        let removed = before - kept.len();
        self.write_index(index, kept)?;
        Ok(removed)
    }
}
