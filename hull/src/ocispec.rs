//! The OCI runtime spec (`config.json`) and `runtime.json` of each
//! container, computed from the image's config, then its
//! `org.mobyproject.config` label, then the YAML entry, with LinuxKit's
//! precedence (`ConfigToOCI` in LinuxKit's `moby/config.go`): a field
//! written in the YAML replaces the label's, except `binds.add` and
//! `capabilities.add`, which add to the label's `binds` and `capabilities`.

use std::collections::BTreeMap;

use contract::{Readiness, ReadinessCheck, RuntimeJson, RuntimeMount};
use serde_json::{json, Map, Value};

use crate::check;
use crate::config::{self, Device, ImageEntry, Mount, ReadinessValue};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Every capability the 6.1 kernels know.
pub const ALL_CAPS: &[&str] = &[
    "CAP_AUDIT_CONTROL",
    "CAP_AUDIT_READ",
    "CAP_AUDIT_WRITE",
    "CAP_BLOCK_SUSPEND",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_KILL",
    "CAP_LEASE",
    "CAP_LINUX_IMMUTABLE",
    "CAP_MAC_ADMIN",
    "CAP_MAC_OVERRIDE",
    "CAP_MKNOD",
    "CAP_NET_ADMIN",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_RAW",
    "CAP_PERFMON",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYSLOG",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_CHROOT",
    "CAP_SYS_MODULE",
    "CAP_SYS_NICE",
    "CAP_SYS_PACCT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_WAKE_ALARM",
];

const RLIMITS: &[&str] = &[
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(
        "container {name}: the org.mobyproject.config label is not a valid image entry: {message}"
    )]
    BadLabel { name: String, message: String },
    #[error("container {name}: {message}")]
    BadValue { name: String, message: String },
    #[error(
        "container {name}: has no command (neither the YAML, the label nor the image gives one)"
    )]
    NoCommand { name: String },
    #[error("container {name}: the computed spec does not validate: {message}")]
    Invalid { name: String, message: String },
}

/// The YAML entry over the image's label (LinuxKit's precedence).
pub fn merge_label(
    name: &str,
    label: Option<&str>,
    yaml: &ImageEntry,
) -> Result<ImageEntry, SpecError> {
    let bad_label = |message: String| SpecError::BadLabel {
        name: name.into(),
        message,
    };
    let base = match label {
        Some(l) if !l.trim().is_empty() => config::parse_label(l).map_err(bad_label)?,
        _ => ImageEntry::default(),
    };
    let to_map = |e: &ImageEntry| match serde_json::to_value(e) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let mut out = to_map(&base);
    let top = to_map(yaml);
    // `.add` only means something in the YAML (as in LinuxKit).
    out.remove("binds.add");
    out.remove("capabilities.add");
    for (plain, add) in [("binds", "binds.add"), ("capabilities", "capabilities.add")] {
        if top.contains_key(plain) {
            continue;
        }
        if let Some(Value::Array(extra)) = top.get(add) {
            let mut list = match out.remove(plain) {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            };
            // A label's lone `all` already holds what is added (LinuxKit
            // would refuse the mixed list); a lone `none` gives way to it.
            let lone = |w: &str| {
                list.len() == 1 && list[0].as_str().is_some_and(|s| s.eq_ignore_ascii_case(w))
            };
            let adds_all = extra
                .iter()
                .any(|x| x.as_str().is_some_and(|s| s.eq_ignore_ascii_case("all")));
            if plain == "capabilities" && (lone("all") || adds_all) {
                out.insert(plain.into(), json!(["all"]));
                continue;
            }
            if plain == "capabilities" && lone("none") {
                list.clear();
            }
            for x in extra {
                if !list.contains(x) {
                    list.push(x.clone());
                }
            }
            out.insert(plain.into(), Value::Array(list));
        }
    }
    overlay(&mut out, top);
    out.remove("binds.add");
    out.remove("capabilities.add");
    serde_json::from_value(Value::Object(out)).map_err(|e| bad_label(e.to_string()))
}

