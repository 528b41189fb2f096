//! The OCI runtime spec and `runtime.json` of each container, computed from
//! the image's config, then its `org.mobyproject.config` label, then the YAML
//! entry (LinuxKit's precedence: a YAML field replaces the label's, except
//! `binds.add` and `capabilities.add`, which add to it).

use serde_json::{json, Value};
use spec::{RuntimeJson, RuntimeMount};

use crate::config::ImageEntry;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's (and LinuxKit's) default capability set.
const DEFAULT_CAPS: &[&str] = &[
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Every capability the 6.1 kernels know.
const ALL_CAPS: &[&str] = &[
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

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(
        "container {name}: the org.mobyproject.config label is not a valid image entry: {message}"
    )]
    BadLabel { name: String, message: String },
    #[error("container {name}: bind {bind:?} is not SOURCE:DESTINATION[:OPTIONS]")]
    BadBind { name: String, bind: String },
    #[error("container {name}: unknown capability {cap:?}")]
    BadCapability { name: String, cap: String },
    #[error(
        "container {name}: {field}: {value:?} is not supported yet (only \"host\" or the default)"
    )]
    Namespace {
        name: String,
        field: &'static str,
        value: String,
    },
    #[error(
        "container {name}: has no command (neither the YAML, the label nor the image gives one)"
    )]
    NoCommand { name: String },
    #[error("container {name}: the computed spec does not validate: {message}")]
    Invalid { name: String, message: String },
}

/// The YAML entry over the label: YAML fields win, `.add` lists append.
pub fn merge_label(
    name: &str,
    label: Option<&str>,
    yaml: &ImageEntry,
) -> Result<ImageEntry, SpecError> {
    let Some(label) = label else {
        return Ok(yaml.clone());
    };
    let base: ImageEntry = serde_json::from_str(label).map_err(|e| SpecError::BadLabel {
        name: name.into(),
        message: e.to_string(),
    })?;
    macro_rules! pick {
        ($($f:ident),*) => { ImageEntry { $($f: yaml.$f.clone().or(base.$f.clone()),)* name: yaml.name.clone(), image: yaml.image.clone(), binds_add: None, capabilities_add: None } };
    }
    let mut out = pick!(
        command,
        env,
        cwd,
        binds,
        capabilities,
        net,
        pid,
        ipc,
        uts,
        readonly,
        hostname,
        runtime,
        restart,
        required,
        console,
        stop_grace_period
    );
    let mut binds = out.binds.take().unwrap_or_default();
    binds.extend(base.binds_add.clone().unwrap_or_default());
    binds.extend(yaml.binds_add.clone().unwrap_or_default());
    out.binds = Some(binds);
    let mut caps = out.capabilities.take();
    let adds: Vec<String> = base
        .capabilities_add
        .iter()
        .chain(yaml.capabilities_add.iter())
        .flatten()
        .cloned()
        .collect();
    if !adds.is_empty() {
        let mut c = caps.unwrap_or_else(|| DEFAULT_CAPS.iter().map(|s| s.to_string()).collect());
        c.extend(adds);
        caps = Some(c);
    }
    out.capabilities = caps;
    Ok(out)
}

