//! A container's OCI runtime spec (`config.json`), typed
//! (`oci_spec::runtime::Spec`), with LinuxKit's defaults, and everything
//! the guest needs decided here rather than at each start:
//!
//! - a bind of the guest's `/dev` at the container's `/dev` becomes
//!   LinuxKit's default `/dev` tmpfs plus a first `createContainer` hook
//!   that mounts the bind over it ([`dev_bind_hook`] says why);
//! - a service with `readiness: notify` gets `NOTIFY_SOCKET` and a bind of
//!   its notify folder, whose socket the supervisor makes before each start.

use std::collections::{BTreeMap, HashMap, HashSet};

use config::values::{capability_name, Capability, Device, Namespace};
use contract::control::{notify_dir, NOTIFY_SOCKET_IN_CONTAINER};
use contract::{ReadinessCheck, DEV_BIND_HOOK, INIT_PATH};
use oci_spec::runtime::{
    Hook, Hooks, LinuxCapabilities, LinuxDevice, LinuxDeviceCgroup, LinuxIdMappingBuilder,
    LinuxNamespace, LinuxNamespaceType, LinuxResources, Mount, PosixRlimit, PosixRlimitBuilder,
    Process, Root, Spec, User,
};
use serde::Serialize;

use crate::container::Container;

/// The options of LinuxKit's default `/dev` tmpfs (Docker's).
const DEV_TMPFS: [&str; 4] = ["nosuid", "strictatime", "mode=755", "size=65536k"];

/// One mount as the spec lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecMount {
    pub destination: String,
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

impl SpecMount {
    fn new(destination: &str, kind: &str, source: &str, options: &[&str]) -> SpecMount {
        SpecMount {
            destination: destination.into(),
            kind: kind.into(),
            source: source.into(),
            options: options.iter().map(|o| o.to_string()).collect(),
        }
    }

    /// A bind mount, by its type or its options.
    pub fn is_bind(&self) -> bool {
        self.kind == "bind" || self.options.iter().any(|o| o == "bind" || o == "rbind")
    }

    fn oci(&self) -> Mount {
        let mut m = Mount::default();
        m.set_destination(self.destination.clone().into());
        m.set_typ(Some(self.kind.clone()));
        m.set_source(Some(self.source.clone().into()));
        m.set_options(Some(self.options.clone()));
        m.set_uid_mappings(None);
        m.set_gid_mappings(None);
        m
    }
}

impl Container {
    /// The container's mounts as its entry gives them: LinuxKit's defaults
    /// (Docker's options; `readonly` makes /dev and /sys read-only too),
    /// then `tmpfs`, `binds` and `mounts`, a later one at a destination
    /// replacing an earlier one; sorted by destination, so /dev comes
    /// before /dev/pts.
    pub fn mounts(&self) -> Vec<SpecMount> {
        let e = &self.entry;
        let mut dev = DEV_TMPFS.to_vec();
        let mut sys = vec!["nosuid", "noexec", "nodev"];
        if e.readonly.unwrap_or(false) {
            dev.push("ro");
            sys.push("ro");
        }
        let mut mounts: BTreeMap<String, SpecMount> = BTreeMap::new();
        for m in [
            SpecMount::new(
                "/proc",
                "proc",
                "proc",
                &["nosuid", "nodev", "noexec", "relatime"],
            ),
            SpecMount::new("/dev", "tmpfs", "tmpfs", &dev),
            SpecMount::new(
                "/dev/pts",
                "devpts",
                "devpts",
                &[
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                ],
            ),
            SpecMount::new("/sys", "sysfs", "sysfs", &sys),
            SpecMount::new(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                &["nosuid", "noexec", "nodev", "relatime", "ro"],
            ),
        ] {
            mounts.insert(m.destination.clone(), m);
        }
        let mut put = |m: SpecMount| {
            mounts.insert(m.destination.clone(), m);
        };
        for t in e.tmpfs.iter().flatten() {
            put(SpecMount {
                destination: t.destination.clone(),
                kind: "tmpfs".into(),
                source: "tmpfs".into(),
                options: t.options.clone(),
            });
        }
        for b in e.binds.iter().flatten() {
            put(SpecMount {
                destination: b.destination.clone(),
                kind: "bind".into(),
                source: b.source.as_str().into(),
                options: b.options.clone(),
            });
        }
        for m in e.mounts.iter().flatten() {
            put(SpecMount {
                destination: m.destination.clone(),
                kind: m.kind.clone(),
                source: m.source.clone(),
                options: m.options.clone(),
            });
        }
        mounts.into_values().collect()
    }

