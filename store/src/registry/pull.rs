//! Pulling: the manifest (through an index to the requested platform),
//! then the config (which says the platform, before any layer is fetched),
//! then the layers the cache lacks, each verified against its digest.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use oci_client::client::BlobResponse;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::Value;

use contract::Arch;

use super::auth::credentials;
use super::error::map_error;
use super::{parse_reference, sha256, Pulled, Registry, RegistryError, Route, ACCEPT};
use crate::cache::{blob_digests, Cache, CacheError, MANIFEST_DOCKER, MANIFEST_OCI};

impl Registry {
    /// Makes `reference` for `arch` available in the cache: nothing happens
    /// when the cache has it (unless `check`); otherwise the manifest is
    /// resolved (index -> the platform's manifest) and the missing blobs are
    /// fetched, verified and stored, then the name is tagged.
    pub fn pull(
        &self,
        cache: &Cache,
        reference: &str,
        arch: Arch,
    ) -> Result<Pulled, RegistryError> {
        let r = parse_reference(reference)?;
        let name = r.whole();
        if !self.opts.check {
            if let Some(digest) = cache.lookup(&name, arch)? {
                if complete(cache, &digest) {
                    return Ok(Pulled {
                        name,
                        digest,
                        fetched: 0,
                    });
                }
            }
        }
        let route = self.route(&r)?;
        let client = Self::client(&route);
        let auth = credentials(route.target.registry())?;
        let _writer = cache.writer_lock()?;
        let rt = Self::runtime()?;
        rt.block_on(self.pull_async(cache, &client, &auth, &r, &route, &name, arch))
    }

    #[allow(clippy::too_many_arguments)]
    async fn pull_async(
        &self,
        cache: &Cache,
        client: &Client,
        auth: &RegistryAuth,
        r: &Reference,
        route: &Route,
        name: &str,
        arch: Arch,
    ) -> Result<Pulled, RegistryError> {
        let registry = route.target.registry().to_string();
        let shown = r.whole();
        let err = |e| map_error(e, &shown, &registry, "pull");
        let (bytes, _) = client
            .pull_manifest_raw(&route.target, auth, ACCEPT)
            .await
            .map_err(err)?;
        let mut digest = sha256(&bytes);
        if let Some(want) = r.digest() {
            if want != digest {
                return Err(RegistryError::Digest {
                    digest: want.to_string(),
                    registry,
                });
            }
        }
        let mut manifest_bytes = bytes.to_vec();
        let mut value: Value =
            serde_json::from_slice(&manifest_bytes).map_err(|e| RegistryError::Other {
                registry: registry.clone(),
                message: format!("manifest of {shown} is not JSON: {e}"),
            })?;
        let mut from_index = false;
        if value["manifests"].is_array() {
            // An index: pick the platform, fetch its manifest by digest.
            let (d, available) = pick_platform(&value, arch);
            let d = d.ok_or_else(|| RegistryError::NoPlatform {
                arch,
                reference: shown.clone(),
                available,
                input: report::BadInput::marker(),
            })?;
            let by_digest = Reference::with_digest(
                route.target.registry().into(),
                route.target.repository().into(),
                d.clone(),
            );
            let (b, _) = client
                .pull_manifest_raw(&by_digest, auth, ACCEPT)
                .await
                .map_err(err)?;
            if sha256(&b) != d {
                return Err(RegistryError::Digest {
                    digest: d,
                    registry,
                });
            }
            digest = d;
            manifest_bytes = b.to_vec();
            value = serde_json::from_slice(&manifest_bytes).map_err(|e| RegistryError::Other {
                registry: registry.clone(),
                message: format!("manifest {digest} is not JSON: {e}"),
            })?;
            from_index = true;
        }
        let media_type = value["mediaType"]
            .as_str()
            .unwrap_or(MANIFEST_OCI)
            .to_string();
        if media_type != MANIFEST_OCI && media_type != MANIFEST_DOCKER {
            return Err(RegistryError::MediaType {
                reference: shown,
                media_type,
            });
        }
        if cache.lookup(name, arch)?.as_deref() == Some(digest.as_str()) && complete(cache, &digest)
        {
            return Ok(Pulled {
                name: name.to_string(),
                digest,
                fetched: 0,
            });
        }

        // The config first: it says the platform, so a wrong one costs no
        // layer downloads. Then the layers the cache lacks, four at a time.
        let mut descriptors = descriptors(&value).into_iter();
        let config_desc = descriptors.next().unwrap_or_default();
        let mut fetched = 0;
        if !cache.has_blob(&config_desc.digest) {
            fetched += self
                .fetch_blob(cache, client, &route.target, &config_desc)
                .await?;
        }
        let config = cache.json_blob(&config_desc.digest)?;
        if !from_index {
            let actual = format!(
                "{}/{}",
                config["os"].as_str().unwrap_or("?"),
                config["architecture"].as_str().unwrap_or("?")
            );
            if actual != format!("linux/{}", arch.oci()) {
                return Err(RegistryError::WrongPlatform {
                    reference: shown,
                    arch,
                    actual,
                    input: report::BadInput::marker(),
                });
            }
        }
        let mut seen = BTreeSet::new();
        let wanted: Vec<OciDescriptor> = descriptors
            .filter(|d| seen.insert(d.digest.clone()) && !cache.has_blob(&d.digest))
            .collect();
        fetched += futures_util::stream::iter(wanted.iter())
            .map(|d| self.fetch_blob(cache, client, &route.target, d))
            .buffer_unordered(4)
            .try_fold(0u64, |acc, n| async move { Ok(acc + n) })
            .await?;
        cache.put_blob(&manifest_bytes)?;
        cache.tag(name, arch, &media_type, &digest, manifest_bytes.len())?;
        Ok(Pulled {
            name: name.to_string(),
            digest,
            fetched,
        })
    }

