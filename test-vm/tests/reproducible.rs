//! Two builds of the same YAML give byte-identical outputs.

use hull_test_vm::{build_image, pkg_dir, vm_tests_enabled};

#[test]
fn same_yaml_gives_identical_initrd() {
    if !vm_tests_enabled() {
        return;
    }
    let yaml = format!(
        "kernel:\n  image: \"{}\"\ninit:\n  - \"{}\"\nservices:\n  - name: s\n    image: \"{}\"\n    command: [sleep, '1000']\n",
        pkg_dir("kernel"),
        pkg_dir("init"),
        pkg_dir("busybox")
    );
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pa = build_image(&yaml, "x86_64", a.path()).expect("first build");
    let pb = build_image(&yaml, "x86_64", b.path()).expect("second build");
    for suffix in ["-initrd.img", "-kernel", "-cmdline"] {
        let read = |p: &std::path::Path| {
            std::fs::read(format!("{}{suffix}", p.display())).expect("output exists")
        };
        let (x, y) = (read(&pa), read(&pb));
        assert!(!x.is_empty() || suffix == "-cmdline");
        assert!(
            x == y,
            "{suffix} differs between two builds of the same YAML"
        );
    }
}
