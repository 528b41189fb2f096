//! Importing a `docker save` archive.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::{json, Value};

use super::{bad, for_each_entry, image_arch, io, ArchiveError, Imported};
use crate::cache::{Cache, CacheError, MANIFEST_OCI};

/// A `docker save` archive: `manifest.json` lists each image's config file,
/// layer tars and tags. Layers become blobs as they are (their digest is the
/// diff_id the config names), and an OCI manifest is written for them.
pub(super) fn import(
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
        let arch = image_arch(path, &config_digest, &config)?;
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
                input: report::BadInput::marker(),
            });
        }
        for t in tags {
            cache.tag(&t, arch, MANIFEST_OCI, &md, manifest.len())?;
            out.push(Imported {
                name: t,
                arch: arch.oci().to_string(),
                digest: md.clone(),
            });
        }
    }
    Ok(out)
}
