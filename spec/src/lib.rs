//! The contracts between the host tool `hull` and the guest init `hull-init`.
//!
//! Everything the guest needs is decided at build time and written as JSON:
//! `/etc/hull/image.json` lists the containers in boot order, and each bundle
//! holds the OCI `config.json` plus a `runtime.json` ([`RuntimeJson`]) with the
//! actions hull performs before the container starts and how it is supervised.
//! The guest never parses YAML; the host never links the container runtime.

use serde::{Deserialize, Serialize};

/// Where the image description lives in the guest's root.
pub const IMAGE_JSON_PATH: &str = "/etc/hull/image.json";
/// The file next to `config.json` in every bundle.
pub const RUNTIME_JSON: &str = "runtime.json";
/// Written by the build into the modules directory: the modules to load, in order.
pub const MODULES_JSON: &str = "hull-modules.json";
/// Printed on the console by `hull-init` once every service has been started.
/// `hull run qemu --until-ready` and the VM tests wait for it.
pub const READY_MARKER: &str = "hull: all services started";
/// Printed by `hull-init` just before it asks the kernel to power off or reboot.
pub const SHUTDOWN_MARKER: &str = "hull: shutdown complete";
/// Kernel command-line switch that turns off the `NAME | line` console copy of container output.
pub const CMDLINE_QUIET_CONTAINERS: &str = "hull.console=off";

/// `/etc/hull/image.json`: the resolved image, in the order the guest runs it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageJson {
    /// The image's name (the YAML file's base name or `--name`); used as the hostname default.
    pub name: String,
    #[serde(default)]
    pub onboot: Vec<ContainerRef>,
    #[serde(default)]
    pub onshutdown: Vec<ContainerRef>,
    #[serde(default)]
    pub services: Vec<ContainerRef>,
}

/// One container of the image: its name and where its bundle is in the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerRef {
    pub name: String,
    /// Absolute path of the bundle directory (holds config.json, runtime.json, rootfs/).
    pub bundle: String,
}

/// `runtime.json`: what hull does around a container, beyond the OCI spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeJson {
    /// Directories created (with parents) in the guest before the container starts,
    /// typically under /run or /var (LinuxKit's `runtime.mkdir`).
    #[serde(default)]
    pub mkdir: Vec<String>,
    /// Mounts performed in the guest's namespace before the container starts
    /// (LinuxKit's `runtime.mounts`).
    #[serde(default)]
    pub mounts: Vec<RuntimeMount>,
    /// Copy the container's output to the console as `NAME | line`.
    #[serde(default = "yes")]
    pub console_log: bool,
    /// For onboot containers: a failure stops the boot (powers off) instead of being logged.
    #[serde(default)]
    pub required: bool,
    /// For services: what to do when the container's process exits.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Signal sent to stop the service (a number), SIGTERM by default.
    #[serde(default = "sigterm")]
    pub stop_signal: i32,
    /// Time between the stop signal and SIGKILL, in milliseconds.
    #[serde(default = "ten_seconds")]
    pub stop_grace_ms: u64,
}

fn yes() -> bool {
    true
}
fn sigterm() -> i32 {
    15
}
fn ten_seconds() -> u64 {
    10_000
}

/// A mount done by hull itself before a container starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeMount {
    pub source: String,
    pub destination: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub options: Vec<String>,
}

/// When a service is started again after its process exits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Restart after any exit.
    Always,
    /// Restart after a non-zero exit or a signal (the default).
    #[default]
    OnFailure,
    /// Never restart.
    Never,
}

/// One entry of `lib/modules/VERSION/hull-modules.json`, written in load order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleEntry {
    pub name: String,
    /// Relative to `lib/modules/VERSION`.
    pub path: String,
    #[serde(default)]
    pub depends: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_json_defaults_are_what_docs_promise() {
        let rt: RuntimeJson = serde_json::from_str("{}").unwrap();
        assert!(rt.console_log);
        assert_eq!(rt.restart, RestartPolicy::OnFailure);
        assert_eq!(rt.stop_signal, 15);
        assert_eq!(rt.stop_grace_ms, 10_000);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<RuntimeJson>(r#"{"mkdirs":[]}"#).is_err());
    }
}