    fn notify(&self) -> bool {
        matches!(self.entry.readiness, Some(ReadinessCheck::Notify))
    }

    /// The typed OCI runtime spec.
    pub fn spec(&self) -> Spec {
        let e = &self.entry;
        let mut mounts = self.mounts();
        let mut hooks = None;
        let rootfs_dev = format!("{}/rootfs/dev", self.bundle.trim_end_matches('/'));
        if let Some(m) = mounts
            .iter_mut()
            .find(|m| m.destination == "/dev" && m.is_bind())
        {
            let hook = dev_bind_hook(&m.source, &rootfs_dev, &m.options);
            *m = SpecMount::new("/dev", "tmpfs", "tmpfs", &DEV_TMPFS);
            let mut h = Hooks::default();
            h.set_create_container(Some(vec![hook]));
            hooks = Some(h);
        }
        let mut env = self.env.clone();
        if self.notify() {
            let var = format!("NOTIFY_SOCKET={NOTIFY_SOCKET_IN_CONTAINER}");
            env.retain(|x| x.split('=').next() != Some("NOTIFY_SOCKET"));
            env.push(var);
            let inside = std::path::Path::new(NOTIFY_SOCKET_IN_CONTAINER)
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            mounts.push(SpecMount::new(
                &inside,
                "bind",
                &notify_dir(&self.name),
                &["rw", "rbind"],
            ));
        }

        let mut root = Root::default();
        root.set_path("rootfs".into());
        root.set_readonly(Some(e.readonly.unwrap_or(false)));

        let mut spec = Spec::default();
        spec.set_version("1.0.2".into());
        spec.set_process(Some(self.process(env)));
        spec.set_root(Some(root));
        spec.set_mounts(Some(mounts.iter().map(SpecMount::oci).collect()));
        spec.set_hostname(e.hostname.clone().filter(|h| !h.is_empty()));
        spec.set_domainname(None);
        spec.set_hooks(hooks);
        spec.set_annotations(
            e.annotations
                .as_ref()
                .filter(|a| !a.is_empty())
                .map(|a| a.clone().into_iter().collect()),
        );
        spec.set_linux(Some(self.linux()));
        spec.set_solaris(None);
        spec.set_windows(None);
        spec.set_vm(None);
        spec.set_zos(None);
        #[allow(deprecated)]
        {
            spec.set_uid_mappings(None);
            spec.set_gid_mappings(None);
        }
        spec
    }

    /// `process.capabilities`, in the order config.json lists them: the
    /// effective and ambient sets as written, the others sorted.
    pub fn capabilities(&self) -> CapabilityLists {
        let e = &self.entry;
        let list = |c: &Option<config::values::Capabilities>| -> Vec<Capability> {
            c.as_ref().map(|c| c.expand()).unwrap_or_default()
        };
        let effective = list(&e.capabilities);
        let ambient = list(&e.ambient);
        let mut bounding: Vec<&'static str> = effective
            .iter()
            .chain(&ambient)
            .map(|c| capability_name(*c))
            .collect();
        bounding.sort();
        bounding.dedup();
        let names = |l: &[Capability]| l.iter().map(|c| capability_name(*c)).collect();
        CapabilityLists {
            bounding: bounding.clone(),
            effective: names(&effective),
            inheritable: bounding.clone(),
            permitted: bounding,
            ambient: names(&ambient),
        }
    }