/// `top`'s keys replace `base`'s; `runtime` and its `bindNS` merge key by key.
fn overlay(base: &mut Map<String, Value>, top: Map<String, Value>) {
    for (k, v) in top {
        match (base.get_mut(&k), v) {
            (Some(Value::Object(b)), Value::Object(t)) if k == "runtime" || k == "bindNS" => {
                overlay(b, t)
            }
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// `SRC:DST[:OPTS]`, as LinuxKit reads it. Options default to
/// `rw,rbind,rshared`; given options get `rbind` added.
pub fn parse_bind(b: &str) -> Result<(String, String, Vec<String>), String> {
    let parts: Vec<&str> = b.split(':').collect();
    if parts.len() < 2 {
        return Err(format!(
            "bind {b:?} is not SOURCE:DESTINATION[:OPTIONS] (missing ':')"
        ));
    }
    if parts.len() > 3 {
        return Err(format!(
            "bind {b:?} is not SOURCE:DESTINATION[:OPTIONS] (too many ':')"
        ));
    }
    // A source that is not a path names one of the `volumes` (LinuxKit's
    // rule); `check` makes sure that volume is declared.
    if !parts[0].starts_with('/') && !volume_name_syntax(parts[0]) {
        return Err(format!(
            "bind {b:?}: the source must be an absolute path or a volume name"
        ));
    }
    if !parts[1].starts_with('/') {
        return Err(format!(
            "bind {b:?}: the destination must be an absolute path"
        ));
    }
    let opts = match parts.get(2) {
        None => vec!["rw".into(), "rbind".into(), "rshared".into()],
        Some(o) => {
            let mut v: Vec<String> = o
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            if !v.iter().any(|x| x == "rbind") {
                v.push("rbind".into());
            }
            v
        }
    };
    Ok((parts[0].into(), parts[1].into(), opts))
}

/// LinuxKit's form of a volume name: lowercase letters, digits, `_`, `-`.
pub fn volume_name_syntax(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// The source of a bind (from `binds` or a `type: bind` mount) when it
/// names a volume rather than a path.
pub fn bind_volume_sources(entry: &ImageEntry) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    for (key, list) in [("binds", &entry.binds), ("binds.add", &entry.binds_add)] {
        for (i, b) in list.iter().flatten().enumerate() {
            if let Ok((src, _, _)) = parse_bind(b) {
                if !src.starts_with('/') {
                    out.push((vec![key.to_string(), i.to_string()], src));
                }
            }
        }
    }
    for (i, m) in entry.mounts.iter().flatten().enumerate() {
        let src = m.source.as_deref().unwrap_or("");
        if m.kind.as_deref() == Some("bind") && !src.is_empty() && !src.starts_with('/') {
            out.push((
                vec!["mounts".into(), i.to_string(), "source".into()],
                src.into(),
            ));
        }
    }
    out
}

/// `DST[:OPTS]` of `tmpfs`.
pub fn parse_tmpfs(t: &str) -> Result<(String, Vec<String>), String> {
    let parts: Vec<&str> = t.split(':').collect();
    if parts.len() > 2 {
        return Err(format!(
            "tmpfs {t:?} is not DESTINATION[:OPTIONS] (too many ':')"
        ));
    }
    if !parts[0].starts_with('/') {
        return Err(format!(
            "tmpfs {t:?}: the destination must be an absolute path"
        ));
    }
    let opts = parts
        .get(1)
        .map(|o| {
            o.split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    Ok((parts[0].into(), opts))
}

/// A mount with LinuxKit's inferences: the type from a special source
/// (`proc`, `sysfs`, `devpts`, `cgroup`, `mqueue`; `tmpfs` for `/dev`), the
/// source from the type, the destination from the type.
pub fn complete_mount(m: &Mount) -> Result<(String, String, String, Vec<String>), String> {
    let done = infer_mount(m)?;
    if !done.1.starts_with('/') {
        return Err(format!(
            "mount destination {:?} must be an absolute path",
            done.1
        ));
    }
    Ok(done)
}

/// A `runtime.mounts` entry: as [`complete_mount`], but a relative
/// destination is allowed and means inside the container's rootfs (as in
/// LinuxKit's service runner); an absolute one is in the guest's root.
pub fn complete_runtime_mount(m: &Mount) -> Result<(String, String, String, Vec<String>), String> {
    let done = infer_mount(m)?;
    if done.1.split('/').any(|p| p == "..") {
        return Err(format!(
            "mount destination {:?} must not contain `..`",
            done.1
        ));
    }
    Ok(done)
}

fn infer_mount(m: &Mount) -> Result<(String, String, String, Vec<String>), String> {
    let src = m.source.clone().unwrap_or_default();
    let dest = m.destination.clone().unwrap_or_default();
    let mut kind = m.kind.clone().unwrap_or_default();
    if kind.is_empty()
        && matches!(
            src.as_str(),
            "mqueue" | "devpts" | "proc" | "sysfs" | "cgroup"
        )
    {
        kind = src.clone();
    }
    if kind.is_empty() && dest == "/dev" {
        kind = "tmpfs".into();
    }
    if kind.is_empty() {
        return Err(format!(
            "the mount at {dest:?} has no `type` and none can be inferred"
        ));
    }
    let src = if src.is_empty() { kind.clone() } else { src };
    let dest = if dest.is_empty() {
        match kind.as_str() {
            "proc" => "/proc",
            "devpts" => "/dev/pts",
            "sysfs" => "/sys",
            "cgroup" | "cgroup2" => "/sys/fs/cgroup",
            "mqueue" => "/dev/mqueue",
            _ => return Err(format!("a {kind} mount needs a `destination`")),
        }
        .to_string()
    } else {
        dest
    };
    Ok((src, dest, kind, m.options.clone().unwrap_or_default()))
}

/// The relative `runtime.mounts` destinations and `runtime.mkdir`
/// directories of an entry: directories the build makes in the rootfs,
/// which is read-only in the guest.
pub fn runtime_rootfs_dirs(entry: &ImageEntry) -> Vec<String> {
    let Some(rt) = entry.runtime.as_ref() else {
        return Vec::new();
    };
    rt.mounts
        .iter()
        .flatten()
        .filter_map(|m| complete_runtime_mount(m).ok())
        .map(|(_, dest, _, _)| dest)
        .chain(rt.mkdir.iter().flatten().cloned())
        .filter(|d| !d.starts_with('/') && !d.is_empty())
        .collect()
}

/// A `devices` entry: the OCI device (none for `path: all`) and its cgroup rule.
pub fn device(d: &Device) -> Result<(Option<Value>, Value), String> {
    if !matches!(d.kind.as_str(), "b" | "c" | "u" | "p" | "a") {
        return Err(format!("device type {:?}: use b, c, u, p or a", d.kind));
    }
    if d.path == "all" {
        return Ok((
            None,
            json!({"allow": true, "type": d.kind, "access": "rwm"}),
        ));
    }
    if !d.path.starts_with('/') {
        return Err(format!(
            "device path {:?} must be absolute (or `all`)",
            d.path
        ));
    }
    let mode = d.mode.as_deref().unwrap_or("0600");
    let mode =
        check::parse_mode(mode).ok_or_else(|| format!("device mode {mode:?} is not octal"))?;
    let dev = json!({"path": d.path, "type": d.kind, "major": d.major, "minor": d.minor, "fileMode": mode});
    let rule =
        json!({"allow": true, "type": d.kind, "major": d.major, "minor": d.minor, "access": "rwm"});
    Ok((Some(dev), rule))
}

/// `NAME,SOFT,HARD` (`RLIMIT_` optional, `unlimited` allowed).
pub fn parse_rlimit(r: &str) -> Result<Value, String> {
    let parts: Vec<&str> = r.splitn(3, ',').collect();
    if parts.len() != 3 {
        return Err(format!("rlimit {r:?} is not NAME,SOFT,HARD"));
    }
    let mut name = parts[0].trim().to_ascii_uppercase();
    if !name.starts_with("RLIMIT_") {
        name = format!("RLIMIT_{name}");
    }
    if !RLIMITS.contains(&name.as_str()) {
        return Err(format!("rlimit {:?}: unknown limit", parts[0].trim()));
    }
    let num = |s: &str| -> Result<u64, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("unlimited") {
            Ok(u64::MAX)
        } else {
            s.parse()
                .map_err(|_| format!("rlimit {r:?}: {s:?} is not a number or `unlimited`"))
        }
    };
    let (soft, hard) = (num(parts[1])?, num(parts[2])?);
    if soft > hard {
        return Err(format!(
            "rlimit {r:?}: the soft limit is above the hard limit"
        ));
    }
    Ok(json!({"type": name, "soft": soft, "hard": hard}))
}

/// `capabilities` or `ambient` as a list: a single `all` is every
/// capability, a single `none` (or nothing written) is none.
fn cap_list(list: Option<&Vec<String>>) -> Result<Vec<String>, String> {
    let list = list.cloned().unwrap_or_default();
    if list.len() == 1 {
        match list[0].to_ascii_lowercase().as_str() {
            "all" => return Ok(ALL_CAPS.iter().map(|s| s.to_string()).collect()),
            "none" => return Ok(Vec::new()),
            _ => {}
        }
    }
    for c in &list {
        if !ALL_CAPS.contains(&c.as_str()) {
            return Err(format!("unknown capability {c:?}"));
        }
    }
    Ok(list)
}

/// Where a container's mounts land inside its rootfs: the build creates
/// them, because the guest's root (and so every rootfs) is read-only.
/// Each comes with the source of a bind mount (`None` for other types), whose
/// kind in the guest decides whether the mount point is a file or a directory.
pub fn mount_destinations(config: &Value) -> Vec<(String, Option<String>)> {
    config["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let dest = m["destination"].as_str()?.to_string();
            let bind = m["type"] == "bind"
                || m["options"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"));
            let src = m["source"].as_str().filter(|_| bind).map(String::from);
            Some((dest, src))
        })
        .collect()
}

/// Computes `config.json` for one container from its merged entry.
/// `image_config` is the OCI image config's `config` object; `ids` the
/// uid of every container by name ([`config::Config::id_map`]).
pub fn runtime_spec(
    name: &str,
    section: &str,
    entry: &ImageEntry,
    image_config: &Value,
    ids: &BTreeMap<String, u32>,
) -> Result<Value, SpecError> {
    let bad = |message: String| SpecError::BadValue {
        name: name.into(),
        message,
    };
    // The same value checks as `hull validate`, now on the label's fields too.
    if let Some((path, msg)) = check::entry_problems(entry)
        .into_iter()
        .chain(check::id_problems(entry, ids))
        .next()
    {
        return Err(bad(format!("{}: {msg}", path.join("."))));
    }
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    };
    // Command, env and cwd may come from the image (a Dockerfile sets them).
    let args = match &entry.command {
        Some(c) => c.clone(),
        None => {
            let mut a = strings(&image_config["Entrypoint"]);
            a.extend(strings(&image_config["Cmd"]));
            a
        }
    };
    if args.is_empty() {
        return Err(SpecError::NoCommand { name: name.into() });
    }
    let mut env = entry
        .env
        .clone()
        .unwrap_or_else(|| strings(&image_config["Env"]));
    // Not LinuxKit's: without PATH the runtime cannot find a bare argv[0].
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    let cwd = entry
        .cwd
        .clone()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            image_config["WorkingDir"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(String::from)
        })
        .unwrap_or_else(|| "/".into());
    let readonly = entry.readonly.unwrap_or(false);

    // LinuxKit's default mounts (Docker's options); `readonly` makes /dev and /sys read-only too.
    let mut mounts: BTreeMap<String, Value> = BTreeMap::new();
    let mut dev_opts = vec!["nosuid", "strictatime", "mode=755", "size=65536k"];
    let mut sys_opts = vec!["nosuid", "noexec", "nodev"];
    if readonly {
        dev_opts.push("ro");
        sys_opts.push("ro");
    }
    for (dest, kind, source, opts) in [
        (
            "/proc",
            "proc",
            "proc",
            vec!["nosuid", "nodev", "noexec", "relatime"],
        ),
        ("/dev", "tmpfs", "tmpfs", dev_opts),
        (
            "/dev/pts",
            "devpts",
            "devpts",
            vec![
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
            ],
        ),
        ("/sys", "sysfs", "sysfs", sys_opts),
        (
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            vec!["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ] {
        mounts.insert(
            dest.into(),
            json!({"destination": dest, "type": kind, "source": source, "options": opts}),
        );
    }
    for t in entry.tmpfs.iter().flatten() {
        let (dest, opts) = parse_tmpfs(t).map_err(bad)?;
        mounts.insert(
            dest.clone(),
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": opts}),
        );
    }
    for b in entry.binds.iter().flatten() {
        let (src, dest, opts) = parse_bind(b).map_err(bad)?;
        mounts.insert(
            dest.clone(),
            json!({"destination": dest, "type": "bind", "source": src, "options": opts}),
        );
    }
    for m in entry.mounts.iter().flatten() {
        let (src, dest, kind, opts) = complete_mount(m).map_err(bad)?;
        mounts.insert(
            dest.clone(),
            json!({"destination": dest, "type": kind, "source": src, "options": opts}),
        );
    }
    // Sorted by destination, so /dev comes before /dev/pts.
    let mounts: Vec<Value> = mounts.into_values().collect();

    // net, ipc, uts, user: the host's unless asked; pid: a new one unless
    // `host`; mount and cgroup: always new. A path joins that namespace.
    let mut namespaces = Vec::new();
    for (value, kind, default_new) in [
        (&entry.net, "network", false),
        (&entry.ipc, "ipc", false),
        (&entry.uts, "uts", false),
        (&entry.pid, "pid", true),
        (&entry.userns, "user", false),
    ] {
        match value.as_deref() {
            None | Some("") if default_new => namespaces.push(json!({"type": kind})),
            None | Some("") | Some("host") | Some("root") => {}
            Some("new") | Some("none") => namespaces.push(json!({"type": kind})),
            Some(path) => namespaces.push(json!({"type": kind, "path": path})),
        }
    }
    namespaces.push(json!({"type": "mount"}));
    namespaces.push(json!({"type": "cgroup"}));

    let caps = cap_list(entry.capabilities.as_ref()).map_err(bad)?;
    let ambient = cap_list(entry.ambient.as_ref()).map_err(bad)?;
    let mut bounding: Vec<String> = caps.iter().chain(&ambient).cloned().collect();
    bounding.sort();
    bounding.dedup();

    let mut rlimits = Vec::new();
    for r in entry.rlimits.iter().flatten() {
        rlimits.push(parse_rlimit(r).map_err(bad)?);
    }
    let id = |v: &Option<config::IdValue>| -> Result<u32, SpecError> {
        v.as_ref()
            .map(|v| check::resolve_id(v, ids).map_err(bad))
            .unwrap_or(Ok(0))
    };
    let uid = id(&entry.uid)?;
    let gid = id(&entry.gid)?;
    let mut additional = Vec::new();
    for g in entry.additional_gids.iter().flatten() {
        additional.push(check::resolve_id(g, ids).map_err(bad)?);
    }

    let mut resources = match &entry.resources {
        Some(r) => serde_json::to_value(r).unwrap_or_else(|_| json!({})),
        None => json!({}),
    };
    let mut devices = Vec::new();
    for d in entry.devices.iter().flatten() {
        let (dev, rule) = device(d).map_err(bad)?;
        devices.extend(dev);
        match resources["devices"].as_array_mut() {
            Some(a) => a.push(rule),
            None => resources["devices"] = json!([rule]),
        }
    }

    let mut user = json!({"uid": uid, "gid": gid});
    if !additional.is_empty() {
        user["additionalGids"] = json!(additional);
    }
    let mut process = json!({
        "terminal": false,
        "user": user,
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {
            "bounding": bounding,
            "effective": caps,
            "inheritable": bounding,
            "permitted": bounding,
            "ambient": ambient,
        },
        "noNewPrivileges": entry.no_new_privileges.unwrap_or(false),
    });
    if !rlimits.is_empty() {
        process["rlimits"] = json!(rlimits);
    }
    if let Some(o) = entry.oom_score_adj {
        process["oomScoreAdj"] = json!(o);
    }
    // libcontainer needs an absolute cgroups path; LinuxKit's are relative to the root.
    let cgroup = match entry.cgroups_path.as_deref().filter(|p| !p.is_empty()) {
        Some(p) if p.starts_with('/') => p.to_string(),
        Some(p) => format!("/{p}"),
        None => format!("/hull/{section}/{name}"),
    };
    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": cgroup,
        "maskedPaths": entry.masked_paths.clone().unwrap_or_default(),
        "readonlyPaths": entry.readonly_paths.clone().unwrap_or_default(),
    });
    if resources.as_object().is_some_and(|r| !r.is_empty()) {
        linux["resources"] = resources;
    }
    if !devices.is_empty() {
        linux["devices"] = json!(devices);
    }
    if let Some(s) = entry.sysctl.as_ref().filter(|s| !s.is_empty()) {
        linux["sysctl"] = json!(s);
    }
    if let Some(p) = entry.rootfs_propagation.as_ref().filter(|p| !p.is_empty()) {
        linux["rootfsPropagation"] = json!(p);
    }
    for (key, list) in [
        ("uidMappings", &entry.uid_mappings),
        ("gidMappings", &entry.gid_mappings),
    ] {
        if let Some(l) = list.as_ref().filter(|l| !l.is_empty()) {
            let v: Vec<Value> = l
                .iter()
                .map(
                    |m| json!({"containerID": m.container_id, "hostID": m.host_id, "size": m.size}),
                )
                .collect();
            linux[key] = json!(v);
        }
    }
    let mut config = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": "rootfs", "readonly": readonly},
        "mounts": mounts,
        "linux": linux,
    });
    if let Some(h) = entry.hostname.as_ref().filter(|h| !h.is_empty()) {
        config["hostname"] = json!(h);
    }
    if let Some(a) = entry.annotations.as_ref().filter(|a| !a.is_empty()) {
        config["annotations"] = json!(a);
    }
    // The contract with libcontainer: whatever we write must parse as an OCI spec.
    serde_json::from_value::<oci_spec::runtime::Spec>(config.clone()).map_err(|e| {
        SpecError::Invalid {
            name: name.into(),
            message: e.to_string(),
        }
    })?;
    Ok(config)
}

