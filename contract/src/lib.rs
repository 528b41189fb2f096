//! The contracts between the host tool `hull` and the guest init `hull-init`.
//!
//! Everything the guest needs is decided at build time and written as JSON:
//! `/etc/hull/image.json` lists the containers in boot order, and each bundle
//! holds the OCI `config.json` plus a `runtime.json` ([`RuntimeJson`]) with the
//! actions hull performs before the container starts and how it is supervised.
//! The guest never parses YAML; the host never links the container runtime.

pub mod arch;
pub mod control;
pub mod signal;

pub use arch::{Arch, UnknownArch};

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
/// Where `hull-init` is in the guest's root (and so in a container's mount
/// namespace until it pivots into its rootfs, when hooks run).
pub const INIT_PATH: &str = "/sbin/hull-init";
/// The name `hull-init` answers to as the `createContainer` hook the build
/// writes for a bind of the guest's `/dev` at the container's `/dev`. Its
/// arguments: SOURCE, the container's `ROOTFS/dev`, the bind's options.
pub const DEV_BIND_HOOK: &str = "hull-dev-bind";

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// For services: first delay before a restart, in milliseconds; doubled
    /// (with jitter) after each quick exit up to `backoff_max_ms`.
    #[serde(default = "quarter_second")]
    pub backoff_initial_ms: u64,
    /// For services: the longest delay between restarts, in milliseconds.
    #[serde(default = "thirty_seconds")]
    pub backoff_max_ms: u64,
    /// For services: how many restarts in a row (without a stable period in
    /// between) before the service is marked failed and left alone.
    #[serde(default = "five")]
    pub start_limit: u32,
    /// For services: names of services that must be ready before this one starts
    /// (and that stop only after this one has stopped).
    #[serde(default)]
    pub depends: Vec<String>,
    /// For services: when the service counts as ready; `None` means as soon as
    /// its process has started.
    #[serde(default)]
    pub readiness: Option<Readiness>,
    /// LinuxKit's `runtime.cgroups`: cgroups created before the container starts.
    #[serde(default)]
    pub cgroups: Vec<String>,
    /// LinuxKit's `runtime.interfaces`: network interfaces moved or created
    /// into the container's network namespace.
    #[serde(default)]
    pub interfaces: Vec<RuntimeInterface>,
    /// LinuxKit's `runtime.bindNS`: bind-mount the container's namespaces to
    /// these paths so that other containers can join them.
    #[serde(default)]
    pub bind_ns: BindNs,
    /// LinuxKit's `runtime.namespace`: the containerd namespace (accepted; hull has one).
    #[serde(default)]
    pub namespace: Option<String>,
}

/// When a service counts as ready (gates the services that depend on it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Readiness {
    pub check: ReadinessCheck,
    /// How long to wait for the check to pass; after that the service is
    /// failed (and stopped), and its dependants are not started.
    #[serde(default = "sixty_seconds")]
    pub timeout_ms: u64,
}

/// The check behind [`Readiness`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum ReadinessCheck {
    /// The service sends `READY=1` on `$NOTIFY_SOCKET` (systemd's `sd_notify`).
    Notify,
    /// A file appears at this path (as seen by PID 1, e.g. under /run).
    File(String),
    /// A TCP connection to 127.0.0.1:PORT in the service's network namespace succeeds.
    Tcp(u16),
}

/// One entry of LinuxKit's `runtime.interfaces`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeInterface {
    /// Name inside the container.
    #[serde(default)]
    pub name: String,
    /// Kind of interface to create (`veth`, ...); empty moves an existing one.
    #[serde(default)]
    pub add: String,
    /// For veth: the name of the other end.
    #[serde(default)]
    pub peer: String,
    /// Create in the root namespace, then move.
    #[serde(default)]
    pub create_in_root: bool,
}

/// LinuxKit's `runtime.bindNS`: per namespace kind, a path to bind it to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BindNs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
}

impl Default for RuntimeJson {
    /// The same values as an empty `{}` (serde's field defaults), so code and
    /// JSON never disagree about what "not set" means.
    fn default() -> Self {
        RuntimeJson {
            mkdir: Vec::new(),
            mounts: Vec::new(),
            console_log: yes(),
            required: false,
            restart: RestartPolicy::default(),
            stop_signal: sigterm(),
            stop_grace_ms: ten_seconds(),
            backoff_initial_ms: quarter_second(),
            backoff_max_ms: thirty_seconds(),
            start_limit: five(),
            depends: Vec::new(),
            readiness: None,
            cgroups: Vec::new(),
            interfaces: Vec::new(),
            bind_ns: BindNs::default(),
            namespace: None,
        }
    }
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
fn quarter_second() -> u64 {
    250
}
fn thirty_seconds() -> u64 {
    30_000
}
fn sixty_seconds() -> u64 {
    60_000
}
fn five() -> u32 {
    5
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
        assert_eq!(rt, RuntimeJson::default());
        assert!(rt.console_log);
        assert_eq!(rt.restart, RestartPolicy::OnFailure);
        assert_eq!(rt.stop_signal, 15);
        assert_eq!(rt.stop_grace_ms, 10_000);
        assert_eq!((rt.backoff_initial_ms, rt.backoff_max_ms), (250, 30_000));
        assert_eq!(rt.start_limit, 5);
        assert!(rt.depends.is_empty() && rt.readiness.is_none());
    }

    #[test]
    fn readiness_round_trips() {
        let r: Readiness = serde_json::from_str(r#"{"check":{"tcp":6379}}"#).unwrap();
        assert_eq!(r.check, ReadinessCheck::Tcp(6379));
        assert_eq!(r.timeout_ms, 60_000);
        let n: Readiness = serde_json::from_str(r#"{"check":"notify","timeoutMs":5}"#).unwrap();
        assert_eq!(n.check, ReadinessCheck::Notify);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<RuntimeJson>(r#"{"mkdirs":[]}"#).is_err());
    }
}
