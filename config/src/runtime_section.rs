//! LinuxKit's `runtime` section of an image entry: what hull does around
//! the container before it starts (directories, mounts, cgroups, network
//! interfaces, namespaces bound to paths), not in its spec.

use contract::{BindNs, RuntimeInterface};

use crate::position::Problem;
use crate::raw::RawRuntime;
use crate::values::Mount;

/// LinuxKit's `runtime`: what happens around the container, not in its spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeSection {
    /// Cgroups made before the start.
    pub cgroups: Option<Vec<String>>,
    /// Mounts made in the guest before the start; a relative destination is
    /// inside the container's rootfs.
    pub mounts: Option<Vec<Mount>>,
    /// Directories made before the start; a relative one is inside the rootfs.
    pub mkdir: Option<Vec<String>>,
    pub interfaces: Option<Vec<RuntimeInterface>>,
    pub bind_ns: Option<BindNs>,
    pub namespace: Option<String>,
}

pub(crate) fn read_runtime(rt: &RawRuntime, problems: &mut Vec<Problem>) -> RuntimeSection {
    let mut at = |path: &[&str], m: String| problems.push(Problem::new(path, m));
    // As in LinuxKit's runner, a relative directory is inside the rootfs.
    let mut mkdir = None;
    if let Some(list) = &rt.mkdir {
        let mut ok = Vec::new();
        for (i, d) in list.iter().enumerate() {
            if d.is_empty() || d.split('/').any(|p| p == "..") {
                at(
                    &["runtime", "mkdir", &i.to_string()],
                    format!("{d:?} is not a directory path (no `..`)"),
                );
            } else {
                ok.push(d.clone());
            }
        }
        mkdir = Some(ok);
    }
    let mut mounts = None;
    if let Some(list) = &rt.mounts {
        let mut ok = Vec::new();
        for (i, m) in list.iter().enumerate() {
            match Mount::parse_runtime(m, i) {
                Ok(m) => ok.push(m),
                Err(msg) => at(&["runtime", "mounts", &i.to_string()], msg),
            }
        }
        mounts = Some(ok);
    }
    let mut cgroups = None;
    if let Some(list) = &rt.cgroups {
        let mut ok = Vec::new();
        for (i, c) in list.iter().enumerate() {
            if c.is_empty() || c.split('/').any(|p| p == "..") {
                at(
                    &["runtime", "cgroups", &i.to_string()],
                    format!("cgroup {c:?} is not a cgroup path"),
                );
            } else {
                ok.push(c.clone());
            }
        }
        cgroups = Some(ok);
    }
    let mut interfaces = None;
    if let Some(list) = &rt.interfaces {
        let mut ok = Vec::new();
        for (i, itf) in list.iter().enumerate() {
            let idx = i.to_string();
            let mut good = true;
            if itf.name.is_empty() {
                at(
                    &["runtime", "interfaces", &idx],
                    "an interface needs a `name`".into(),
                );
                good = false;
            } else if itf.name.len() > 15 || itf.name.contains(['/', ' ']) {
                at(
                    &["runtime", "interfaces", &idx, "name"],
                    format!(
                        "{:?} is not an interface name (15 characters at most)",
                        itf.name
                    ),
                );
                good = false;
            }
            if itf.add == "veth" && itf.peer.is_empty() {
                at(
                    &["runtime", "interfaces", &idx],
                    "a veth interface needs a `peer`".into(),
                );
                good = false;
            }
            if itf.add.is_empty() && (!itf.peer.is_empty() || itf.create_in_root) {
                at(
                    &["runtime", "interfaces", &idx],
                    "`peer` and `createInRoot` need `add`".into(),
                );
                good = false;
            }
            if good {
                ok.push(itf.clone());
            }
        }
        interfaces = Some(ok);
    }
    let bind_ns = rt.bind_ns.as_ref().map(|b| {
        let mut ok = b.clone();
        for (key, p) in [
            ("cgroup", &mut ok.cgroup),
            ("ipc", &mut ok.ipc),
            ("mnt", &mut ok.mnt),
            ("net", &mut ok.net),
            ("pid", &mut ok.pid),
            ("user", &mut ok.user),
            ("uts", &mut ok.uts),
        ] {
            if let Some(path) = p.as_ref().filter(|p| !p.starts_with('/')) {
                at(
                    &["runtime", "bindNS", key],
                    format!("{path:?} must be an absolute path"),
                );
                *p = None;
            }
        }
        ok
    });
    RuntimeSection {
        cgroups,
        mounts,
        mkdir,
        interfaces,
        bind_ns,
        namespace: rt.namespace.clone(),
    }
}
