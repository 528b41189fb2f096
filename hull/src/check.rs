//! Everything about a description that can be checked without pulling an
//! image: names, dependencies, hull's keys in the right sections, and each
//! field's values (capabilities, namespaces, binds, mounts, rlimits, ...).
//! `hull validate` and `hull build` both run it; the value checks also run
//! on an entry merged with its image's label, at build time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::config::{
    self, closest, Config, ConfigErrors, IdValue, ImageEntry, Located, ReadinessValue,
};
use crate::ocispec;

/// A problem in one entry: the key path it is at, and what is wrong.
pub type Problem = (Vec<String>, String);

fn problem(path: &[&str], message: impl Into<String>) -> Problem {
    (path.iter().map(|s| s.to_string()).collect(), message.into())
}

/// Checks a whole (merged) description; adds every problem to `errs`.
pub fn check(config: &Config, errs: &mut ConfigErrors) {
    check_names(config, errs);
    let ids = config.id_map();
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
        for (path, msg) in entry_problems(v) {
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            errs.push(e.error(&p, msg));
        }
        for (path, msg) in id_problems(v, &ids) {
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            errs.push(e.error(&p, msg));
        }
        for (path, src) in ocispec::bind_volume_sources(v) {
            if !volumes.contains(src.as_str()) {
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
        check_section_keys(section, e, errs);
        if section == "services" {
            check_depends(e, &services, errs);
        }
    }
    check_cycles(config, errs);
    check_kernel(config, errs);
    for i in &config.init {
        if i.value.trim().is_empty() {
            errs.push(i.error(&[], "an empty image reference in `init`"));
        }
    }
    check_files(config, &ids, errs);
    check_volumes(config, errs);
    for (pos, reference) in config.image_refs() {
        if reference.starts_with("@pkg:") || reference.trim().is_empty() {
            continue; // folders are checked by check_packages; empty ones above
        }
        if let Some(m) = crate::image_map::reference_problem(&reference) {
            errs.push(pos.error(m));
        }
    }
}

/// Container names: present, well formed, and unique across sections and files.
fn check_names(config: &Config, errs: &mut ConfigErrors) {
    let mut seen: BTreeMap<&str, (&str, &Located<ImageEntry>)> = BTreeMap::new();
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
            if section == *other_section && section != "services" {
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

/// hull's keys where they mean something: supervision on services, `required` on onboot.
fn check_section_keys(section: &str, e: &Located<ImageEntry>, errs: &mut ConfigErrors) {
    let v = &e.value;
    let set: [(&str, bool); 8] = [
        ("restart", v.restart.is_some()),
        ("restartBackoff", v.restart_backoff.is_some()),
        ("startLimit", v.start_limit.is_some()),
        ("depends", v.depends.is_some()),
        ("readiness", v.readiness.is_some()),
        ("readinessTimeout", v.readiness_timeout.is_some()),
        ("stopSignal", v.stop_signal.is_some()),
        ("stopGracePeriod", v.stop_grace_period.is_some()),
    ];
    if section != "services" {
        for (key, present) in set {
            if present {
                errs.push(e.error(
                    &[key],
                    format!("`{key}` applies to services only; {section} containers run once, to completion"),
                ));
            }
        }
    }
    if section != "onboot" && v.required.is_some() {
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
            let hint = closest(d, services.iter().copied())
                .map(|c| format!(" (did you mean {c:?}?)"))
                .unwrap_or_default();
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
fn check_cycles(config: &Config, errs: &mut ConfigErrors) {
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
                    let mut cycle: Vec<&str> = stack[from..].iter().map(|(n, _)| *n).collect();
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

fn check_kernel(config: &Config, errs: &mut ConfigErrors) {
    for k in &config.kernels {
        if let Some(i) = &k.value.image {
            if i.trim().is_empty() {
                errs.push(k.error(&["image"], "an empty kernel image reference"));
            }
        }
        // An empty `ucode` is LinuxKit's way to say "no microcode" (its
        // default); an empty `binary` means nothing.
        if k.value.binary.as_deref() == Some("") {
            errs.push(k.error(
                &["binary"],
                "`binary` names a file in the kernel image; it cannot be empty",
            ));
        }
    }
}

fn check_files(config: &Config, ids: &BTreeMap<String, u32>, errs: &mut ConfigErrors) {
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
        match kinds.len() {
            0 => errs.push(f.error(
                &["path"],
                "a file needs one of `contents`, `source`, `symlink`, `metadata` or `directory: true`",
            )),
            1 => {}
            _ => errs.push(f.error(
                &[kinds[1]],
                format!("`{}` and `{}` cannot be combined in one file", kinds[0], kinds[1]),
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
        if let Some(m) = &v.mode {
            if parse_mode(m).is_none() {
                errs.push(f.error(
                    &["mode"],
                    format!("mode {m:?} is not an octal number like \"0644\""),
                ));
            }
        }
        for (key, id) in [("uid", &v.uid), ("gid", &v.gid)] {
            if let Some(id) = id {
                if let Err(msg) = resolve_id(id, ids) {
                    errs.push(f.error(&[key], msg));
                }
            }
        }
    }
}

/// An octal file mode, `0644` or `0o644`.
pub fn parse_mode(m: &str) -> Option<u32> {
    let t = m.trim().trim_start_matches("0o");
    if t.is_empty() {
        return None;
    }
    u32::from_str_radix(t, 8).ok().filter(|v| *v <= 0o7777)
}

fn check_volumes(config: &Config, errs: &mut ConfigErrors) {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for v in &config.volumes {
        let name = v.value.name.clone().unwrap_or_default();
        // LinuxKit's rule for volume names.
        if !ocispec::volume_name_syntax(&name) {
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

/// A uid/gid value as a number: a number, `root`, or a container's name.
pub fn resolve_id(id: &IdValue, ids: &BTreeMap<String, u32>) -> Result<u32, String> {
    match id {
        IdValue::Number(n) => Ok(*n),
        IdValue::Name(s) if s.is_empty() || s == "root" => Ok(0),
        IdValue::Name(s) => {
            if let Ok(n) = s.parse::<u32>() {
                return Ok(n);
            }
            ids.get(s).copied().ok_or_else(|| {
                let hint = closest(s, ids.keys().map(String::as_str))
                    .map(|c| format!(" (did you mean {c:?}?)"))
                    .unwrap_or_default();
                format!("{s:?} is neither a number nor the name of a container{hint}")
            })
        }
    }
}

/// uid, gid and additionalGids naming containers that exist.
pub fn id_problems(v: &ImageEntry, ids: &BTreeMap<String, u32>) -> Vec<Problem> {
    let mut out = Vec::new();
    for (key, id) in [("uid", &v.uid), ("gid", &v.gid)] {
        if let Some(id) = id {
            if let Err(m) = resolve_id(id, ids) {
                out.push(problem(&[key], m));
            }
        }
    }
    for (i, id) in v.additional_gids.iter().flatten().enumerate() {
        if let Err(m) = resolve_id(id, ids) {
            out.push(problem(&["additionalGids", &i.to_string()], m));
        }
    }
    out
}

/// The value checks of one entry (also run on an entry merged with its label).
pub fn entry_problems(v: &ImageEntry) -> Vec<Problem> {
    let mut out = Vec::new();
    for key in ["capabilities", "capabilities.add", "ambient"] {
        let list = match key {
            "capabilities" => &v.capabilities,
            "capabilities.add" => &v.capabilities_add,
            _ => &v.ambient,
        };
        let list = list.as_deref().unwrap_or_default();
        for (i, c) in list.iter().enumerate() {
            let word = c.to_ascii_lowercase();
            // A lone `all` may also be added (it then stands for every
            // capability); adding `none` means nothing.
            if word == "all" || (word == "none" && key != "capabilities.add") {
                if list.len() > 1 {
                    out.push(problem(
                        &[key, &i.to_string()],
                        format!("{c:?} must be the only entry of `{key}`"),
                    ));
                }
                continue;
            }
            if !ocispec::ALL_CAPS.contains(&c.as_str()) {
                let hint = closest(c, ocispec::ALL_CAPS.iter().copied())
                    .or_else(|| {
                        let up = format!("CAP_{}", c.to_ascii_uppercase());
                        ocispec::ALL_CAPS.iter().copied().find(|k| *k == up)
                    })
                    .map(|c| format!(" (did you mean {c:?}?)"))
                    .unwrap_or_default();
                out.push(problem(
                    &[key, &i.to_string()],
                    format!("unknown capability {c:?}{hint}"),
                ));
            }
        }
    }
    for (key, value) in [
        ("net", &v.net),
        ("pid", &v.pid),
        ("ipc", &v.ipc),
        ("uts", &v.uts),
        ("userns", &v.userns),
    ] {
        if let Some(val) = value {
            // `root` is LinuxKit's other word for the host's namespace.
            let ok = matches!(val.as_str(), "host" | "root" | "new")
                || (val == "none" && key == "net")
                || val.starts_with('/');
            if !ok {
                let none = if key == "net" { ", `none`" } else { "" };
                out.push(problem(
                    &[key],
                    format!("{key}: {val:?} is not `host`, `new`{none} or the path of a namespace to join"),
                ));
            }
        }
    }
    // LinuxKit writes the hostname whatever `uts` says and its runc then
    // refuses to start the container without a private UTS namespace;
    // libcontainer would silently skip it. Say so before the boot.
    if v.hostname.as_deref().is_some_and(|h| !h.is_empty()) && v.uts.as_deref() != Some("new") {
        out.push(problem(
            &["hostname"],
            "`hostname` is set only in a new UTS namespace: add `uts: new`",
        ));
    }
    for (key, list) in [("binds", &v.binds), ("binds.add", &v.binds_add)] {
        for (i, b) in list.iter().flatten().enumerate() {
            if let Err(m) = ocispec::parse_bind(b) {
                out.push(problem(&[key, &i.to_string()], m));
            }
        }
    }
    for (i, t) in v.tmpfs.iter().flatten().enumerate() {
        if let Err(m) = ocispec::parse_tmpfs(t) {
            out.push(problem(&["tmpfs", &i.to_string()], m));
        }
    }
    for (i, m) in v.mounts.iter().flatten().enumerate() {
        if let Err(msg) = ocispec::complete_mount(m) {
            out.push(problem(&["mounts", &i.to_string()], msg));
        }
    }
    for (i, d) in v.devices.iter().flatten().enumerate() {
        if let Err(msg) = ocispec::device(d) {
            out.push(problem(&["devices", &i.to_string()], msg));
        }
    }
    for (i, r) in v.rlimits.iter().flatten().enumerate() {
        if let Err(msg) = ocispec::parse_rlimit(r) {
            out.push(problem(&["rlimits", &i.to_string()], msg));
        }
    }
    if let Some(p) = &v.rootfs_propagation {
        const KNOWN: &[&str] = &[
            "shared",
            "slave",
            "private",
            "unbindable",
            "rshared",
            "rslave",
            "rprivate",
            "runbindable",
        ];
        if !KNOWN.contains(&p.as_str()) {
            out.push(problem(
                &["rootfsPropagation"],
                format!("rootfsPropagation {p:?}: use one of {}", KNOWN.join(", ")),
            ));
        }
    }
    for (i, e) in v.env.iter().flatten().enumerate() {
        if !e.contains('=') || e.starts_with('=') {
            out.push(problem(
                &["env", &i.to_string()],
                format!("env {e:?} is not KEY=value"),
            ));
        }
    }
    if let Some(c) = &v.cwd {
        if !c.starts_with('/') {
            out.push(problem(
                &["cwd"],
                format!("cwd {c:?} must be an absolute path"),
            ));
        }
    }
    if matches!(&v.command, Some(c) if c.is_empty()) {
        out.push(problem(&["command"], "`command` is empty"));
    }
    for (key, list) in [
        ("maskedPaths", &v.masked_paths),
        ("readonlyPaths", &v.readonly_paths),
    ] {
        for (i, p) in list.iter().flatten().enumerate() {
            if !p.starts_with('/') {
                out.push(problem(
                    &[key, &i.to_string()],
                    format!("{p:?} must be an absolute path"),
                ));
            }
        }
    }
    if let Some(n) = v.oom_score_adj {
        if !(-1000..=1000).contains(&n) {
            out.push(problem(
                &["oomScoreAdj"],
                format!("oomScoreAdj {n} is outside -1000..1000"),
            ));
        }
    }
    if let Some(rt) = &v.runtime {
        // As in LinuxKit's runner, a relative directory is inside the rootfs.
        for (i, d) in rt.mkdir.iter().flatten().enumerate() {
            if d.is_empty() || d.split('/').any(|p| p == "..") {
                out.push(problem(
                    &["runtime", "mkdir", &i.to_string()],
                    format!("{d:?} is not a directory path (no `..`)"),
                ));
            }
        }
        for (i, m) in rt.mounts.iter().flatten().enumerate() {
            if let Err(msg) = ocispec::complete_runtime_mount(m) {
                out.push(problem(&["runtime", "mounts", &i.to_string()], msg));
            }
        }
        for (i, c) in rt.cgroups.iter().flatten().enumerate() {
            if c.is_empty() || c.split('/').any(|p| p == "..") {
                out.push(problem(
                    &["runtime", "cgroups", &i.to_string()],
                    format!("cgroup {c:?} is not a cgroup path"),
                ));
            }
        }
        for (i, itf) in rt.interfaces.iter().flatten().enumerate() {
            let idx = i.to_string();
            if itf.name.is_empty() {
                out.push(problem(
                    &["runtime", "interfaces", &idx],
                    "an interface needs a `name`",
                ));
            } else if itf.name.len() > 15 || itf.name.contains(['/', ' ']) {
                out.push(problem(
                    &["runtime", "interfaces", &idx, "name"],
                    format!(
                        "{:?} is not an interface name (15 characters at most)",
                        itf.name
                    ),
                ));
            }
            if itf.add == "veth" && itf.peer.is_empty() {
                out.push(problem(
                    &["runtime", "interfaces", &idx],
                    "a veth interface needs a `peer`",
                ));
            }
            if itf.add.is_empty() && (!itf.peer.is_empty() || itf.create_in_root) {
                out.push(problem(
                    &["runtime", "interfaces", &idx],
                    "`peer` and `createInRoot` need `add`",
                ));
            }
        }
        if let Some(b) = &rt.bind_ns {
            for (key, p) in [
                ("cgroup", &b.cgroup),
                ("ipc", &b.ipc),
                ("mnt", &b.mnt),
                ("net", &b.net),
                ("pid", &b.pid),
                ("user", &b.user),
                ("uts", &b.uts),
            ] {
                if let Some(p) = p {
                    if !p.starts_with('/') {
                        out.push(problem(
                            &["runtime", "bindNS", key],
                            format!("{p:?} must be an absolute path"),
                        ));
                    }
                }
            }
        }
    }
    // hull's keys.
    if let Some(b) = &v.restart_backoff {
        let initial = b.initial.as_ref().map(|d| d.millis());
        let max = b.max.as_ref().map(|d| d.millis());
        if let Some(Err(m)) = &initial {
            out.push(problem(&["restartBackoff", "initial"], m.clone()));
        }
        if let Some(Err(m)) = &max {
            out.push(problem(&["restartBackoff", "max"], m.clone()));
        }
        let i = match initial {
            Some(Ok(v)) => v,
            _ => 250,
        };
        let m = match max {
            Some(Ok(v)) => v,
            _ => 30_000,
        };
        if i == 0 || i > m {
            out.push(problem(
                &["restartBackoff"],
                format!(
                    "restartBackoff: initial ({i} ms) must be above 0 and at most max ({m} ms)"
                ),
            ));
        }
    }
    if v.start_limit == Some(0) {
        out.push(problem(&["startLimit"], "startLimit must be at least 1"));
    }
    for (key, d) in [
        ("readinessTimeout", &v.readiness_timeout),
        ("stopGracePeriod", &v.stop_grace_period),
    ] {
        if let Some(Err(m)) = d.as_ref().map(|d| d.millis()) {
            out.push(problem(&[key], m));
        }
    }
    if let Some(Err(m)) = v.stop_signal.as_ref().map(|s| s.number()) {
        out.push(problem(&["stopSignal"], m));
    }
    match &v.readiness {
        Some(ReadinessValue::Tcp(p)) if *p == 0 || *p > 65535 => {
            out.push(problem(
                &["readiness"],
                format!("port {p} is not a TCP port (1-65535)"),
            ));
        }
        Some(ReadinessValue::File(f)) if !f.starts_with('/') => {
            out.push(problem(
                &["readiness"],
                format!("readiness file {f:?} must be an absolute path"),
            ));
        }
        None if v.readiness_timeout.is_some() => {
            out.push(problem(
                &["readinessTimeout"],
                "`readinessTimeout` without `readiness`",
            ));
        }
        _ => {}
    }
    out
}

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
    let Ok(node) = crate::yaml_load::load(text) else {
        return;
    };
    let Some(label) = node.as_mapping().and_then(|m| m.get("config")) else {
        return;
    };
    let Some(entry) = config::item::<ImageEntry>(build_yml, label, errs) else {
        return;
    };
    for key in ["name", "image"] {
        let set = match key {
            "name" => entry.value.name.is_some(),
            _ => entry.value.image.is_some(),
        };
        if set {
            errs.push(entry.error(&[key], format!("a package's `config` cannot set `{key}`")));
        }
    }
    for (path, msg) in entry_problems(&entry.value) {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        errs.push(entry.error(&p, msg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn errors_of(files: &[(&str, &str)]) -> Vec<String> {
        let cfgs: Vec<Config> = files
            .iter()
            .map(|(n, t)| parse(Path::new(n), t).unwrap())
            .collect();
        let cfg = Config::merge(cfgs);
        let mut errs = ConfigErrors::default();
        check(&cfg, &mut errs);
        errs.0.iter().map(|e| e.to_string()).collect()
    }

    fn errors(text: &str) -> Vec<String> {
        errors_of(&[("t.yml", text)])
    }

    /// Every wanted message starts one of the reported lines.
    fn assert_has_errors(e: &[String], want: &[&str]) {
        for w in want {
            assert!(
                e.iter().any(|l| l.starts_with(w)),
                "missing {w:?} in {e:#?}"
            );
        }
    }

    #[test]
    fn duplicate_names_name_both_places_across_files() {
        let e = errors_of(&[
            ("a.yml", "onboot:\n  - name: x\n    image: i\n"),
            (
                "b.yml",
                "services:\n  - name: y\n    image: i\n  - name: x\n    image: i\n",
            ),
        ]);
        assert_eq!(e, ["b.yml:4:5: container name \"x\" is used twice: here (services) and at a.yml:2:5 (onboot)"]);
    }

    #[test]
    fn run_once_steps_may_repeat_a_name_within_their_section() {
        let ok = errors("onboot:\n  - name: mount\n    image: i\n  - name: mount\n    image: i\nonshutdown:\n  - name: bye\n    image: i\n  - name: bye\n    image: i\n");
        assert!(ok.is_empty(), "{ok:#?}");
        let e = errors_of(&[
            ("a.yml", "services:\n  - name: s\n    image: i\n"),
            (
                "b.yml",
                "onshutdown:\n  - name: mount\n    image: i\nservices:\n  - name: s\n    image: i\nonboot:\n  - name: mount\n    image: i\n",
            ),
        ]);
        assert_eq!(
            e,
            [
                "b.yml:2:5: container name \"mount\" is used twice: here (onshutdown) and at b.yml:8:5 (onboot)",
                "b.yml:5:5: container name \"s\" is used twice: here (services) and at a.yml:2:5 (services)",
            ],
        );
    }

    #[test]
    fn depends_unknown_self_and_cycles() {
        let e = errors("onboot:\n  - {name: init, image: i}\nservices:\n  - {name: a, image: i, depends: [b]}\n  - {name: b, image: i, depends: [c]}\n  - {name: c, image: i, depends: [a, init, bb, c]}\n");
        assert!(
            e.iter()
                .any(|l| l
                    .starts_with("t.yml:6:38: `depends` names \"init\", which is not a service")),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .any(|l| l.contains("\"bb\", which is not a service (did you mean \"b\"?)")),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .any(|l| l.contains("service \"c\" depends on itself")),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .any(|l| l == "t.yml:6:35: dependency cycle: a -> b -> c -> a"),
            "{e:#?}"
        );
        assert_eq!(e.len(), 4, "{e:#?}");
    }

    #[test]
    fn a_long_dependency_chain_does_not_overflow_the_stack() {
        let n = 30_000;
        let mut text = String::from("services:\n");
        for i in 0..n {
            text.push_str(&format!(
                "  - {{name: s{i}, image: x, depends: [s{}]}}\n",
                i + 1
            ));
        }
        text.push_str(&format!("  - {{name: s{n}, image: x, depends: [s0]}}\n"));
        let e = errors(&text);
        assert_eq!(e.len(), 1);
        assert!(e[0].ends_with(&format!("s{n} -> s0")), "{}", &e[0][..80]);
    }

    #[test]
    fn hull_keys_in_the_wrong_section() {
        let e = errors("onboot:\n  - name: o\n    image: i\n    restart: always\n    stopGracePeriod: 5s\n    required: true\nonshutdown:\n  - name: s\n    image: i\n    required: true\nservices:\n  - name: v\n    image: i\n    required: false\n");
        assert_eq!(e.len(), 4, "{e:#?}");
        assert!(
            e[0].starts_with("t.yml:4:5: `restart` applies to services only"),
            "{e:#?}"
        );
        assert!(
            e[1].starts_with("t.yml:5:5: `stopGracePeriod` applies to services only"),
            "{e:#?}"
        );
        assert!(
            e[2].starts_with("t.yml:10:5: `required` applies to onboot containers only"),
            "{e:#?}"
        );
        assert!(e[3].starts_with("t.yml:14:5: "), "{e:#?}");
    }

    #[test]
    fn value_errors_point_at_their_key() {
        let e = errors("services:\n  - name: s\n    image: i\n    capabilities: [CAP_NET_ADMN, all]\n    pid: private\n    stopSignal: SIGFOO\n    stopGracePeriod: soon\n    restartBackoff: {initial: 1m, max: 1s}\n    readiness: {tcp: 0}\n    uid: nobody\n    binds: [relative:/x]\n");
        let want = [
            "t.yml:4:20: unknown capability \"CAP_NET_ADMN\" (did you mean \"CAP_NET_ADMIN\"?)",
            "t.yml:4:34: \"all\" must be the only entry of `capabilities`",
            "t.yml:5:5: pid: \"private\" is not `host`, `new` or the path of a namespace to join",
            "t.yml:11:13: bind source \"relative\" is not an absolute path, so it names a volume, but no volume has that name (there are no `volumes`)",
            "t.yml:8:5: restartBackoff: initial (60000 ms) must be above 0 and at most max (1000 ms)",
            "t.yml:7:5: \"soon\" is not a duration like 250ms, 10s or 2m",
            "t.yml:6:5: \"SIGFOO\" is not a signal name (like SIGTERM or SIGINT)",
            "t.yml:9:5: port 0 is not a TCP port (1-65535)",
            "t.yml:10:5: \"nobody\" is neither a number nor the name of a container",
        ];
        assert_has_errors(&e, &want);
    }

    #[test]
    fn files_and_volumes() {
        let e = errors("files:\n  - path: etc/a\n    contents: x\n    directory: true\n  - path: etc/b\n  - path: etc/a\n    contents: y\n    mode: '0999'\n    uid: nobody\nvolumes:\n  - name: Bad\n  - name: v\n    format: raw\n  - name: v\n");
        let want = [
            "t.yml:4:5: `contents` and `directory` cannot be combined",
            "t.yml:5:5: a file needs one of",
            "t.yml:6:5: path \"etc/a\" is already written at t.yml:2:5",
            "t.yml:8:5: mode \"0999\" is not an octal number",
            "t.yml:9:5: \"nobody\" is neither a number",
            "t.yml:11:5: volume name \"Bad\" must be",
            "t.yml:13:5: volume format \"raw\"",
            "t.yml:14:5: volume name \"v\" is used twice: here and at t.yml:12:5",
        ];
        assert_has_errors(&e, &want);
        assert_eq!(e.len(), want.len(), "{e:#?}");
    }

    #[test]
    fn binds_may_name_a_volume_and_root_means_host() {
        // LinuxKit: a bind or `type: bind` mount whose source is no path uses
        // the volume of that name; `root` is the host's namespace.
        let ok = errors("services:\n  - name: s\n    image: i\n    net: root\n    ipc: root\n    binds: [data:/data]\n    binds.add: ['data:/ro:ro']\n    mounts: [{type: bind, source: data, destination: /m}]\nvolumes:\n  - name: data\n");
        assert!(ok.is_empty(), "{ok:#?}");
        let e = errors("services:\n  - name: s\n    image: i\n    binds: [data:/data, 'Not A Volume:/x']\n    mounts: [{type: bind, source: dta, destination: /m}]\nvolumes:\n  - name: datas\n");
        let want = [
            "t.yml:4:13: bind source \"data\" is not an absolute path, so it names a volume, but no volume has that name (volumes: datas)",
            "t.yml:4:25: bind \"Not A Volume:/x\": the source must be an absolute path or a volume name",
            "t.yml:5:27: bind source \"dta\" is not an absolute path",
        ];
        assert_has_errors(&e, &want);
        assert_eq!(e.len(), want.len(), "{e:#?}");
    }

    #[test]
    fn a_good_file_has_no_errors() {
        let e = errors("onboot:\n  - {name: a, image: i, required: true}\nservices:\n  - name: db\n    image: i\n    readiness: notify\n    uid: a\n  - name: web\n    image: i\n    depends: [db]\n    readiness: {file: /run/web.ready}\n    readinessTimeout: 30s\n    restart: always\n    stopSignal: 2\nfiles:\n  - {path: etc/x, contents: hi, uid: web, mode: '0644'}\n  - {path: etc/y, metadata: yaml}\n");
        assert!(e.is_empty(), "{e:#?}");
    }
}
