//! One container (an `onboot`, `onshutdown` or `services` entry, an
//! image's label, a package's `config:`), as typed values.
//!
//! [`ImageEntry::read`] turns the words serde read ([`RawEntry`]) into
//! typed values, one field family at a time, and returns every mistake as a
//! [`Problem`] at its key. A value with a mistake is left out (a list keeps
//! its good entries), so that the checks across entries still run on the
//! rest; nothing is built from an entry with a problem.

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use contract::{ReadinessCheck, RestartPolicy};
use oci_spec::runtime::LinuxResources;

use crate::position::Problem;
use crate::raw::{IdMapping, RawEntry, RawReadiness};
use crate::runtime_section::{read_runtime, RuntimeSection};
use crate::values::{
    Backoff, Bind, Capabilities, Device, Id, Millis, Mount, Namespace, Rlimit, Signal, Tmpfs,
};

/// `rootfsPropagation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Propagation(&'static str);

impl Propagation {
    const KNOWN: [&'static str; 8] = [
        "shared",
        "slave",
        "private",
        "unbindable",
        "rshared",
        "rslave",
        "rprivate",
        "runbindable",
    ];

    pub fn parse(p: &str) -> Result<Propagation, String> {
        Propagation::KNOWN
            .iter()
            .find(|k| **k == p)
            .map(|k| Propagation(k))
            .ok_or_else(|| {
                format!(
                    "rootfsPropagation {p:?}: use one of {}",
                    Propagation::KNOWN.join(", ")
                )
            })
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

/// One container: every field of LinuxKit's image entry plus hull's keys.
/// Every field is optional so that "not written" differs from "written
/// empty" (LinuxKit's precedence of the YAML over a label needs it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageEntry {
    pub name: Option<String>,
    pub image: Option<String>,
    pub capabilities: Option<Capabilities>,
    pub capabilities_add: Option<Capabilities>,
    pub ambient: Option<Capabilities>,
    pub mounts: Option<Vec<Mount>>,
    pub binds: Option<Vec<Bind>>,
    pub binds_add: Option<Vec<Bind>>,
    pub devices: Option<Vec<Device>>,
    pub tmpfs: Option<Vec<Tmpfs>>,
    /// Not empty.
    pub command: Option<Vec<String>>,
    /// Each `KEY=value`.
    pub env: Option<Vec<String>>,
    /// An absolute path.
    pub cwd: Option<String>,
    pub net: Option<Namespace>,
    pub pid: Option<Namespace>,
    pub ipc: Option<Namespace>,
    pub uts: Option<Namespace>,
    pub userns: Option<Namespace>,
    pub hostname: Option<String>,
    pub readonly: Option<bool>,
    /// Absolute paths.
    pub masked_paths: Option<Vec<String>>,
    /// Absolute paths.
    pub readonly_paths: Option<Vec<String>>,
    pub uid: Option<Id>,
    pub gid: Option<Id>,
    pub additional_gids: Option<Vec<Id>>,
    pub no_new_privileges: Option<bool>,
    /// -1000..=1000.
    pub oom_score_adj: Option<i32>,
    pub rootfs_propagation: Option<Propagation>,
    pub cgroups_path: Option<String>,
    /// OCI `linux.resources`, as the OCI spec writes it.
    pub resources: Option<LinuxResources>,
    pub sysctl: Option<BTreeMap<String, String>>,
    pub rlimits: Option<Vec<Rlimit>>,
    pub uid_mappings: Option<Vec<IdMapping>>,
    pub gid_mappings: Option<Vec<IdMapping>>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub runtime: Option<RuntimeSection>,

    // hull's own keys.
    /// Services: `always`, `on-failure` (default) or `never`.
    pub restart: Option<RestartPolicy>,
    /// Services: bounds of the delay between restarts.
    pub restart_backoff: Option<Backoff>,
    /// Services: restarts in a row before the service is left failed.
    pub start_limit: Option<NonZeroU32>,
    /// Services: services that must be ready before this one starts.
    pub depends: Option<Vec<String>>,
    /// Services: when the service counts as ready.
    pub readiness: Option<ReadinessCheck>,
    /// Services: how long readiness may take.
    pub readiness_timeout: Option<Millis>,
    /// Services: the signal that asks the service to stop (default SIGTERM).
    pub stop_signal: Option<Signal>,
    /// Services: from the stop signal to SIGKILL (default 10s).
    pub stop_grace_period: Option<Millis>,
    /// onboot: a failure stops the boot.
    pub required: Option<bool>,
    /// Copy the output to the console as `NAME | line` (default true).
    pub console: Option<bool>,
}

impl ImageEntry {
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// The typed entry and every mistake in its values, in the order of
    /// the fields (the order `hull validate` reports mistakes at one place).
    /// `between_fields`: also the checks between two fields (not for a
    /// label, which is checked once merged with the YAML).
    pub(crate) fn read(v: &RawEntry, between_fields: bool) -> (ImageEntry, Vec<Problem>) {
        let mut out = Vec::new();
        let problems = &mut out;
        let caps = |key: &str, list: &Option<Vec<String>>, problems: &mut Vec<Problem>| {
            list.as_ref().and_then(|l| {
                Capabilities::parse(key, l)
                    .map_err(|p| problems.extend(p))
                    .ok()
            })
        };
        let capabilities = caps("capabilities", &v.capabilities, problems);
        let capabilities_add = caps("capabilities.add", &v.capabilities_add, problems);
        let ambient = caps("ambient", &v.ambient, problems);
        let ns = |key: &str, value: &Option<String>, problems: &mut Vec<Problem>| {
            value.as_ref().and_then(|val| {
                Namespace::parse(key, val)
                    .map_err(|m| problems.push(Problem::new(&[key], m)))
                    .ok()
            })
        };
        let net = ns("net", &v.net, problems);
        let pid = ns("pid", &v.pid, problems);
        let ipc = ns("ipc", &v.ipc, problems);
        let uts = ns("uts", &v.uts, problems);
        let userns = ns("userns", &v.userns, problems);
        if between_fields {
            problems.extend(hostname_problem(
                v.hostname.as_deref(),
                v.uts.as_deref() == Some("new"),
            ));
        }
        let binds = each(problems, "binds", &v.binds, |b, i| Bind::parse(b, i));
        let binds_add = each(problems, "binds.add", &v.binds_add, |b, i| {
            Bind::parse(b, i)
        });
        let tmpfs = each(problems, "tmpfs", &v.tmpfs, |t, _| Tmpfs::parse(t));
        let mounts = each(problems, "mounts", &v.mounts, Mount::parse);
        let devices = each(problems, "devices", &v.devices, |d, _| Device::parse(d));
        let rlimits = each(problems, "rlimits", &v.rlimits, |r, _| Rlimit::parse(r));
        let rootfs_propagation = v.rootfs_propagation.as_ref().and_then(|p| {
            Propagation::parse(p)
                .map_err(|m| problems.push(Problem::new(&["rootfsPropagation"], m)))
                .ok()
        });
        let env = each(problems, "env", &v.env, |e, _| {
            if !e.contains('=') || e.starts_with('=') {
                Err(format!("env {e:?} is not KEY=value"))
            } else {
                Ok(e.clone())
            }
        });
        let cwd = match &v.cwd {
            Some(c) if !c.starts_with('/') => {
                problems.push(Problem::new(
                    &["cwd"],
                    format!("cwd {c:?} must be an absolute path"),
                ));
                None
            }
            c => c.clone(),
        };
        let command = match &v.command {
            Some(c) if c.is_empty() => {
                problems.push(Problem::new(&["command"], "`command` is empty"));
                None
            }
            c => c.clone(),
        };
        let masked_paths = each(problems, "maskedPaths", &v.masked_paths, absolute);
        let readonly_paths = each(problems, "readonlyPaths", &v.readonly_paths, absolute);
        let oom_score_adj = match v.oom_score_adj {
            Some(n) if !(-1000..=1000).contains(&n) => {
                problems.push(Problem::new(
                    &["oomScoreAdj"],
                    format!("oomScoreAdj {n} is outside -1000..1000"),
                ));
                None
            }
            n => n,
        };
        let runtime = v.runtime.as_ref().map(|rt| read_runtime(rt, problems));
        // hull's keys.
        let restart_backoff = v
            .restart_backoff
            .as_ref()
            .and_then(|b| Backoff::read(b).map_err(|p| problems.extend(p)).ok());
        let start_limit = match v.start_limit {
            Some(0) => {
                problems.push(Problem::new(
                    &["startLimit"],
                    "startLimit must be at least 1",
                ));
                None
            }
            n => n.and_then(NonZeroU32::new),
        };
        let duration = |key: &str, d: &Option<_>, problems: &mut Vec<Problem>| {
            d.as_ref().and_then(|d| {
                Millis::read(d)
                    .map_err(|m| problems.push(Problem::new(&[key], m)))
                    .ok()
            })
        };
        let readiness_timeout = duration("readinessTimeout", &v.readiness_timeout, problems);
        let stop_grace_period = duration("stopGracePeriod", &v.stop_grace_period, problems);
        let stop_signal = v.stop_signal.as_ref().and_then(|s| {
            Signal::read(s)
                .map_err(|m| problems.push(Problem::new(&["stopSignal"], m)))
                .ok()
        });
        let readiness = match &v.readiness {
            Some(RawReadiness::Notify) => Some(ReadinessCheck::Notify),
            Some(RawReadiness::Tcp(p)) => match u16::try_from(*p).ok().filter(|p| *p != 0) {
                Some(p) => Some(ReadinessCheck::Tcp(p)),
                None => {
                    problems.push(Problem::new(
                        &["readiness"],
                        format!("port {p} is not a TCP port (1-65535)"),
                    ));
                    None
                }
            },
            Some(RawReadiness::File(f)) if !f.starts_with('/') => {
                problems.push(Problem::new(
                    &["readiness"],
                    format!("readiness file {f:?} must be an absolute path"),
                ));
                None
            }
            Some(RawReadiness::File(f)) => Some(ReadinessCheck::File(f.clone())),
            None => None,
        };
        if between_fields {
            problems.extend(timeout_problem(
                v.readiness.is_some(),
                v.readiness_timeout.is_some(),
            ));
        }
        let entry = ImageEntry {
            name: v.name.clone(),
            image: v.image.clone(),
            capabilities,
            capabilities_add,
            ambient,
            mounts,
            binds,
            binds_add,
            devices,
            tmpfs,
            command,
            env,
            cwd,
            net,
            pid,
            ipc,
            uts,
            userns,
            hostname: v.hostname.clone(),
            readonly: v.readonly,
            masked_paths,
            readonly_paths,
            uid: v.uid.as_ref().map(Id::read),
            gid: v.gid.as_ref().map(Id::read),
            additional_gids: v
                .additional_gids
                .as_ref()
                .map(|l| l.iter().map(Id::read).collect()),
            no_new_privileges: v.no_new_privileges,
            oom_score_adj,
            rootfs_propagation,
            cgroups_path: v.cgroups_path.clone(),
            resources: v.resources.clone(),
            sysctl: v.sysctl.clone(),
            rlimits,
            uid_mappings: v.uid_mappings.clone(),
            gid_mappings: v.gid_mappings.clone(),
            annotations: v.annotations.clone(),
            runtime,
            restart: v.restart,
            restart_backoff,
            start_limit,
            depends: v.depends.clone(),
            readiness,
            readiness_timeout,
            stop_signal,
            stop_grace_period,
            required: v.required,
            console: v.console,
        };
        (entry, out)
    }

