//! The CLI as a user meets it: bad input fails with one clear line, exit
//! code 2, and no partial outputs. These run offline: every error here is
//! found before any package is built.

use std::path::Path;
use std::process::Command;

fn hull(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hull"))
        .args(args)
        .current_dir(dir)
        .env("HULL_CACHE", dir.join("cache"))
        .output()
        .expect("run hull");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn pkg(name: &str) -> String {
    format!("@pkg:{}/../pkg/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn build_fails(yaml: &str, expect: &str, line: usize) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("img.yml"), yaml).unwrap();
    let (code, stderr) = hull(dir.path(), &["build", "--dir", "out", "img.yml"]);
    assert_eq!(code, 2, "exit code for bad input; stderr: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(&format!("img.yml:{line}:")),
        "position {line} in: {stderr}"
    );
    assert!(stderr.contains(expect), "{expect:?} in: {stderr}");
    let outputs: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(outputs.is_empty(), "partial outputs left: {outputs:?}");
}

fn header() -> String {
    format!(
        "kernel:\n  image: \"{}\"\ninit:\n  - \"{}\"\n",
        pkg("kernel"),
        pkg("init")
    )
}

#[test]
fn bad_image_reference_is_reported_with_position() {
    // Offline: a reference that does not parse fails before any pull
    // (tests/registry.rs checks an image a registry does not have, and one
    // it cannot reach).
    build_fails(
        &format!(
            "{}services:\n  - name: s\n    image: \"no such/thing:1\"\n",
            header()
        ),
        "image reference \"no such/thing:1\"",
        7,
    );
}

#[test]
fn bad_field_is_reported_with_suggestion() {
    build_fails(
        &format!(
            "{}services:\n  - name: s\n    image: x\n    comand: [true]\n",
            header()
        ),
        "did you mean \"command\"",
        8,
    );
}

#[test]
fn unknown_package_path_is_reported() {
    build_fails(
        &format!(
            "{}services:\n  - name: s\n    image: \"@pkg:./does/not/exist\"\n",
            header()
        ),
        "no package at",
        7,
    );
}

#[test]
fn unknown_arch_is_bad_usage() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("img.yml"), header()).unwrap();
    let (code, stderr) = hull(dir.path(), &["build", "--arch", "sparc", "img.yml"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown arch"), "{stderr}");
}

#[test]
fn pkg_show_tag_is_stable_and_follows_content() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p");
    std::fs::create_dir_all(p.join("rootfs")).unwrap();
    std::fs::write(
        p.join("build.yml"),
        "image: demo\nsources:\n  - files: rootfs/\n",
    )
    .unwrap();
    std::fs::write(p.join("rootfs/hello"), "1").unwrap();
    let tag = |d: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_hull"))
            .args(["pkg", "show-tag"])
            .arg(d)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let a = tag(&p);
    assert!(a.starts_with("hull/demo:"), "{a}");
    assert_eq!(a, tag(&p));
    std::fs::write(p.join("rootfs/hello"), "2").unwrap();
    assert_ne!(a, tag(&p));
}

#[test]
fn ctl_without_a_vm_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = hull(dir.path(), &["ctl", "--vm", "nope-state", "ps"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("nope-state: no such VM state directory"),
        "{stderr}"
    );
    // A state directory whose VM is not running: nothing to connect to.
    std::fs::create_dir(dir.path().join("st")).unwrap();
    let (code, stderr) = hull(dir.path(), &["ctl", "--vm", "st", "ps"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("no control socket free (is the VM running?"),
        "{stderr}"
    );
    let (code, stderr) = hull(dir.path(), &["ctl", "--vm", "st", "kill", "-s", "FLY", "x"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.trim(), "hull: unknown signal \"FLY\"");
}
