//! Containers: their names, what each names elsewhere (containers by uid,
//! volumes by bind, services by `depends`), hull's keys in the right
//! section, and dependency cycles.

use std::collections::{BTreeMap, BTreeSet};

use crate::entry::ImageEntry;
use crate::position::{ConfigErrors, Located};
use crate::schema::{Config, Section};
use crate::suggest::hint;
use crate::values::BindSource;

/// Container names: present, well formed, and unique across sections and files.
pub(super) fn check_names(config: &Config, errs: &mut ConfigErrors) {
    let mut seen: BTreeMap<&str, (Section, &Located<ImageEntry>)> = BTreeMap::new();
    for (section, e) in config.containers() {
        let name = e.value.name();
        if name.is_empty() {
            errs.push(e.error(&[], format!("this {section} entry has no `name`")));
            continue;
        }
        if !valid_name(name) {
            errs.push(e.error(
                &["name"],
                format!("container name {name:?} may hold only letters, digits, '-', '_' and '.' (64 at most, not starting with '.')"),
            ));
        }
        if let Some((other_section, other)) = seen.get(name) {
            // Run-once steps may repeat a name within their section, as in
            // LinuxKit's own examples (two `mount` steps): each has its own
            // numbered bundle. A service is supervised, logged and depended
            // on by its name, so it must be the only one with it.
            if section == *other_section && section != Section::Services {
                continue;
            }
            errs.push(e.error(
                &["name"],
                format!(
                    "container name {name:?} is used twice: here ({section}) and at {} ({other_section})",
                    other.pos_of(&["name"])
                ),
            ));
        } else {
            seen.insert(name, (section, e));
        }
    }
}

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.')
}

/// Each container: its image, the mistakes in its values, the containers
/// and volumes it names, its keys for its section, its dependencies.
pub(super) fn check_entries(config: &Config, ids: &BTreeMap<String, u32>, errs: &mut ConfigErrors) {
    let services: BTreeSet<&str> = config.services.iter().map(|e| e.value.name()).collect();
    let volumes: BTreeSet<&str> = config
        .volumes
        .iter()
        .filter_map(|v| v.value.name.as_deref())
        .collect();
    for (section, e) in config.containers() {
        let v = &e.value;
        if v.image.as_deref().unwrap_or("").is_empty() {
            errs.push(e.error(&[], format!("this {section} entry has no `image`")));
        }
        for p in &e.problems {
            errs.push(p.at(e));
        }
        check_ids(e, ids, errs);
        check_volume_sources(e, &volumes, errs);
        check_section_keys(section, e, errs);
        if section == Section::Services {
            check_depends(e, &services, errs);
        }
    }
}

/// uid, gid and additionalGids naming containers that exist.
fn check_ids(e: &Located<ImageEntry>, ids: &BTreeMap<String, u32>, errs: &mut ConfigErrors) {
    let v = &e.value;
    for (key, id) in [("uid", &v.uid), ("gid", &v.gid)] {
        if let Some(Err(m)) = id.as_ref().map(|id| id.resolve(ids)) {
            errs.push(e.error(&[key], m));
        }
    }
    for (i, id) in v.additional_gids.iter().flatten().enumerate() {
        if let Err(m) = id.resolve(ids) {
            errs.push(e.error(&["additionalGids", &i.to_string()], m));
        }
    }
}

/// A bind (from `binds` or a `type: bind` mount) whose source is not a path
/// names a volume, which must be declared.
fn check_volume_sources(
    e: &Located<ImageEntry>,
    volumes: &BTreeSet<&str>,
    errs: &mut ConfigErrors,
) {
    let v = &e.value;
    let mut named: Vec<(Vec<String>, &str)> = Vec::new();
    for (key, list) in [("binds", &v.binds), ("binds.add", &v.binds_add)] {
        for b in list.iter().flatten() {
            if let BindSource::Volume(name) = &b.source {
                named.push((vec![key.to_string(), b.index.to_string()], name));
            }
        }
    }
    for m in v.mounts.iter().flatten() {
        if let Some(name) = &m.volume {
            let path = vec!["mounts".to_string(), m.index.to_string(), "source".into()];
            named.push((path, name));
        }
    }
    for (path, src) in named {
        if volumes.contains(src) {
            continue;
        }
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        let known = if volumes.is_empty() {
            "there are no `volumes`".to_string()
        } else {
            format!(
                "volumes: {}",
                volumes.iter().copied().collect::<Vec<_>>().join(", ")
            )
        };
        errs.push(e.error(
            &p,
            format!("bind source {src:?} is not an absolute path, so it names a volume, but no volume has that name ({known})"),
        ));
    }
}