    /// Whether the field written as `key` (its YAML name) has a value.
    pub fn is_set(&self, key: &str) -> bool {
        match key {
            "name" => self.name.is_some(),
            "image" => self.image.is_some(),
            "capabilities" => self.capabilities.is_some(),
            "capabilities.add" => self.capabilities_add.is_some(),
            "ambient" => self.ambient.is_some(),
            "mounts" => self.mounts.is_some(),
            "binds" => self.binds.is_some(),
            "binds.add" => self.binds_add.is_some(),
            "devices" => self.devices.is_some(),
            "tmpfs" => self.tmpfs.is_some(),
            "command" => self.command.is_some(),
            "env" => self.env.is_some(),
            "cwd" => self.cwd.is_some(),
            "net" => self.net.is_some(),
            "pid" => self.pid.is_some(),
            "ipc" => self.ipc.is_some(),
            "uts" => self.uts.is_some(),
            "userns" => self.userns.is_some(),
            "hostname" => self.hostname.is_some(),
            "readonly" => self.readonly.is_some(),
            "maskedPaths" => self.masked_paths.is_some(),
            "readonlyPaths" => self.readonly_paths.is_some(),
            "uid" => self.uid.is_some(),
            "gid" => self.gid.is_some(),
            "additionalGids" => self.additional_gids.is_some(),
            "noNewPrivileges" => self.no_new_privileges.is_some(),
            "oomScoreAdj" => self.oom_score_adj.is_some(),
            "rootfsPropagation" => self.rootfs_propagation.is_some(),
            "cgroupsPath" => self.cgroups_path.is_some(),
            "resources" => self.resources.is_some(),
            "sysctl" => self.sysctl.is_some(),
            "rlimits" => self.rlimits.is_some(),
            "uidMappings" => self.uid_mappings.is_some(),
            "gidMappings" => self.gid_mappings.is_some(),
            "annotations" => self.annotations.is_some(),
            "runtime" => self.runtime.is_some(),
            "restart" => self.restart.is_some(),
            "restartBackoff" => self.restart_backoff.is_some(),
            "startLimit" => self.start_limit.is_some(),
            "depends" => self.depends.is_some(),
            "readiness" => self.readiness.is_some(),
            "readinessTimeout" => self.readiness_timeout.is_some(),
            "stopSignal" => self.stop_signal.is_some(),
            "stopGracePeriod" => self.stop_grace_period.is_some(),
            "required" => self.required.is_some(),
            "console" => self.console.is_some(),
            _ => false,
        }
    }

