//! Two builds of the same YAML give byte-identical outputs.

use hull_test_vm::{busybox, header, VmTest};

#[test]
#[cfg_attr(
    not(vm_tests),
    ignore = "builds images from the workspace's packages: set HULL_VM_TESTS=1"
)]
fn same_yaml_gives_identical_initrd() {
    let yaml = format!(
        "{}services:\n  - name: s\n    image: \"{}\"\n    command: [sleep, '1000']\n",
        header(),
        busybox()
    );
    // Each build goes to a directory of its own.
    let t = VmTest::new("x86_64");
    let pa = t.build(&yaml);
    let pb = t.build(&yaml);
    assert_ne!(pa, pb);
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
