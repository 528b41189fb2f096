//! `runtime.json` as the builder writes it, and the directories it makes
//! in a container's read-only rootfs.

use std::collections::BTreeMap;

use config::Section;
use contract::{Readiness, ReadinessCheck};
use hull_bundle::{Container, ImageConfig};

fn container(section: Section, name: &str, yaml: &str) -> Container {
    let (mut e, problems) = config::parse_entry(yaml).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    e.name = Some(name.into());
    e.command = Some(vec!["x".into()]);
    Container::new(section, 0, &e, &ImageConfig::default(), &BTreeMap::new()).unwrap()
}

#[test]
fn runtime_json_maps_hull_and_linuxkit_keys() {
    let c = container(Section::Services, "web", "restart: always\nrestartBackoff: {initial: 100ms, max: 1m}\nstartLimit: 3\ndepends: [db]\nreadiness: {tcp: 8080}\nreadinessTimeout: 5s\nstopSignal: SIGINT\nstopGracePeriod: 2\nconsole: false\nruntime:\n  mkdir: [/run/x]\n  cgroups: [c]\n  mounts: [{source: proc, destination: /run/p}]\n  interfaces: [{name: eth1, add: veth, peer: veth1, createInRoot: true}]\n  bindNS: {net: /run/netns/x}\n  namespace: ns\n");
    assert_eq!(c.bundle, "/containers/services/web");
    let rt = c.runtime_json();
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
    let d = container(Section::Onboot, "x", "required: true\n");
    assert_eq!(d.bundle, "/containers/onboot/000-x");
    let d = d.runtime_json();
    assert!(d.required);
    assert_eq!(d.stop_signal, 15);
    assert_eq!(d.stop_grace_ms, 10_000);
    // Unset: the supervisor's defaults, the same as an empty runtime.json.
    let empty: contract::RuntimeJson = serde_json::from_str("{}").unwrap();
    assert_eq!(d.backoff_initial_ms, empty.backoff_initial_ms);
    assert_eq!(
        (
            config::values::Backoff::DEFAULT_INITIAL.0,
            config::values::Backoff::DEFAULT_MAX.0
        ),
        (empty.backoff_initial_ms, empty.backoff_max_ms),
        "validate's default bounds are the supervisor's"
    );
}

#[test]
fn relative_runtime_mounts_and_mkdirs_land_in_the_rootfs_and_an_overlay_gets_its_dirs() {
    let c = container(Section::Services, "shell", "runtime:\n  mkdir: [/run/a, var/cache]\n  mounts:\n    - type: overlay\n      source: overlay\n      destination: host-etc\n      options: [rw, lowerdir=/etc, upperdir=/run/up/u, workdir=/run/up/w]\n    - {type: tmpfs, destination: /run/t}\n");
    let rt = c.runtime_json();
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
    let rootfs_dirs: Vec<String> = c
        .mount_points()
        .into_iter()
        .filter(|(d, _)| !d.starts_with('/'))
        .map(|(d, _)| d)
        .collect();
    assert_eq!(rootfs_dirs, ["host-etc", "var/cache"]);
    // In the OCI `mounts` a destination is still absolute; a runtime mount
    // may not climb out of the rootfs.
    let (_, p) = config::parse_entry("mounts: [{type: tmpfs, destination: rel}]\n").unwrap();
    assert_eq!(
        p[0].message,
        "mount destination \"rel\" must be an absolute path"
    );
    let (_, p) =
        config::parse_entry("runtime: {mounts: [{type: tmpfs, destination: a/../../etc}]}\n")
            .unwrap();
    assert_eq!(p[0].dotted(), "runtime.mounts.0");
}
