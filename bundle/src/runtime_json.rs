//! A container's `runtime.json`: LinuxKit's `runtime` section and hull's
//! supervision keys.

use contract::{Readiness, RuntimeJson, RuntimeMount};

use crate::container::Container;

/// How long readiness may take when `readinessTimeout` is not written.
const READINESS_TIMEOUT_MS: u64 = 60_000;

impl Container {
    /// Where a `runtime.mkdir` or `runtime.mounts` path is in the guest: an
    /// absolute one as is, a relative one in this container's rootfs (as in
    /// LinuxKit's service runner).
    fn in_rootfs(&self, p: &str) -> String {
        if p.starts_with('/') {
            p.to_string()
        } else {
            format!("{}/rootfs/{p}", self.bundle.trim_end_matches('/'))
        }
    }

    /// `runtime.json`.
    pub fn runtime_json(&self) -> RuntimeJson {
        let e = &self.entry;
        let rt = e.runtime.clone().unwrap_or_default();
        let d = RuntimeJson::default();
        let mounts: Vec<RuntimeMount> = rt
            .mounts
            .iter()
            .flatten()
            .map(|m| RuntimeMount {
                destination: self.in_rootfs(&m.destination),
                source: m.source.clone(),
                kind: m.kind.clone(),
                options: m.options.clone(),
            })
            .collect();
        // An overlay needs its upper and work directories before it is mounted
        // (LinuxKit's runner makes them too); `mkdir` runs before the mounts.
        let mut mkdir: Vec<String> = rt
            .mkdir
            .iter()
            .flatten()
            .map(|d| self.in_rootfs(d))
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
        let backoff = e.restart_backoff.unwrap_or_default();
        RuntimeJson {
            mkdir,
            mounts,
            console_log: e.console.unwrap_or(d.console_log),
            required: e.required.unwrap_or(false),
            restart: e.restart.unwrap_or_default(),
            stop_signal: e.stop_signal.map(|s| s.0).unwrap_or(d.stop_signal),
            stop_grace_ms: e.stop_grace_period.map(|m| m.0).unwrap_or(d.stop_grace_ms),
            backoff_initial_ms: backoff.initial.map(|m| m.0).unwrap_or(d.backoff_initial_ms),
            backoff_max_ms: backoff.max.map(|m| m.0).unwrap_or(d.backoff_max_ms),
            start_limit: e.start_limit.map(|n| n.get()).unwrap_or(d.start_limit),
            depends: e.depends.clone().unwrap_or_default(),
            readiness: e.readiness.clone().map(|check| Readiness {
                check,
                timeout_ms: e
                    .readiness_timeout
                    .map(|m| m.0)
                    .unwrap_or(READINESS_TIMEOUT_MS),
            }),
            cgroups: rt.cgroups.unwrap_or_default(),
            interfaces: rt.interfaces.unwrap_or_default(),
            bind_ns: rt.bind_ns.unwrap_or_default(),
            namespace: rt.namespace,
        }
    }

    /// Directories the build makes in the rootfs (read-only in the guest):
    /// every mount point of the spec's own mounts, with the source of each
    /// bind (whose kind in the guest decides whether the mount point is a
    /// file or a directory), then the relative `runtime.mounts`
    /// destinations and `runtime.mkdir` directories.
    pub fn mount_points(&self) -> Vec<(String, Option<String>)> {
        let mut out: Vec<(String, Option<String>)> = self
            .mounts()
            .into_iter()
            .map(|m| {
                let source = m.is_bind().then(|| m.source.clone());
                (m.destination, source)
            })
            .collect();
        if let Some(rt) = &self.entry.runtime {
            let dirs = rt
                .mounts
                .iter()
                .flatten()
                .map(|m| m.destination.clone())
                .chain(rt.mkdir.iter().flatten().cloned())
                .filter(|d| !d.starts_with('/') && !d.is_empty());
            out.extend(dirs.map(|d| (d, None)));
        }
        out
    }
}
