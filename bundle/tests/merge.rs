//! The YAML entry over an image's label: LinuxKit's precedence, and a
//! label's mistakes reported only where the YAML leaves them in place.

use std::collections::BTreeMap;

use config::values::{BindSource, Capabilities, Capability, Namespace};
use config::{ImageEntry, Section};
use hull_bundle::{merge::merge, BundleError, Container, ImageConfig};

fn entry(yaml: &str) -> ImageEntry {
    let (e, problems) = config::parse_entry(yaml).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    e
}

fn merge_label(label: &str, yaml: &ImageEntry) -> ImageEntry {
    let (l, problems) = config::parse_label(label).unwrap();
    let (m, problems) = merge(&l, &problems, yaml);
    assert!(problems.is_empty(), "{problems:?}");
    m
}

fn sources(e: &ImageEntry) -> Vec<&str> {
    e.binds
        .iter()
        .flatten()
        .map(|b| b.source.as_str())
        .collect()
}

fn caps(c: &[Capability]) -> Option<Capabilities> {
    Some(Capabilities::List(c.to_vec()))
}

#[test]
fn label_then_yaml_precedence() {
    let label = r#"{"command":["/bin/getty"],"binds":["/a:/a"],"capabilities":["CAP_SYS_ADMIN"],"net":"new","runtime":{"mkdir":["/run/l"],"bindNS":{"net":"/run/netns/l"}},"restart":"always"}"#;
    let yaml = entry("name: s\nimage: x\nbinds.add: [/b:/b]\ncapabilities.add: [CAP_NET_ADMIN]\nruntime: {cgroups: [c1]}\n");
    let m = merge_label(label, &yaml);
    assert_eq!(m.command.as_deref(), Some(&["/bin/getty".to_string()][..]));
    assert_eq!(sources(&m), ["/a", "/b"]);
    assert_eq!(
        m.capabilities,
        caps(&[Capability::SysAdmin, Capability::NetAdmin])
    );
    assert_eq!(m.net, Some(Namespace::New));
    assert_eq!(m.restart, Some(contract::RestartPolicy::Always));
    let rt = m.runtime.unwrap();
    assert_eq!(rt.mkdir.unwrap(), ["/run/l"]);
    assert_eq!(rt.cgroups.unwrap(), ["c1"]);
    assert_eq!(rt.bind_ns.unwrap().net.as_deref(), Some("/run/netns/l"));
    assert!(m.binds_add.is_none() && m.capabilities_add.is_none());
    // A YAML field replaces the label's, `.add` is then ignored.
    let over = merge_label(
        label,
        &entry(
            "command: [b]\nbinds: [/c:/c]\nbinds.add: [/d:/d]\ncapabilities: [none]\nnet: host\n",
        ),
    );
    assert_eq!(over.command.as_deref(), Some(&["b".to_string()][..]));
    assert_eq!(sources(&over), ["/c"]);
    assert_eq!(over.capabilities, caps(&[]));
    assert_eq!(over.net, Some(Namespace::Host));
    // Added to a label's lone `all`: still all; to a lone `none`: just the added.
    let add = entry("capabilities.add: [CAP_NET_RAW]\n");
    let all = merge_label(r#"{"capabilities":["all"]}"#, &add);
    assert_eq!(all.capabilities, Some(Capabilities::All));
    let none = merge_label(r#"{"capabilities":["none"]}"#, &add);
    assert_eq!(none.capabilities, caps(&[Capability::NetRaw]));
    // Adding `all` gives all, whatever the label had.
    let add_all = entry("capabilities.add: [all]\n");
    let some = merge_label(r#"{"capabilities":["CAP_KILL"]}"#, &add_all);
    assert_eq!(some.capabilities, Some(Capabilities::All));
    // Without a label, capabilities.add alone is the list (LinuxKit).
    let (only, _) = merge(
        &ImageEntry::default(),
        &[],
        &entry("capabilities.add: [CAP_KILL]\n"),
    );
    assert_eq!(only.capabilities, caps(&[Capability::Kill]));
    // A bind added twice is there once; the label's come first.
    let twice = merge_label(
        r#"{"binds":["/b:/b"]}"#,
        &entry("binds.add: [/b:/b, 'v:/v']\n"),
    );
    assert_eq!(sources(&twice), ["/b", "v"]);
    assert!(matches!(
        twice.binds.unwrap()[1].source,
        BindSource::Volume(_)
    ));
    // runtime.bindNS merges key by key too.
    let ns = merge_label(
        r#"{"runtime":{"bindNS":{"net":"/run/l","ipc":"/run/i"}}}"#,
        &entry("runtime: {bindNS: {net: /run/y}}\n"),
    );
    let b = ns.runtime.unwrap().bind_ns.unwrap();
    assert_eq!(
        (b.net.as_deref(), b.ipc.as_deref()),
        (Some("/run/y"), Some("/run/i"))
    );
}

fn build(label: &str, yaml: &str) -> Result<Container, BundleError> {
    let image = ImageConfig {
        label: Some(label.into()),
        cmd: vec!["/bin/x".into()],
        ..Default::default()
    };
    let mut e = entry(yaml);
    e.name = Some("s".into());
    Container::new(Section::Services, 0, &e, &image, &BTreeMap::new())
}

#[test]
fn a_label_that_is_no_image_entry_is_refused() {
    let e = build(r#"{"image":"x"}"#, "").unwrap_err();
    assert!(matches!(e, BundleError::BadLabel { .. }));
    assert_eq!(
        e.to_string(),
        "container s: the org.mobyproject.config label is not a valid image entry: a label cannot set `image`"
    );
    let e = build(r#"{"capabilitiez":[]}"#, "").unwrap_err();
    assert!(
        e.to_string().contains("did you mean \"capabilities\""),
        "{e}"
    );
}

#[test]
fn bad_values_of_a_label_are_refused_with_the_key() {
    for (label, expect) in [
        (
            r#"{"capabilities":["CAP_FLY"]}"#,
            "container s: capabilities.0: unknown capability \"CAP_FLY\"",
        ),
        (
            r#"{"binds":["/a"]}"#,
            "container s: binds.0: bind \"/a\" is not SOURCE:DESTINATION[:OPTIONS] (missing ':')",
        ),
        (
            r#"{"rlimits":["nofile,1"]}"#,
            "container s: rlimits.0: rlimit \"nofile,1\" is not NAME,SOFT,HARD",
        ),
        (
            r#"{"mounts":[{"destination":"/x"}]}"#,
            "container s: mounts.0: the mount at \"/x\" has no `type` and none can be inferred",
        ),
        (
            r#"{"uid":"nobody"}"#,
            "container s: uid: \"nobody\" is neither a number nor the name of a container",
        ),
        (
            r#"{"hostname":"h"}"#,
            "container s: hostname: `hostname` is set only in a new UTS namespace: add `uts: new`",
        ),
        (
            r#"{"readinessTimeout":"5s"}"#,
            "container s: readinessTimeout: `readinessTimeout` without `readiness`",
        ),
    ] {
        let e = build(label, "").unwrap_err();
        assert!(matches!(e, BundleError::BadValue { .. }), "{label}");
        assert_eq!(e.to_string(), expect, "{label}");
    }
    // The first in the order `hull validate` lists them.
    let e = build(
        r#"{"stopSignal":"SIGFOO","readiness":{"tcp":0},"cwd":"rel","net":"x"}"#,
        "",
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("container s: net: "), "{e}");
    let e = build(r#"{"readiness":{"tcp":0},"readinessTimeout":"5s"}"#, "").unwrap_err();
    assert!(e.to_string().contains("port 0 is not a TCP port"), "{e}");
}

#[test]
fn a_label_mistake_the_yaml_replaces_is_no_mistake() {
    for (label, yaml) in [
        (
            r#"{"capabilities":["CAP_FLY"]}"#,
            "capabilities: [CAP_KILL]\n",
        ),
        (
            r#"{"capabilities":["CAP_FLY"]}"#,
            "capabilities.add: [all]\n",
        ),
        (r#"{"binds":["/a"]}"#, "binds: [/b:/b]\n"),
        (r#"{"binds.add":["/a"]}"#, ""),
        (r#"{"net":"bridge"}"#, "net: host\n"),
        (r#"{"hostname":"h"}"#, "uts: new\n"),
        (
            r#"{"runtime":{"mkdir":[".."]}}"#,
            "runtime: {mkdir: [/run/x]}\n",
        ),
        (
            r#"{"runtime":{"bindNS":{"net":"rel"}}}"#,
            "runtime: {bindNS: {net: /run/n}}\n",
        ),
    ] {
        assert!(build(label, yaml).is_ok(), "{label} under {yaml}");
    }
    // Left in place, it is one.
    assert!(build(
        r#"{"capabilities":["CAP_FLY"]}"#,
        "capabilities.add: [CAP_KILL]\n"
    )
    .is_err());
    assert!(build(
        r#"{"runtime":{"mkdir":[".."]}}"#,
        "runtime: {cgroups: [c]}\n"
    )
    .is_err());
}
