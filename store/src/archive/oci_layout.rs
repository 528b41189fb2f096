//! Importing an OCI image layout (a directory, or a tar of one, as
//! `skopeo copy … oci:` / `oci-archive:` write them).

use std::path::Path;

use serde_json::Value;

use super::{bad, image_arch, read_json, ArchiveError, Imported};
use crate::cache::{
    blob_digests, digest_hex, ref_name, Cache, INDEX_DOCKER, INDEX_OCI, MANIFEST_OCI,
};

/// Every digest an OCI layout's index reaches, read from the layout dir.
pub(super) fn reachable(dir: &Path, index: &Value) -> Result<Vec<String>, ArchiveError> {
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
            input: report::BadInput::marker(),
        }),
    }
}

/// Tags every image an OCI layout's index names, now that its blobs are in
/// the cache.
pub(super) fn tag(
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
        let from_index = media == INDEX_OCI || media == INDEX_DOCKER || v["manifests"].is_array();
        let manifests: Vec<Value> = if from_index {
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
            // An index may hold platforms hull does not build for: those
            // are left out. A lone image must be for one it does.
            let arch = match image_arch(path, &md, &config) {
                Ok(a) => a,
                Err(_) if from_index => continue,
                Err(e) => return Err(e),
            };
            let media = manifest["mediaType"].as_str().unwrap_or(MANIFEST_OCI);
            let size = cache.blob(&md)?.len();
            cache.tag(&n, arch, media, &md, size)?;
            out.push(Imported {
                name: n.clone(),
                arch: arch.oci().to_string(),
                digest: md,
            });
        }
    }
    if out.is_empty() {
        return Err(bad(
            path,
            "the index names no linux image for x86_64 (amd64) or aarch64 (arm64)",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use serde_json::{json, Value};
    use sha2::{Digest, Sha256};

    use crate::archive::import;
    use crate::cache::{Cache, INDEX_OCI, MANIFEST_OCI};

    /// Writes `data` as a blob of the layout at `dir`; returns its descriptor.
    fn blob(dir: &Path, media: &str, data: &[u8]) -> Value {
        let hex = hex::encode(Sha256::digest(data));
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("blobs/sha256").join(&hex), data).unwrap();
        json!({"mediaType": media, "digest": format!("sha256:{hex}"), "size": data.len()})
    }

    /// One image for `arch`: its manifest's descriptor, with the platform.
    fn image(dir: &Path, arch: &str) -> Value {
        let layer = fstree::Tree::new().write_tar(Vec::new(), 0).unwrap();
        let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(&layer)));
        let layer = blob(dir, "application/vnd.oci.image.layer.v1.tar", &layer);
        let config = json!({"architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]}});
        let config = blob(
            dir,
            "application/vnd.oci.image.config.v1+json",
            config.to_string().as_bytes(),
        );
        let manifest = json!({"schemaVersion": 2, "mediaType": MANIFEST_OCI,
            "config": config, "layers": [layer]});
        let mut desc = blob(dir, MANIFEST_OCI, manifest.to_string().as_bytes());
        desc["platform"] = json!({"architecture": arch, "os": "linux"});
        desc
    }

    fn layout(dir: &Path, top: Value) {
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let index = json!({"schemaVersion": 2, "manifests": [top]});
        fs::write(dir.join("index.json"), index.to_string()).unwrap();
    }

    #[test]
    fn an_unknown_arch_is_refused_alone_and_left_out_of_an_index() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(tmp.path().join("cache")).unwrap();

        let lone = tmp.path().join("lone");
        let mut desc = image(&lone, "s390x");
        desc["annotations"] = json!({"org.opencontainers.image.ref.name": "x/lone:1"});
        layout(&lone, desc);
        let e = import(&cache, &lone, None).unwrap_err();
        assert!(
            e.to_string().contains("is for architecture \"s390x\""),
            "{e}"
        );
        assert_eq!(report::exit_code(&e), report::Exit::BadInput);
        assert!(cache.images().unwrap().is_empty(), "nothing tagged");

        let multi = tmp.path().join("multi");
        let entries = vec![image(&multi, "s390x"), image(&multi, "arm64")];
        let index = json!({"schemaVersion": 2, "mediaType": INDEX_OCI, "manifests": entries});
        let mut desc = blob(&multi, INDEX_OCI, index.to_string().as_bytes());
        desc["annotations"] = json!({"org.opencontainers.image.ref.name": "x/multi:1"});
        layout(&multi, desc);
        let got = import(&cache, &multi, None).unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            (got[0].name.as_str(), got[0].arch.as_str()),
            ("x/multi:1", "arm64")
        );
        let arches: Vec<String> = cache
            .images()
            .unwrap()
            .into_iter()
            .map(|r| r.arch)
            .collect();
        assert_eq!(arches, ["arm64"]);
    }
}