    fn process(&self, env: Vec<String>) -> Process {
        let e = &self.entry;
        let caps = self.capabilities();
        let set = |l: &[&str]| -> HashSet<Capability> {
            l.iter()
                .filter_map(|n| {
                    config::values::CAPABILITIES
                        .iter()
                        .find(|(k, _)| k == n)
                        .map(|(_, c)| *c)
                })
                .collect()
        };
        let mut c = LinuxCapabilities::default();
        c.set_bounding(Some(set(&caps.bounding)));
        c.set_effective(Some(set(&caps.effective)));
        c.set_inheritable(Some(set(&caps.inheritable)));
        c.set_permitted(Some(set(&caps.permitted)));
        c.set_ambient(Some(set(&caps.ambient)));

        let mut user = User::default();
        user.set_uid(self.uid);
        user.set_gid(self.gid);
        user.set_umask(None);
        user.set_additional_gids(
            (!self.additional_gids.is_empty()).then(|| self.additional_gids.clone()),
        );
        user.set_username(None);

        let rlimits: Vec<PosixRlimit> = e
            .rlimits
            .iter()
            .flatten()
            .map(|r| {
                PosixRlimitBuilder::default()
                    .typ(r.kind)
                    .soft(r.soft)
                    .hard(r.hard)
                    .build()
                    .expect("a builder with a default for every field cannot fail")
            })
            .collect();

        let mut p = Process::default();
        p.set_terminal(Some(false));
        p.set_console_size(None);
        p.set_user(user);
        p.set_args(Some(self.args.clone()));
        p.set_command_line(None);
        p.set_env(Some(env));
        p.set_cwd(self.cwd.clone().into());
        p.set_capabilities(Some(c));
        p.set_rlimits((!rlimits.is_empty()).then_some(rlimits));
        p.set_no_new_privileges(Some(e.no_new_privileges.unwrap_or(false)));
        p.set_apparmor_profile(None);
        p.set_oom_score_adj(e.oom_score_adj);
        p.set_selinux_label(None);
        p.set_io_priority(None);
        p.set_scheduler(None);
        p.set_exec_cpu_affinity(None);
        p
    }

    fn linux(&self) -> oci_spec::runtime::Linux {
        let e = &self.entry;
        // net, ipc, uts, user: the host's unless asked; pid: a new one unless
        // `host`; mount and cgroup: always new. A path joins that namespace.
        let mut namespaces = Vec::new();
        for (value, kind, default_new) in [
            (&e.net, LinuxNamespaceType::Network, false),
            (&e.ipc, LinuxNamespaceType::Ipc, false),
            (&e.uts, LinuxNamespaceType::Uts, false),
            (&e.pid, LinuxNamespaceType::Pid, true),
            (&e.userns, LinuxNamespaceType::User, false),
        ] {
            match value {
                None if default_new => namespaces.push(namespace(kind, None)),
                None | Some(Namespace::Host) => {}
                Some(Namespace::New) => namespaces.push(namespace(kind, None)),
                Some(Namespace::Join(path)) => namespaces.push(namespace(kind, Some(path))),
            }
        }
        namespaces.push(namespace(LinuxNamespaceType::Mount, None));
        namespaces.push(namespace(LinuxNamespaceType::Cgroup, None));

        let mut resources = e.resources.clone().unwrap_or_default();
        let mut devices = Vec::new();
        for d in e.devices.iter().flatten() {
            let (node, rule) = device(d);
            devices.extend(node);
            resources
                .devices_mut()
                .get_or_insert_with(Vec::new)
                .push(rule);
        }
        // libcontainer needs an absolute cgroups path; LinuxKit's are relative to the root.
        let cgroup = match e.cgroups_path.as_deref().filter(|p| !p.is_empty()) {
            Some(p) if p.starts_with('/') => p.to_string(),
            Some(p) => format!("/{p}"),
            None => format!("/hull/{}/{}", self.section, self.name),
        };
        let mappings = |l: &Option<Vec<config::IdMapping>>| {
            l.as_ref().filter(|l| !l.is_empty()).map(|l| {
                l.iter()
                    .map(|m| {
                        LinuxIdMappingBuilder::default()
                            .host_id(m.host_id)
                            .container_id(m.container_id)
                            .size(m.size)
                            .build()
                            .expect("a builder with a default for every field cannot fail")
                    })
                    .collect()
            })
        };
        let mut l = oci_spec::runtime::Linux::default();
        l.set_net_devices(None);
        l.set_uid_mappings(mappings(&e.uid_mappings));
        l.set_gid_mappings(mappings(&e.gid_mappings));
        l.set_sysctl(
            e.sysctl
                .as_ref()
                .filter(|s| !s.is_empty())
                .map(|s| s.clone().into_iter().collect::<HashMap<_, _>>()),
        );
        l.set_resources((resources != LinuxResources::default()).then_some(resources));
        l.set_cgroups_path(Some(cgroup.into()));
        l.set_namespaces(Some(namespaces));
        l.set_devices((!devices.is_empty()).then_some(devices));
        l.set_seccomp(None);
        l.set_rootfs_propagation(e.rootfs_propagation.map(|p| p.as_str().to_string()));
        l.set_masked_paths(Some(e.masked_paths.clone().unwrap_or_default()));
        l.set_readonly_paths(Some(e.readonly_paths.clone().unwrap_or_default()));
        l.set_mount_label(None);
        l.set_intel_rdt(None);
        l.set_memory_policy(None);
        l.set_personality(None);
        l.set_time_offsets(None);
        l
    }

