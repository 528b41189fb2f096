//! `@pkg:` packages, as far as they are known without building anything.

use std::collections::BTreeSet;
use std::path::Path;

use crate::entry::ImageEntry;
use crate::load::item;
use crate::position::ConfigErrors;
use crate::schema::Config;

/// `@pkg:` folders that do not exist, and packages whose `config:` (the
/// label their image will carry) is not a valid image entry: both are
/// known without building anything. Label mistakes point into the
/// package's build.yml.
pub fn check_packages(config: &Config, errs: &mut ConfigErrors) {
    let mut seen = BTreeSet::new();
    for (pos, reference) in config.image_refs() {
        let Some(path) = reference.strip_prefix("@pkg:") else {
            continue;
        };
        let dir = pos.file.parent().unwrap_or(Path::new(".")).join(path);
        let build_yml = dir.join("build.yml");
        if !build_yml.is_file() {
            errs.push(pos.error(format!(
                "no package at {} (a package is a folder with a build.yml)",
                dir.display()
            )));
            continue;
        }
        if seen.insert(build_yml.clone()) {
            check_package_config(&build_yml, errs);
        }
    }
}

fn check_package_config(build_yml: &Path, errs: &mut ConfigErrors) {
    // The rest of build.yml is the package builder's to check.
    let Ok(text) = std::fs::read_to_string(build_yml) else {
        return;
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let Ok(node) = crate::yaml::load(text) else {
        return;
    };
    let Some(label) = node.as_mapping().and_then(|m| m.get("config")) else {
        return;
    };
    let Some(entry) = item::<ImageEntry>(build_yml, label, errs) else {
        return;
    };
    for (key, set) in [
        ("name", entry.value.name.is_some()),
        ("image", entry.value.image.is_some()),
    ] {
        if set {
            errs.push(entry.error(&[key], format!("a package's `config` cannot set `{key}`")));
        }
    }
    for p in &entry.problems {
        errs.push(p.at(&entry));
    }
}