fn capabilities(name: &str, entry: &ImageEntry) -> Result<Vec<String>, SpecError> {
    let Some(list) = &entry.capabilities else {
        return Ok(DEFAULT_CAPS.iter().map(|s| s.to_string()).collect());
    };
    let mut out = Vec::new();
    for c in list {
        match c.to_ascii_lowercase().as_str() {
            "all" => out.extend(ALL_CAPS.iter().map(|s| s.to_string())),
            "none" => {}
            _ => {
                let up = c.to_ascii_uppercase();
                let up = if up.starts_with("CAP_") {
                    up
                } else {
                    format!("CAP_{up}")
                };
                if !ALL_CAPS.contains(&up.as_str()) {
                    return Err(SpecError::BadCapability {
                        name: name.into(),
                        cap: c.clone(),
                    });
                }
                out.push(up);
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Where a container's mounts land inside its rootfs: the build creates
/// them, because the guest's root (and so every rootfs) is read-only.
pub fn mount_destinations(config: &Value) -> Vec<String> {
    config["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["destination"].as_str().map(String::from))
        .collect()
}

/// Computes `config.json` for one container.
/// `image_config` is the OCI image config's `config` object.
pub fn runtime_spec(
    name: &str,
    cgroup: &str,
    entry: &ImageEntry,
    image_config: &Value,
) -> Result<Value, SpecError> {
    let mut args: Vec<String> = match &entry.command {
        Some(c) => c.clone(),
        None => {
            let ep = image_config["Entrypoint"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let cmd = image_config["Cmd"].as_array().cloned().unwrap_or_default();
            ep.into_iter()
                .chain(cmd)
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        }
    };
    if args.is_empty() {
        return Err(SpecError::NoCommand { name: name.into() });
    }
    args.retain(|_| true);
    let mut env: Vec<String> = image_config["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    for e in entry.env.iter().flatten() {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    let cwd = entry
        .cwd
        .clone()
        .or_else(|| {
            image_config["WorkingDir"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(String::from)
        })
        .unwrap_or_else(|| "/".into());
    let caps = capabilities(name, entry)?;

    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ];
    for b in entry.binds.iter().flatten() {
        let parts: Vec<&str> = b.split(':').collect();
        if parts.len() < 2
            || parts.len() > 3
            || !parts[0].starts_with('/')
            || !parts[1].starts_with('/')
        {
            return Err(SpecError::BadBind {
                name: name.into(),
                bind: b.clone(),
            });
        }
        let mut opts = vec!["rw".to_string(), "rbind".to_string(), "rshared".to_string()];
        if let Some(o) = parts.get(2) {
            opts = o.split(',').map(String::from).collect();
            if !opts.iter().any(|o| o == "bind" || o == "rbind") {
                opts.push("rbind".into());
            }
        }
        mounts.retain(|m| m["destination"] != parts[1]);
        mounts.push(
            json!({"destination": parts[1], "type": "bind", "source": parts[0], "options": opts}),
        );
    }

    let mut namespaces = vec![json!({"type": "mount"})];
    for (field, value, ns) in [
        ("pid", &entry.pid, "pid"),
        ("net", &entry.net, "network"),
        ("ipc", &entry.ipc, "ipc"),
        ("uts", &entry.uts, "uts"),
    ] {
        // LinuxKit's defaults: new pid namespace; host network, ipc and uts.
        let default_new = ns == "pid";
        let new = match value.as_deref() {
            None => default_new,
            Some("host") => false,
            Some("new") | Some("none") => true,
            Some(other) => {
                return Err(SpecError::Namespace {
                    name: name.into(),
                    field,
                    value: other.into(),
                })
            }
        };
        if new {
            namespaces.push(json!({"type": ns}));
        }
    }

    let mut config = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": false,
        },
        "root": {"path": "rootfs", "readonly": entry.readonly.unwrap_or(false)},
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": cgroup,
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    });
    if let Some(h) = &entry.hostname {
        config["hostname"] = json!(h);
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

/// `runtime.json` for one container.
pub fn runtime_json(entry: &ImageEntry) -> RuntimeJson {
    let rt = entry.runtime.clone().unwrap_or_default();
    RuntimeJson {
        mkdir: rt.mkdir,
        mounts: rt
            .mounts
            .into_iter()
            .map(|m| RuntimeMount {
                source: m.source,
                destination: m.destination,
                kind: m.kind,
                options: m.options,
            })
            .collect(),
        console_log: entry.console.unwrap_or(true),
        required: entry.required.unwrap_or(false),
        restart: entry.restart.unwrap_or_default(),
        stop_signal: 15,
        stop_grace_ms: entry.stop_grace_period.map(|s| s * 1000).unwrap_or(10_000),
        ..RuntimeJson::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(yaml: &str) -> ImageEntry {
        marked_yaml::from_yaml(0, yaml).unwrap()
    }

    #[test]
    fn linuxkit_defaults() {
        let e = entry("name: s\nimage: x\ncommand: [sh, -c, 'echo hi']\n");
        let c = runtime_spec("s", "/hull/services/s", &e, &json!({})).unwrap();
        let ns: Vec<&str> = c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["mount", "pid"]);
        assert_eq!(c["process"]["args"], json!(["sh", "-c", "echo hi"]));
        assert!(c["process"]["env"][0]
            .as_str()
            .unwrap()
            .starts_with("PATH="));
        assert_eq!(c["linux"]["cgroupsPath"], "/hull/services/s");
    }

    #[test]
    fn binds_and_host_pid() {
        let e = entry("name: s\nimage: x\ncommand: [x]\npid: host\nbinds: [/run/a:/a, '/:/hostroot:rw,rbind']\n");
        let c = runtime_spec("s", "/c", &e, &json!({})).unwrap();
        let ns: Vec<&str> = c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["mount"]);
        let m = c["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/a")
            .unwrap();
        assert_eq!(m["options"], json!(["rw", "rbind", "rshared"]));
        assert!(mount_destinations(&c).contains(&"/hostroot".to_string()));
    }

    #[test]
    fn label_then_yaml_precedence() {
        let yaml =
            entry("name: s\nimage: x\nbinds.add: [/b:/b]\ncapabilities.add: [CAP_NET_ADMIN]\n");
        let merged = merge_label(
            "s",
            Some(
                r#"{"command":["/bin/getty"],"binds":["/a:/a"],"capabilities":["CAP_SYS_ADMIN"]}"#,
            ),
            &yaml,
        )
        .unwrap();
        assert_eq!(
            merged.command.as_deref(),
            Some(&["/bin/getty".to_string()][..])
        );
        assert_eq!(merged.binds.unwrap(), ["/a:/a", "/b:/b"]);
        assert_eq!(
            merged.capabilities.unwrap(),
            ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
        );
        let over = merge_label(
            "s",
            Some(r#"{"command":["a"]}"#),
            &entry("name: s\nimage: x\ncommand: [b]\n"),
        )
        .unwrap();
        assert_eq!(over.command.unwrap(), ["b"]);
    }

    #[test]
    fn image_entrypoint_is_used_and_missing_command_is_an_error() {
        let e = entry("name: s\nimage: x\n");
        let c = runtime_spec(
            "s",
            "/c",
            &e,
            &json!({"Entrypoint": ["/bin/redis"], "Cmd": ["--port", "1"]}),
        )
        .unwrap();
        assert_eq!(c["process"]["args"], json!(["/bin/redis", "--port", "1"]));
        assert!(matches!(
            runtime_spec("s", "/c", &e, &json!({})),
            Err(SpecError::NoCommand { .. })
        ));
    }

    #[test]
    fn bad_capability_is_refused() {
        let e = entry("name: s\nimage: x\ncommand: [x]\ncapabilities: [CAP_FLY]\n");
        assert!(matches!(
            runtime_spec("s", "/c", &e, &json!({})),
            Err(SpecError::BadCapability { .. })
        ));
    }
}