/// hull's keys where they mean something: supervision on services, `required` on onboot.
fn check_section_keys(section: Section, e: &Located<ImageEntry>, errs: &mut ConfigErrors) {
    if section != Section::Services {
        for key in [
            "restart",
            "restartBackoff",
            "startLimit",
            "depends",
            "readiness",
            "readinessTimeout",
            "stopSignal",
            "stopGracePeriod",
        ] {
            if e.has_key(key) {
                errs.push(e.error(
                    &[key],
                    format!("`{key}` applies to services only; {section} containers run once, to completion"),
                ));
            }
        }
    }
    if section != Section::Onboot && e.has_key("required") {
        errs.push(e.error(
            &["required"],
            format!("`required` applies to onboot containers only (a failure there stops the boot), not to {section}"),
        ));
    }
}

fn check_depends(e: &Located<ImageEntry>, services: &BTreeSet<&str>, errs: &mut ConfigErrors) {
    for (i, d) in e.value.depends.iter().flatten().enumerate() {
        let idx = i.to_string();
        if d == e.value.name() {
            errs.push(e.error(
                &["depends", &idx],
                format!("service {d:?} depends on itself"),
            ));
        } else if !services.contains(d.as_str()) {
            let hint = hint(d, services.iter().copied());
            errs.push(e.error(
                &["depends", &idx],
                format!("`depends` names {d:?}, which is not a service{hint}"),
            ));
        }
    }
}

/// Dependency cycles, each reported once at the dependency that closes it.
/// Depth first with an explicit stack: a long chain must not overflow the
/// call stack (found by feeding `hull validate` 60,000 chained services).
pub(super) fn check_cycles(config: &Config, errs: &mut ConfigErrors) {
    let by_name: BTreeMap<&str, &Located<ImageEntry>> = config
        .services
        .iter()
        .map(|e| (e.value.name(), e))
        .collect();
    let deps = |name: &str| -> Vec<&str> {
        by_name
            .get(name)
            .map(|e| {
                e.value
                    .depends
                    .iter()
                    .flatten()
                    .map(String::as_str)
                    .collect()
            })
            .unwrap_or_default()
    };
    // 1: on the current path, 2: done.
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    for root in config.services.iter().map(|e| e.value.name()) {
        if state.contains_key(root) {
            continue;
        }
        // (service, index of its next dependency to look at)
        let mut stack: Vec<(&str, usize)> = vec![(root, 0)];
        state.insert(root, 1);
        while let Some((name, i)) = stack.last().copied() {
            let ds = deps(name);
            let Some(&d) = ds.get(i) else {
                state.insert(name, 2);
                stack.pop();
                continue;
            };
            if let Some(top) = stack.last_mut() {
                top.1 += 1;
            }
            // Unknown names and self-dependencies are reported by check_depends.
            let Some(&d) = by_name.get_key_value(d).map(|(k, _)| k) else {
                continue;
            };
            if d == name {
                continue;
            }
            match state.get(d) {
                None => {
                    state.insert(d, 1);
                    stack.push((d, 0));
                }
                Some(1) => {
                    let from = stack.iter().position(|(n, _)| *n == d).unwrap_or(0);
                    let mut cycle: Vec<&str> = stack.iter().skip(from).map(|(n, _)| *n).collect();
                    cycle.push(d);
                    if let Some(e) = by_name.get(name) {
                        errs.push(e.error(
                            &["depends", &i.to_string()],
                            format!("dependency cycle: {}", cycle.join(" -> ")),
                        ));
                    }
                }
                _ => {}
            }
        }
    }
}