    /// Downloads one blob into the cache, resuming a partial file left by an
    /// earlier run when the registry honours ranges. Returns bytes fetched.
    async fn fetch_blob(
        &self,
        cache: &Cache,
        client: &Client,
        target: &Reference,
        desc: &OciDescriptor,
    ) -> Result<u64, RegistryError> {
        let registry = target.registry().to_string();
        let digest = desc.digest.clone();
        let _lock = loop {
            if let Some(l) = cache.try_blob_lock(&digest)? {
                break l;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if cache.has_blob(&digest) {
            return Ok(0); // another hull process fetched it meanwhile
        }
        let hex = crate::cache::digest_hex(&digest)?;
        let partial: PathBuf = cache.tmp_dir().join(format!("{hex}.partial"));
        let io = |e: std::io::Error| {
            RegistryError::Cache(CacheError::Io {
                path: partial.clone(),
                source: e,
            })
        };
        let offset = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        let size = u64::try_from(desc.size).unwrap_or(0);
        let offset = if offset >= size { 0 } else { offset };
        let resp = client
            .pull_blob_stream_partial(target, desc, offset, None)
            .await
            .map_err(|e| {
                map_error(
                    e,
                    &format!("{}@{digest}", target.repository()),
                    &registry,
                    "pull",
                )
            })?;
        let (mut stream, mut written) = match resp {
            BlobResponse::Partial(s) => (s, offset),
            BlobResponse::Full(s) => (s, 0),
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(written > 0)
            .truncate(written == 0)
            .open(&partial)
            .map_err(io)?;
        let bar = self.bars.add(ProgressBar::new(size));
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:19} {bar:30} {bytes:>10}/{total_bytes:10} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(digest.chars().take(19).collect::<String>());
        bar.set_position(written);
        let start = written;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                let is_digest = e
                    .get_ref()
                    .is_some_and(|i| i.is::<oci_client::errors::DigestError>());
                if is_digest {
                    let _ = std::fs::remove_file(&partial);
                    RegistryError::Digest {
                        digest: digest.clone(),
                        registry: registry.clone(),
                    }
                } else {
                    RegistryError::Unreachable {
                        registry: registry.clone(),
                        message: format!("reading blob {digest}: {e}"),
                    }
                }
            })?;
            written += chunk.len() as u64;
            if written > size {
                let _ = std::fs::remove_file(&partial);
                return Err(RegistryError::Oversize {
                    digest,
                    registry,
                    size,
                });
            }
            file.write_all(&chunk).map_err(io)?;
            bar.set_position(written);
        }
        file.flush().map_err(io)?;
        drop(file);
        bar.finish_and_clear();
        cache
            .put_blob_file(&partial, &digest)
            .map_err(|e| match e {
                CacheError::Corrupt { digest } => RegistryError::Digest { digest, registry },
                e => e.into(),
            })?;
        Ok(written - start)
    }
}

/// True when the manifest and every blob it names are in the cache.
fn complete(cache: &Cache, digest: &str) -> bool {
    cache.has_blob(digest)
        && cache
            .json_blob(digest)
            .map(|m| blob_digests(&m).iter().all(|d| cache.has_blob(d)))
            .unwrap_or(false)
}

/// The config and layer descriptors of a manifest.
fn descriptors(manifest: &Value) -> Vec<OciDescriptor> {
    let one = |v: &Value| OciDescriptor {
        media_type: v["mediaType"].as_str().unwrap_or("").to_string(),
        digest: v["digest"].as_str().unwrap_or("").to_string(),
        size: v["size"].as_i64().unwrap_or(0),
        ..Default::default()
    };
    let mut out = vec![one(&manifest["config"])];
    out.extend(manifest["layers"].as_array().into_iter().flatten().map(one));
    out
}

/// The manifest digest for linux/`arch` in an index, and the platforms it
/// has (for the error when it has not).
pub fn pick_platform(index: &Value, arch: Arch) -> (Option<String>, String) {
    let want = arch.oci();
    let mut available = Vec::new();
    let mut found = None;
    for m in index["manifests"].as_array().into_iter().flatten() {
        let os = m["platform"]["os"].as_str().unwrap_or("");
        let a = m["platform"]["architecture"].as_str().unwrap_or("");
        let variant = m["platform"]["variant"].as_str().unwrap_or("");
        if os.is_empty() || a == "unknown" {
            continue; // attestations and other non-image entries
        }
        available.push(if variant.is_empty() {
            format!("{os}/{a}")
        } else {
            format!("{os}/{a}/{variant}")
        });
        // arm64's only variant in use is v8; prefer an exact match, take any.
        if found.is_none() && os == "linux" && a == want && (variant.is_empty() || variant == "v8")
        {
            found = m["digest"].as_str().map(String::from);
        }
    }
    if available.is_empty() {
        available.push("nothing".into());
    }
    (found, available.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn platform_is_picked_from_an_index() {
        let index = json!({"manifests": [
            {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "sha256:b", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"digest": "sha256:c", "platform": {"os": "unknown", "architecture": "unknown"}},
        ]});
        assert_eq!(
            pick_platform(&index, Arch::X86_64).0.as_deref(),
            Some("sha256:a")
        );
        assert_eq!(
            pick_platform(&index, Arch::Aarch64).0.as_deref(),
            Some("sha256:b")
        );
        let only = json!({"manifests": [
            {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "amd64"}},
        ]});
        let (d, available) = pick_platform(&only, Arch::Aarch64);
        assert!(d.is_none());
        assert_eq!(available, "linux/amd64");
    }
}
