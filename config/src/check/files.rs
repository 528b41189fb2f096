//! The `files` and `volumes` sections.

use std::collections::BTreeMap;

use crate::position::ConfigErrors;
use crate::schema::Config;
use crate::values::volume_name_syntax;

pub(super) fn check_files(config: &Config, ids: &BTreeMap<String, u32>, errs: &mut ConfigErrors) {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for f in &config.files {
        let v = &f.value;
        let Some(path) = v.path.as_deref().filter(|p| !p.is_empty()) else {
            errs.push(f.error(&[], "a `files` entry needs a `path`"));
            continue;
        };
        let norm = path
            .trim_start_matches('/')
            .trim_end_matches('/')
            .to_string();
        if norm.split('/').any(|c| c == "..") {
            errs.push(f.error(&["path"], format!("path {path:?} may not contain '..'")));
        }
        if let Some(prev) = seen.insert(norm, f.pos_of(&["path"]).to_string()) {
            errs.push(f.error(
                &["path"],
                format!("path {path:?} is already written at {prev}"),
            ));
        }
        let kinds: Vec<&str> = [
            ("contents", v.contents.is_some()),
            ("source", v.source.is_some()),
            ("symlink", v.symlink.is_some()),
            ("metadata", v.metadata.is_some()),
            ("directory", v.directory),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| k)
        .collect();
        match kinds.as_slice() {
            [] => errs.push(f.error(
                &["path"],
                "a file needs one of `contents`, `source`, `symlink`, `metadata` or `directory: true`",
            )),
            [_] => {}
            [first, second, ..] => errs.push(f.error(
                &[second],
                format!("`{first}` and `{second}` cannot be combined in one file"),
            )),
        }
        if let Some(m) = &v.metadata {
            if m != "yaml" {
                errs.push(f.error(
                    &["metadata"],
                    format!("metadata {m:?}: only `yaml` is known"),
                ));
            }
        }
        if v.optional && v.source.is_none() {
            errs.push(f.error(&["optional"], "`optional` applies only to a `source` file"));
        }
        // The mode, read when the file was loaded.
        for p in &f.problems {
            errs.push(p.at(f));
        }
        for (key, id) in [("uid", &v.uid), ("gid", &v.gid)] {
            if let Some(Err(msg)) = id.as_ref().map(|id| id.resolve(ids)) {
                errs.push(f.error(&[key], msg));
            }
        }
    }
}

pub(super) fn check_volumes(config: &Config, errs: &mut ConfigErrors) {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for v in &config.volumes {
        let name = v.value.name.clone().unwrap_or_default();
        // LinuxKit's rule for volume names.
        if !volume_name_syntax(&name) {
            errs.push(v.error(
                &["name"],
                format!("volume name {name:?} must be non-empty: lowercase letters, digits, '_' and '-'"),
            ));
        } else if let Some(prev) = seen.insert(name.clone(), v.pos_of(&["name"]).to_string()) {
            errs.push(v.error(
                &["name"],
                format!("volume name {name:?} is used twice: here and at {prev}"),
            ));
        }
        if let Some(f) = &v.value.format {
            if f != "oci" && f != "filesystem" {
                errs.push(v.error(
                    &["format"],
                    format!("volume format {f:?}: use `oci` or `filesystem`"),
                ));
            }
        }
        if v.value.format.as_deref() == Some("oci") && v.value.image.is_none() {
            errs.push(v.error(&["format"], "an `oci` volume needs an `image`"));
        }
        for (i, p) in v.value.platforms.iter().flatten().enumerate() {
            let ok = matches!(
                p.as_str(),
                "linux/amd64" | "linux/arm64" | "linux/x86_64" | "linux/aarch64"
            );
            if !ok {
                errs.push(v.error(
                    &["platforms", &i.to_string()],
                    format!("platform {p:?}: hull builds linux/amd64 and linux/arm64"),
                ));
            }
        }
    }
}
