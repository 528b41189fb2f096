//! The YAML entry over the image's `org.mobyproject.config` label, with
//! LinuxKit's precedence (`ConfigToOCI` in LinuxKit's `moby/config.go`): a
//! field written in the YAML replaces the label's, except `binds.add` and
//! `capabilities.add`, which add to the label's `binds` and
//! `capabilities`; `runtime` (and its `bindNS`) merge key by key.

use config::values::{Bind, Capabilities};
use config::{ImageEntry, Problem, RuntimeSection};

/// The order of the fields whose values are read with a check, so that
/// the first of several mistakes is the same one `hull validate` would
/// list first.
const FIELD_ORDER: [&str; 29] = [
    "capabilities",
    "capabilities.add",
    "ambient",
    "net",
    "pid",
    "ipc",
    "uts",
    "userns",
    "hostname",
    "binds",
    "binds.add",
    "tmpfs",
    "mounts",
    "devices",
    "rlimits",
    "rootfsPropagation",
    "env",
    "cwd",
    "command",
    "maskedPaths",
    "readonlyPaths",
    "oomScoreAdj",
    "runtime",
    "restartBackoff",
    "startLimit",
    "readinessTimeout",
    "stopGracePeriod",
    "stopSignal",
    "readiness",
];

/// `yaml` over `label`, and the mistakes of the result: those of the
/// label's values that the YAML leaves in place (`label_problems`, from
/// [`config::parse_label`]), and those between two fields.
pub fn merge(
    label: &ImageEntry,
    label_problems: &[Problem],
    yaml: &ImageEntry,
) -> (ImageEntry, Vec<Problem>) {
    let merged = overlay(label, yaml);
    let mut problems: Vec<Problem> = label_problems
        .iter()
        .filter(|p| kept(p, yaml))
        .cloned()
        .collect();
    problems.extend(merged.hostname_problem());
    let rank = |p: &Problem| {
        let top = p.path.first().map(String::as_str).unwrap_or("");
        FIELD_ORDER
            .iter()
            .position(|k| *k == top)
            .unwrap_or(FIELD_ORDER.len())
    };
    problems.sort_by_key(rank);
    let readiness_written = merged.readiness.is_some()
        || problems
            .iter()
            .any(|p| p.path.first().is_some_and(|k| k == "readiness"));
    problems.extend(merged.timeout_problem(readiness_written));
    (merged, problems)
}

/// Whether a mistake in a label's value is still in the merged entry.
fn kept(p: &Problem, yaml: &ImageEntry) -> bool {
    let key = |i: usize| p.path.get(i).map(String::as_str).unwrap_or("");
    match key(0) {
        // `.add` only means something in the YAML (as in LinuxKit).
        "capabilities.add" | "binds.add" => false,
        // Adding `all` replaces whatever the label had.
        "capabilities" => {
            yaml.capabilities.is_none() && yaml.capabilities_add != Some(Capabilities::All)
        }
        "runtime" => {
            let Some(rt) = &yaml.runtime else { return true };
            match key(1) {
                "cgroups" => rt.cgroups.is_none(),
                "mounts" => rt.mounts.is_none(),
                "mkdir" => rt.mkdir.is_none(),
                "interfaces" => rt.interfaces.is_none(),
                "namespace" => rt.namespace.is_none(),
                "bindNS" => {
                    let Some(b) = &rt.bind_ns else { return true };
                    let set = match key(2) {
                        "cgroup" => &b.cgroup,
                        "ipc" => &b.ipc,
                        "mnt" => &b.mnt,
                        "net" => &b.net,
                        "pid" => &b.pid,
                        "user" => &b.user,
                        _ => &b.uts,
                    };
                    set.is_none()
                }
                _ => true,
            }
        }
        other => !yaml.is_set(other),
    }
}

/// Every field of `top` that is set replaces `base`'s.
fn overlay(base: &ImageEntry, top: &ImageEntry) -> ImageEntry {
    macro_rules! pick {
        ($($f:ident),* $(,)?) => {
            ImageEntry {
                $( $f: top.$f.clone().or_else(|| base.$f.clone()), )*
                binds: binds(base, top),
                binds_add: None,
                capabilities: capabilities(base, top),
                capabilities_add: None,
                runtime: match (&base.runtime, &top.runtime) {
                    (Some(b), Some(t)) => Some(runtime(b, t)),
                    (b, t) => t.clone().or_else(|| b.clone()),
                },
            }
        };
    }
    pick!(
        name,
        image,
        ambient,
        mounts,
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
        hostname,
        readonly,
        masked_paths,
        readonly_paths,
        uid,
        gid,
        additional_gids,
        no_new_privileges,
        oom_score_adj,
        rootfs_propagation,
        cgroups_path,
        resources,
        sysctl,
        rlimits,
        uid_mappings,
        gid_mappings,
        annotations,
        restart,
        restart_backoff,
        start_limit,
        depends,
        readiness,
        readiness_timeout,
        stop_signal,
        stop_grace_period,
        required,
        console,
    )
}

fn binds(base: &ImageEntry, top: &ImageEntry) -> Option<Vec<Bind>> {
    match (&top.binds, &top.binds_add) {
        (Some(b), _) => Some(b.clone()),
        (None, Some(extra)) => {
            let mut list = base.binds.clone().unwrap_or_default();
            for b in extra {
                let same = |x: &Bind| {
                    (&x.source, &x.destination, &x.options)
                        == (&b.source, &b.destination, &b.options)
                };
                if !list.iter().any(same) {
                    list.push(b.clone());
                }
            }
            Some(list)
        }
        (None, None) => base.binds.clone(),
    }
}

fn capabilities(base: &ImageEntry, top: &ImageEntry) -> Option<Capabilities> {
    match (&top.capabilities, &top.capabilities_add) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(extra)) => Some(Capabilities::add(base.capabilities.as_ref(), extra)),
        (None, None) => base.capabilities.clone(),
    }
}

fn runtime(base: &RuntimeSection, top: &RuntimeSection) -> RuntimeSection {
    let bind_ns = match (&base.bind_ns, &top.bind_ns) {
        (Some(b), Some(t)) => {
            let mut out = b.clone();
            for (o, t) in [
                (&mut out.cgroup, &t.cgroup),
                (&mut out.ipc, &t.ipc),
                (&mut out.mnt, &t.mnt),
                (&mut out.net, &t.net),
                (&mut out.pid, &t.pid),
                (&mut out.user, &t.user),
                (&mut out.uts, &t.uts),
            ] {
                if t.is_some() {
                    o.clone_from(t);
                }
            }
            Some(out)
        }
        (b, t) => t.clone().or_else(|| b.clone()),
    };
    RuntimeSection {
        cgroups: top.cgroups.clone().or_else(|| base.cgroups.clone()),
        mounts: top.mounts.clone().or_else(|| base.mounts.clone()),
        mkdir: top.mkdir.clone().or_else(|| base.mkdir.clone()),
        interfaces: top.interfaces.clone().or_else(|| base.interfaces.clone()),
        bind_ns,
        namespace: top.namespace.clone().or_else(|| base.namespace.clone()),
    }
}
