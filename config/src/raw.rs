//! The shapes serde reads a description into, before any value is
//! checked: words stay words here. [`crate::entry`] turns them into typed
//! values, reporting each mistake at its key.
//!
//! The field order of [`RawEntry`] is the order of the "known keys" list
//! an unknown key's message gives, so it follows LinuxKit's reference.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A YAML scalar that may be a number or a word. YAML scalars reach serde
/// as text, so the number is recognised here rather than by serde.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub(crate) enum NumberOrText {
    Number(i64),
    Text(String),
}

impl NumberOrText {
    pub(crate) fn number(&self) -> Option<i64> {
        match self {
            NumberOrText::Number(n) => Some(*n),
            NumberOrText::Text(t) => t.trim().parse().ok(),
        }
    }

    pub(crate) fn text(&self) -> String {
        match self {
            NumberOrText::Number(n) => n.to_string(),
            NumberOrText::Text(t) => t.clone(),
        }
    }
}

/// `restartBackoff` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename = "Backoff")]
pub(crate) struct RawBackoff {
    #[serde(default)]
    pub initial: Option<NumberOrText>,
    #[serde(default)]
    pub max: Option<NumberOrText>,
}

/// `readiness` as written: `notify`, `{file: PATH}` or `{tcp: PORT}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[serde(rename = "ReadinessValue")]
pub(crate) enum RawReadiness {
    Notify,
    File(String),
    Tcp(u32),
}

/// An OCI mount as LinuxKit writes it; missing `type`, `source` or
/// `destination` are inferred where LinuxKit infers them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename = "Mount")]
pub(crate) struct RawMount {
    #[serde(default)]
    pub destination: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub options: Option<Vec<String>>,
}

/// A device node made in the container (LinuxKit's `devices`); `path: all`
/// allows a whole class in the device cgroup.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename = "Device")]
pub(crate) struct RawDevice {
    #[serde(default)]
    pub path: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub major: i64,
    #[serde(default)]
    pub minor: i64,
    #[serde(default)]
    pub mode: Option<String>,
}

/// LinuxKit's `runtime` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename = "RuntimeSection")]
pub(crate) struct RawRuntime {
    #[serde(default)]
    pub cgroups: Option<Vec<String>>,
    #[serde(default)]
    pub mounts: Option<Vec<RawMount>>,
    #[serde(default)]
    pub mkdir: Option<Vec<String>>,
    #[serde(default)]
    pub interfaces: Option<Vec<contract::RuntimeInterface>>,
    #[serde(default, rename = "bindNS")]
    pub bind_ns: Option<contract::BindNs>,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// One container as written: every field of LinuxKit's image entry plus
/// hull's keys. Also the shape of an image's `org.mobyproject.config`
/// label and of a package's `config:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[serde(rename = "ImageEntry")]
pub(crate) struct RawEntry {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
    #[serde(default, rename = "capabilities.add")]
    pub capabilities_add: Option<Vec<String>>,
    #[serde(default)]
    pub ambient: Option<Vec<String>>,
    #[serde(default)]
    pub mounts: Option<Vec<RawMount>>,
    #[serde(default)]
    pub binds: Option<Vec<String>>,
    #[serde(default, rename = "binds.add")]
    pub binds_add: Option<Vec<String>>,
    #[serde(default)]
    pub devices: Option<Vec<RawDevice>>,
    #[serde(default)]
    pub tmpfs: Option<Vec<String>>,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub net: Option<String>,
    #[serde(default)]
    pub pid: Option<String>,
    #[serde(default)]
    pub ipc: Option<String>,
    #[serde(default)]
    pub uts: Option<String>,
    #[serde(default)]
    pub userns: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub readonly: Option<bool>,
    #[serde(default)]
    pub masked_paths: Option<Vec<String>>,
    #[serde(default)]
    pub readonly_paths: Option<Vec<String>>,
    #[serde(default)]
    pub uid: Option<NumberOrText>,
    #[serde(default)]
    pub gid: Option<NumberOrText>,
    #[serde(default)]
    pub additional_gids: Option<Vec<NumberOrText>>,
    #[serde(default)]
    pub no_new_privileges: Option<bool>,
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    #[serde(default)]
    pub rootfs_propagation: Option<String>,
    #[serde(default)]
    pub cgroups_path: Option<String>,
    #[serde(default)]
    pub resources: Option<oci_spec::runtime::LinuxResources>,
    #[serde(default)]
    pub sysctl: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub rlimits: Option<Vec<String>>,
    #[serde(default)]
    pub uid_mappings: Option<Vec<IdMapping>>,
    #[serde(default)]
    pub gid_mappings: Option<Vec<IdMapping>>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub runtime: Option<RawRuntime>,
    // hull's own keys.
    #[serde(default)]
    pub restart: Option<contract::RestartPolicy>,
    #[serde(default)]
    pub restart_backoff: Option<RawBackoff>,
    #[serde(default)]
    pub start_limit: Option<u32>,
    #[serde(default)]
    pub depends: Option<Vec<String>>,
    #[serde(default)]
    pub readiness: Option<RawReadiness>,
    #[serde(default)]
    pub readiness_timeout: Option<NumberOrText>,
    #[serde(default)]
    pub stop_signal: Option<NumberOrText>,
    #[serde(default)]
    pub stop_grace_period: Option<NumberOrText>,
    #[serde(default)]
    pub required: Option<bool>,
    #[serde(default)]
    pub console: Option<bool>,
}

/// One entry of `files` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename = "FileEntry")]
pub(crate) struct RawFile {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub directory: bool,
    #[serde(default)]
    pub symlink: Option<String>,
    #[serde(default)]
    pub contents: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub metadata: Option<String>,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub uid: Option<NumberOrText>,
    #[serde(default)]
    pub gid: Option<NumberOrText>,
}

/// LinuxKit's old content-trust section (accepted, ignored with a note):
/// read only so that its shape is checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename = "Trust")]
pub(crate) struct RawTrust {
    #[serde(default)]
    #[allow(dead_code)]
    pub image: Option<Vec<String>>,
    #[serde(default)]
    #[allow(dead_code)]
    pub org: Option<Vec<String>>,
}

/// One entry of `uidMappings` / `gidMappings` (read whole by serde: its
/// shape is its type).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdMapping {
    #[serde(default, rename = "hostID")]
    pub host_id: u32,
    #[serde(default, rename = "containerID")]
    pub container_id: u32,
    #[serde(default)]
    pub size: u32,
}