    /// `hostname` needs `uts: new`: the check between two fields, for an
    /// entry merged from a label and the YAML.
    pub fn hostname_problem(&self) -> Option<Problem> {
        hostname_problem(self.hostname.as_deref(), self.uts == Some(Namespace::New))
    }

    /// `readinessTimeout` needs `readiness` (written: `readiness` may be
    /// written with a mistake, which is reported instead).
    pub fn timeout_problem(&self, readiness_written: bool) -> Option<Problem> {
        timeout_problem(readiness_written, self.readiness_timeout.is_some())
    }
}

/// LinuxKit writes the hostname whatever `uts` says and its runc then
/// refuses to start the container without a private UTS namespace;
/// libcontainer would silently skip it. Say so before the boot.
fn hostname_problem(hostname: Option<&str>, uts_new: bool) -> Option<Problem> {
    (hostname.is_some_and(|h| !h.is_empty()) && !uts_new).then(|| {
        Problem::new(
            &["hostname"],
            "`hostname` is set only in a new UTS namespace: add `uts: new`",
        )
    })
}

fn timeout_problem(readiness: bool, timeout: bool) -> Option<Problem> {
    (!readiness && timeout).then(|| {
        Problem::new(
            &["readinessTimeout"],
            "`readinessTimeout` without `readiness`",
        )
    })
}

/// Reads every element of a list with `parse` (given the element and its
/// index); the good ones are kept, each mistake is a problem at its index.
fn each<R, T>(
    problems: &mut Vec<Problem>,
    key: &str,
    list: &Option<Vec<R>>,
    parse: impl Fn(&R, usize) -> Result<T, String>,
) -> Option<Vec<T>> {
    let list = list.as_ref()?;
    let mut out = Vec::new();
    for (i, r) in list.iter().enumerate() {
        match parse(r, i) {
            Ok(t) => out.push(t),
            Err(m) => problems.push(Problem::new(&[key, &i.to_string()], m)),
        }
    }
    Some(out)
}

fn absolute(p: &String, _: usize) -> Result<String, String> {
    if p.starts_with('/') {
        Ok(p.clone())
    } else {
        Err(format!("{p:?} must be an absolute path"))
    }
}