    /// `config.json`'s bytes: the spec, keys in name order (as a JSON
    /// object's keys are compared), capabilities in [`Container::capabilities`]'
    /// order (oci-spec keeps them in a `HashSet`, whose order changes from
    /// run to run).
    pub fn config_json(&self) -> Vec<u8> {
        to_json(&self.spec(), &self.capabilities())
    }
}

/// The capability sets of `process.capabilities`, each in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapabilityLists {
    pub bounding: Vec<&'static str>,
    pub effective: Vec<&'static str>,
    pub inheritable: Vec<&'static str>,
    pub permitted: Vec<&'static str>,
    pub ambient: Vec<&'static str>,
}

fn to_json(spec: &Spec, caps: &CapabilityLists) -> Vec<u8> {
    // Serializing these types cannot fail: every map key is a string.
    let mut v = serde_json::to_value(spec).unwrap_or_default();
    if let Some(process) = v.get_mut("process").and_then(|p| p.as_object_mut()) {
        process.insert(
            "capabilities".into(),
            serde_json::to_value(caps).unwrap_or_default(),
        );
    }
    serde_json::to_vec_pretty(&v).unwrap_or_default()
}

fn namespace(kind: LinuxNamespaceType, path: Option<&String>) -> LinuxNamespace {
    let mut n = LinuxNamespace::default();
    n.set_typ(kind);
    n.set_path(path.map(|p| p.into()));
    n
}

/// A `devices` entry: the node to make (none for `path: all`) and its
/// device cgroup rule.
fn device(d: &Device) -> (Option<LinuxDevice>, LinuxDeviceCgroup) {
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(true);
    rule.set_access(Some("rwm".into()));
    match d {
        Device::All { kind } => {
            rule.set_typ(Some(*kind));
            rule.set_major(None);
            rule.set_minor(None);
            (None, rule)
        }
        Device::Node {
            path,
            kind,
            major,
            minor,
            mode,
        } => {
            rule.set_typ(Some(*kind));
            rule.set_major(Some(*major));
            rule.set_minor(Some(*minor));
            let mut node = LinuxDevice::default();
            node.set_path(path.into());
            node.set_typ(*kind);
            node.set_major(*major);
            node.set_minor(*minor);
            node.set_file_mode(Some(mode.0));
            node.set_uid(None);
            node.set_gid(None);
            (Some(node), rule)
        }
    }
}

/// The hook that puts a bind of `source` (the guest's `/dev`) at the
/// container's `/dev`.
///
/// Such a bind (LinuxKit's getty and format use `binds: [/dev:/dev]`)
/// cannot be handed to libcontainer 0.7 as is: after the spec's mounts it
/// always creates the default device nodes (`mknod /dev/null`, ...) and the
/// `/dev/fd`, `/dev/stdin`, ..., `/dev/kcore` and `/dev/ptmx` symlinks in
/// the container's `/dev`, which fails with EEXIST on the guest's devtmpfs
/// ("failed to prepare rootfs") and would otherwise change the guest's own
/// `/dev`. runc skips that work when `/dev` is a bind; libcontainer has no
/// such switch. So the spec keeps LinuxKit's default `/dev` tmpfs, where
/// libcontainer does its work, and this `createContainer` hook (run by
/// libcontainer right after preparing the rootfs, in the container's mount
/// namespace, before pivot_root) mounts the guest's `/dev` over it:
/// `hull-init` answers to [`DEV_BIND_HOOK`], and the container's mount
/// namespace is a copy of the guest's until pivot_root, so [`INIT_PATH`]
/// resolves there. It comes first, so that later hooks see the real /dev.
pub fn dev_bind_hook(source: &str, rootfs_dev: &str, options: &[String]) -> Hook {
    let mut args = vec![
        DEV_BIND_HOOK.to_string(),
        source.to_string(),
        rootfs_dev.to_string(),
    ];
    args.extend(options.iter().cloned());
    let mut h = Hook::default();
    h.set_path(INIT_PATH.into());
    h.set_args(Some(args));
    h.set_env(None);
    h.set_timeout(None);
    h
}
