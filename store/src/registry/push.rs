//! Pushing what the cache holds under a name: every blob the registry
//! lacks, each platform's manifest, and an index when there are several.

use oci_client::{Reference, RegistryOperation};
use serde_json::{json, Value};

use super::auth::credentials;
use super::error::map_error;
use super::{content_type, parse_reference, sha256, Registry, RegistryError};
use crate::cache::{blob_digests, Cache, CacheError, INDEX_OCI, MANIFEST_OCI};

impl Registry {
    /// Pushes every platform cached under `name` to `dest` (a registry
    /// reference; default: `name` itself). Several platforms go up as an
    /// image index. Returns the digest the tag points at.
    pub fn push(&self, cache: &Cache, name: &str, dest: &str) -> Result<String, RegistryError> {
        let records: Vec<_> = cache
            .images()?
            .into_iter()
            .filter(|r| r.name == name)
            .collect();
        if records.is_empty() {
            return Err(CacheError::NotFound {
                name: name.to_string(),
                arch: "any arch".into(),
            }
            .into());
        }
        let r = parse_reference(dest)?;
        let route = self.route(&r)?;
        let client = Self::client(&route);
        let auth = credentials(route.target.registry())?;
        let rt = Self::runtime()?;
        rt.block_on(async {
            let registry = route.target.registry().to_string();
            let shown = r.whole();
            let err = |e| map_error(e, &shown, &registry, "push");
            client
                .auth(&route.target, &auth, RegistryOperation::Push)
                .await
                .map_err(err)?;
            let mut entries = Vec::new();
            for rec in &records {
                let bytes = cache.blob(&rec.digest)?;
                let manifest: Value =
                    serde_json::from_slice(&bytes).map_err(|e| CacheError::BadImage {
                        name: name.to_string(),
                        message: format!("manifest is not JSON: {e}"),
                    })?;
                for d in blob_digests(&manifest) {
                    if !client.blob_exists(&route.target, &d).await.map_err(err)? {
                        let data = cache.blob(&d)?;
                        client
                            .push_blob(&route.target, data, &d)
                            .await
                            .map_err(err)?;
                    }
                }
                let media = manifest["mediaType"]
                    .as_str()
                    .unwrap_or(MANIFEST_OCI)
                    .to_string();
                let target = if records.len() == 1 {
                    route.target.clone()
                } else {
                    Reference::with_digest(
                        route.target.registry().into(),
                        route.target.repository().into(),
                        rec.digest.clone(),
                    )
                };
                client
                    .push_manifest_raw(&target, bytes.clone(), content_type(&media))
                    .await
                    .map_err(err)?;
                entries.push(json!({
                    "mediaType": media,
                    "digest": rec.digest,
                    "size": bytes.len(),
                    "platform": {"architecture": rec.arch, "os": "linux"},
                }));
            }
            if records.len() == 1 {
                return Ok(records[0].digest.clone());
            }
            let index = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": INDEX_OCI,
                "manifests": entries,
            }))
            .unwrap_or_default();
            let digest = sha256(&index);
            client
                .push_manifest_raw(&route.target, index, content_type(INDEX_OCI))
                .await
                .map_err(err)?;
            Ok(digest)
        })
    }
}