/// `runtime.json` for one container: LinuxKit's `runtime` section and
/// hull's supervision keys. Values were checked by [`check::entry_problems`];
/// a value that still does not parse falls back to the default.
/// `bundle` is where the container sits in the guest (`/containers/...`):
/// a relative `runtime.mounts` destination lands in its rootfs.
pub fn runtime_json(entry: &ImageEntry, bundle: &str) -> RuntimeJson {
    let rt = entry.runtime.clone().unwrap_or_default();
    let d = RuntimeJson::default();
    let in_rootfs = |p: String| {
        if p.starts_with('/') {
            p
        } else {
            format!("{}/rootfs/{p}", bundle.trim_end_matches('/'))
        }
    };
    let mounts: Vec<RuntimeMount> = rt
        .mounts
        .unwrap_or_default()
        .iter()
        .filter_map(|m| complete_runtime_mount(m).ok())
        .map(|(source, destination, kind, options)| RuntimeMount {
            destination: in_rootfs(destination),
            source,
            kind,
            options,
        })
        .collect();
    // An overlay needs its upper and work directories before it is mounted
    // (LinuxKit's runner makes them too); `mkdir` runs before the mounts.
    let mut mkdir: Vec<String> = rt
        .mkdir
        .unwrap_or_default()
        .into_iter()
        .map(in_rootfs)
        .collect();
    for m in &mounts {
        for o in &m.options {
            if let Some((k, dir)) = o.split_once('=') {
                if (k == "upperdir" || k == "workdir")
                    && dir.starts_with('/')
                    && !mkdir.iter().any(|d| d == dir)
                {
                    mkdir.push(dir.to_string());
                }
            }
        }
    }
    let ms = |v: &Option<config::DurationValue>, default: u64| {
        v.as_ref().and_then(|v| v.millis().ok()).unwrap_or(default)
    };
    let backoff = entry.restart_backoff.clone().unwrap_or_default();
    RuntimeJson {
        mkdir,
        mounts,
        console_log: entry.console.unwrap_or(d.console_log),
        required: entry.required.unwrap_or(false),
        restart: entry.restart.unwrap_or_default(),
        stop_signal: entry
            .stop_signal
            .as_ref()
            .and_then(|s| s.number().ok())
            .unwrap_or(d.stop_signal),
        stop_grace_ms: ms(&entry.stop_grace_period, d.stop_grace_ms),
        backoff_initial_ms: ms(&backoff.initial, d.backoff_initial_ms),
        backoff_max_ms: ms(&backoff.max, d.backoff_max_ms),
        start_limit: entry.start_limit.unwrap_or(d.start_limit),
        depends: entry.depends.clone().unwrap_or_default(),
        readiness: entry.readiness.as_ref().map(|r| Readiness {
            check: match r {
                ReadinessValue::Notify => ReadinessCheck::Notify,
                ReadinessValue::File(f) => ReadinessCheck::File(f.clone()),
                ReadinessValue::Tcp(p) => ReadinessCheck::Tcp(u16::try_from(*p).unwrap_or(0)),
            },
            timeout_ms: ms(&entry.readiness_timeout, 60_000),
        }),
        cgroups: rt.cgroups.unwrap_or_default(),
        interfaces: rt.interfaces.unwrap_or_default(),
        bind_ns: rt.bind_ns.unwrap_or_default(),
        namespace: rt.namespace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(yaml: &str) -> ImageEntry {
        marked_yaml::from_yaml(0, yaml).unwrap()
    }

    fn spec(yaml: &str) -> Value {
        spec_with(yaml, &json!({}))
    }

    fn spec_with(yaml: &str, image: &Value) -> Value {
        let ids = BTreeMap::from([("a".to_string(), 100), ("b".to_string(), 101)]);
        runtime_spec("s", "services", &entry(yaml), image, &ids).unwrap()
    }

    fn namespaces(c: &Value) -> Vec<(String, Option<String>)> {
        c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["type"].as_str().unwrap().to_string(),
                    n["path"].as_str().map(String::from),
                )
            })
            .collect()
    }

    fn mount<'a>(c: &'a Value, dest: &str) -> &'a Value {
        c["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == dest)
            .unwrap_or_else(|| panic!("no mount at {dest}"))
    }

    #[test]
    fn linuxkit_defaults() {
        let c = spec("command: [sh, -c, 'echo hi']\n");
        let ns: Vec<String> = namespaces(&c).into_iter().map(|n| n.0).collect();
        assert_eq!(ns, ["pid", "mount", "cgroup"]);
        assert_eq!(c["process"]["args"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(c["process"]["user"], json!({"uid": 0, "gid": 0}));
        assert_eq!(c["process"]["capabilities"]["bounding"], json!([]));
        assert_eq!(c["process"]["cwd"], "/");
        assert_eq!(c["linux"]["cgroupsPath"], "/hull/services/s");
        assert_eq!(c["linux"]["maskedPaths"], json!([]));
        assert_eq!(c["root"], json!({"path": "rootfs", "readonly": false}));
        let dests: Vec<&str> = c["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            ["/dev", "/dev/pts", "/proc", "/sys", "/sys/fs/cgroup"]
        );
        assert_eq!(
            mount(&c, "/sys/fs/cgroup")["options"]
                .as_array()
                .unwrap()
                .last()
                .unwrap(),
            "ro"
        );
        assert!(c["process"]["env"][0]
            .as_str()
            .unwrap()
            .starts_with("PATH="));
    }

    #[test]
    fn namespaces_host_new_and_paths() {
        let c = spec("command: [x]\npid: host\nnet: new\nipc: /run/netns/ipc\nuts: new\nuserns: new\nhostname: box\n");
        assert_eq!(
            namespaces(&c),
            [
                ("network".to_string(), None),
                ("ipc".to_string(), Some("/run/netns/ipc".to_string())),
                ("uts".to_string(), None),
                ("user".to_string(), None),
                ("mount".to_string(), None),
                ("cgroup".to_string(), None),
            ]
        );
        assert_eq!(c["hostname"], "box");
        let c = spec("command: [x]\nnet: none\n");
        assert_eq!(namespaces(&c)[0].0, "network");
    }

    #[test]
    fn binds_tmpfs_and_mounts() {
        let c = spec("command: [x]\nbinds: [/run/a:/a, '/:/hostroot:ro']\ntmpfs: ['/tmp:size=1m,mode=1777']\nmounts:\n  - {type: tmpfs, destination: /dev, options: [nosuid]}\n  - {source: proc}\n  - {type: bind, source: /var, destination: /var}\n");
        assert_eq!(
            mount(&c, "/a")["options"],
            json!(["rw", "rbind", "rshared"])
        );
        assert_eq!(mount(&c, "/a")["source"], "/run/a");
        assert_eq!(mount(&c, "/hostroot")["options"], json!(["ro", "rbind"]));
        assert_eq!(
            mount(&c, "/tmp")["options"],
            json!(["size=1m", "mode=1777"])
        );
        assert_eq!(mount(&c, "/tmp")["type"], "tmpfs");
        // A mount at a default destination replaces the default.
        assert_eq!(mount(&c, "/dev")["options"], json!(["nosuid"]));
        // type and destination inferred from the source.
        assert_eq!(mount(&c, "/proc")["type"], "proc");
        assert_eq!(mount(&c, "/proc")["options"], json!([]));
        // Mount points to make, with the source of each bind.
        let dests = mount_destinations(&c);
        assert!(dests.contains(&("/hostroot".to_string(), Some("/".to_string()))));
        assert!(dests.contains(&("/var".to_string(), Some("/var".to_string()))));
        assert!(dests.contains(&("/tmp".to_string(), None)));
    }

    #[test]
    fn readonly_makes_dev_and_sys_readonly() {
        let c = spec("command: [x]\nreadonly: true\n");
        assert_eq!(c["root"]["readonly"], true);
        assert!(mount(&c, "/dev")["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ro")));
        assert!(mount(&c, "/sys")["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ro")));
    }

    #[test]
    fn capabilities_all_none_and_ambient() {
        let c = spec(
            "command: [x]\ncapabilities: [CAP_NET_ADMIN, CAP_SYS_ADMIN]\nambient: [CAP_NET_RAW]\n",
        );
        let caps = &c["process"]["capabilities"];
        assert_eq!(caps["effective"], json!(["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]));
        assert_eq!(
            caps["bounding"],
            json!(["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN"])
        );
        assert_eq!(caps["permitted"], caps["bounding"]);
        assert_eq!(caps["inheritable"], caps["bounding"]);
        assert_eq!(caps["ambient"], json!(["CAP_NET_RAW"]));
        let all = spec("command: [x]\ncapabilities: [all]\n");
        assert_eq!(
            all["process"]["capabilities"]["effective"]
                .as_array()
                .unwrap()
                .len(),
            ALL_CAPS.len()
        );
        let none = spec("command: [x]\ncapabilities: [none]\n");
        assert_eq!(none["process"]["capabilities"]["effective"], json!([]));
    }

    #[test]
    fn users_by_number_and_by_container_name() {
        let c = spec("command: [x]\nuid: a\ngid: 7\nadditionalGids: [b, 9, root]\n");
        assert_eq!(
            c["process"]["user"],
            json!({"uid": 100, "gid": 7, "additionalGids": [101, 9, 0]})
        );
        let ids = BTreeMap::new();
        let err = runtime_spec(
            "s",
            "services",
            &entry("command: [x]\nuid: nobody\n"),
            &json!({}),
            &ids,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("\"nobody\" is neither a number nor the name of a container"),
            "{err}"
        );
    }

    #[test]
    fn process_and_linux_fields() {
        let c = spec("command: [x]\nenv: [A=1]\ncwd: /work\nnoNewPrivileges: true\noomScoreAdj: -500\nrlimits: ['nofile,1024,unlimited', 'RLIMIT_CORE,0,0']\nsysctl: {net.ipv4.ip_forward: '1'}\nrootfsPropagation: shared\ncgroupsPath: podruntime/web\nmaskedPaths: [/proc/kcore]\nreadonlyPaths: [/proc/sys]\nannotations: {a.b: c}\nuidMappings: [{hostID: 1000, containerID: 0, size: 10}]\nresources: {memory: {limit: 1048576}, pids: {limit: 20}}\ndevices:\n  - {path: /dev/fuse, type: c, major: 10, minor: 229, mode: '0666'}\n  - {path: all, type: b}\n");
        let p = &c["process"];
        assert_eq!(
            p["env"],
            json!([
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "A=1"
            ])
        );
        assert_eq!(p["cwd"], "/work");
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(p["oomScoreAdj"], -500);
        assert_eq!(
            p["rlimits"][0],
            json!({"type": "RLIMIT_NOFILE", "soft": 1024, "hard": u64::MAX})
        );
        assert_eq!(p["rlimits"][1]["type"], "RLIMIT_CORE");
        let l = &c["linux"];
        assert_eq!(l["sysctl"], json!({"net.ipv4.ip_forward": "1"}));
        assert_eq!(l["rootfsPropagation"], "shared");
        assert_eq!(l["cgroupsPath"], "/podruntime/web");
        assert_eq!(l["maskedPaths"], json!(["/proc/kcore"]));
        assert_eq!(l["readonlyPaths"], json!(["/proc/sys"]));
        assert_eq!(
            l["uidMappings"],
            json!([{"containerID": 0, "hostID": 1000, "size": 10}])
        );
        assert_eq!(l["resources"]["memory"]["limit"], 1048576);
        assert_eq!(l["resources"]["pids"]["limit"], 20);
        assert_eq!(l["devices"][0]["path"], "/dev/fuse");
        assert_eq!(l["devices"][0]["fileMode"], 0o666);
        assert_eq!(l["resources"]["devices"].as_array().unwrap().len(), 2);
        assert_eq!(
            l["resources"]["devices"][1],
            json!({"allow": true, "type": "b", "access": "rwm"})
        );
        assert_eq!(c["annotations"], json!({"a.b": "c"}));
    }

    #[test]
    fn image_config_gives_command_env_and_cwd() {
        let image = json!({"Entrypoint": ["/bin/redis"], "Cmd": ["--port", "1"], "Env": ["X=1"], "WorkingDir": "/data"});
        let c = spec_with("name: s\n", &image);
        assert_eq!(c["process"]["args"], json!(["/bin/redis", "--port", "1"]));
        assert_eq!(c["process"]["env"][1], "X=1");
        assert_eq!(c["process"]["cwd"], "/data");
        // env in the YAML replaces the image's (LinuxKit), it does not add.
        let c = spec_with("env: [Y=2]\n", &image);
        assert_eq!(c["process"]["env"].as_array().unwrap().len(), 2);
        assert_eq!(c["process"]["env"][1], "Y=2");
        let ids = BTreeMap::new();
        assert!(matches!(
            runtime_spec("s", "services", &entry("name: s\n"), &json!({}), &ids),
            Err(SpecError::NoCommand { .. })
        ));
    }

    #[test]
    fn label_then_yaml_precedence() {
        let label = r#"{"command":["/bin/getty"],"binds":["/a:/a"],"capabilities":["CAP_SYS_ADMIN"],"net":"new","runtime":{"mkdir":["/run/l"],"bindNS":{"net":"/run/netns/l"}},"restart":"always"}"#;
        let yaml = entry("name: s\nimage: x\nbinds.add: [/b:/b]\ncapabilities.add: [CAP_NET_ADMIN]\nruntime: {cgroups: [c1]}\n");
        let m = merge_label("s", Some(label), &yaml).unwrap();
        assert_eq!(m.command.as_deref(), Some(&["/bin/getty".to_string()][..]));
        assert_eq!(m.binds.unwrap(), ["/a:/a", "/b:/b"]);
        assert_eq!(m.capabilities.unwrap(), ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]);
        assert_eq!(m.net.as_deref(), Some("new"));
        assert_eq!(m.restart, Some(contract::RestartPolicy::Always));
        let rt = m.runtime.unwrap();
        assert_eq!(rt.mkdir.unwrap(), ["/run/l"]);
        assert_eq!(rt.cgroups.unwrap(), ["c1"]);
        assert_eq!(rt.bind_ns.unwrap().net.as_deref(), Some("/run/netns/l"));
        assert!(m.binds_add.is_none() && m.capabilities_add.is_none());
        // A YAML field replaces the label's, `.add` is then ignored.
        let over = merge_label(
            "s",
            Some(label),
            &entry("command: [b]\nbinds: [/c:/c]\nbinds.add: [/d:/d]\ncapabilities: [none]\nnet: host\n"),
        )
        .unwrap();
        assert_eq!(over.command.unwrap(), ["b"]);
        assert_eq!(over.binds.unwrap(), ["/c:/c"]);
        assert_eq!(over.capabilities.unwrap(), ["none"]);
        assert_eq!(over.net.as_deref(), Some("host"));
        // Added to a label's lone `all`: still all; to a lone `none`: just the added.
        let add = entry("capabilities.add: [CAP_NET_RAW]\n");
        let all = merge_label("s", Some(r#"{"capabilities":["all"]}"#), &add).unwrap();
        assert_eq!(all.capabilities.unwrap(), ["all"]);
        let none = merge_label("s", Some(r#"{"capabilities":["none"]}"#), &add).unwrap();
        assert_eq!(none.capabilities.unwrap(), ["CAP_NET_RAW"]);
        // Adding `all` gives all, whatever the label had.
        let add_all = entry("capabilities.add: [all]\n");
        let some = merge_label("s", Some(r#"{"capabilities":["CAP_KILL"]}"#), &add_all).unwrap();
        assert_eq!(some.capabilities.unwrap(), ["all"]);
        assert!(check::entry_problems(&add_all).is_empty());
        // Without a label, capabilities.add alone is the list (LinuxKit).
        let only = merge_label("s", None, &entry("capabilities.add: [CAP_KILL]\n")).unwrap();
        assert_eq!(only.capabilities.unwrap(), ["CAP_KILL"]);
        assert!(matches!(
            merge_label("s", Some(r#"{"image":"x"}"#), &yaml),
            Err(SpecError::BadLabel { .. })
        ));
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        let ids = BTreeMap::new();
        for (yaml, expect) in [
            ("capabilities: [CAP_FLY]", "unknown capability \"CAP_FLY\""),
            ("binds: [/a]", "missing ':'"),
            ("rlimits: ['nofile,1']", "not NAME,SOFT,HARD"),
            ("mounts: [{destination: /x}]", "has no `type`"),
        ] {
            let e = runtime_spec(
                "s",
                "services",
                &entry(&format!("command: [x]\n{yaml}\n")),
                &json!({}),
                &ids,
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains(expect), "{yaml}: {e}");
        }
    }

    #[test]
    fn runtime_json_maps_hull_and_linuxkit_keys() {
        let rt = runtime_json(&entry("restart: always\nrestartBackoff: {initial: 100ms, max: 1m}\nstartLimit: 3\ndepends: [db]\nreadiness: {tcp: 8080}\nreadinessTimeout: 5s\nstopSignal: SIGINT\nstopGracePeriod: 2\nconsole: false\nruntime:\n  mkdir: [/run/x]\n  cgroups: [c]\n  mounts: [{source: proc, destination: /run/p}]\n  interfaces: [{name: eth1, add: veth, peer: veth1, createInRoot: true}]\n  bindNS: {net: /run/netns/x}\n  namespace: ns\n"), "/containers/services/web");
        assert_eq!(rt.restart, contract::RestartPolicy::Always);
        assert_eq!((rt.backoff_initial_ms, rt.backoff_max_ms), (100, 60_000));
        assert_eq!(rt.start_limit, 3);
        assert_eq!(rt.depends, ["db"]);
        assert_eq!(
            rt.readiness,
            Some(Readiness {
                check: ReadinessCheck::Tcp(8080),
                timeout_ms: 5000
            })
        );
        assert_eq!((rt.stop_signal, rt.stop_grace_ms), (2, 2000));
        assert!(!rt.console_log);
        assert_eq!(rt.mkdir, ["/run/x"]);
        assert_eq!(rt.cgroups, ["c"]);
        assert_eq!(rt.mounts[0].kind, "proc");
        assert_eq!(rt.interfaces[0].peer, "veth1");
        assert!(rt.interfaces[0].create_in_root);
        assert_eq!(rt.bind_ns.net.as_deref(), Some("/run/netns/x"));
        assert_eq!(rt.namespace.as_deref(), Some("ns"));
        let d = runtime_json(&entry("required: true\n"), "/containers/onboot/000-x");
        assert!(d.required);
        assert_eq!(d.stop_signal, 15);
        assert_eq!(d.stop_grace_ms, 10_000);
    }

    #[test]
    fn relative_runtime_mounts_and_mkdirs_land_in_the_rootfs_and_an_overlay_gets_its_dirs() {
        let e = entry("runtime:\n  mkdir: [/run/a, var/cache]\n  mounts:\n    - type: overlay\n      source: overlay\n      destination: host-etc\n      options: [rw, lowerdir=/etc, upperdir=/run/up/u, workdir=/run/up/w]\n    - {type: tmpfs, destination: /run/t}\n");
        let rt = runtime_json(&e, "/containers/services/shell");
        assert_eq!(
            rt.mounts[0].destination,
            "/containers/services/shell/rootfs/host-etc"
        );
        assert_eq!(rt.mounts[1].destination, "/run/t");
        assert_eq!(
            rt.mkdir,
            [
                "/run/a",
                "/containers/services/shell/rootfs/var/cache",
                "/run/up/u",
                "/run/up/w"
            ]
        );
        assert_eq!(runtime_rootfs_dirs(&e), ["host-etc", "var/cache"]);
        // In the OCI `mounts` a destination is still absolute.
        let m = crate::config::Mount {
            destination: Some("rel".into()),
            kind: Some("tmpfs".into()),
            source: None,
            options: None,
        };
        assert!(complete_mount(&m).is_err());
        let up = crate::config::Mount {
            destination: Some("a/../../etc".into()),
            ..m
        };
        assert!(complete_runtime_mount(&up).is_err());
    }
}
