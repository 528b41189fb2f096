//! The spine, end to end on both arches: a YAML file becomes a kernel+initrd
//! that boots under QEMU (TCG), runs onboot containers in order and a service
//! through the embedded runtime, keeps the root read-only, gives containers
//! that bind `/dev:/dev` the guest's /dev, and powers off
//! cleanly when the host presses the power button.
//!
//! Opt-in (they boot real VMs): `HULL_VM_TESTS=1 cargo test -p hull-test-vm -- --test-threads=1`.

use std::time::Duration;

use hull_test_vm::{boot, busybox};

const BOOT: Duration = Duration::from_secs(90);

fn spine_yaml() -> String {
    let busybox = busybox();
    format!(
        r#"
onboot:
  - name: writer
    image: "{busybox}"
    command: [sh, -c, "echo VALUE-$((6*7))-OK > /shared/value"]
    binds: ["/run/shared:/shared"]
    runtime:
      mkdir: [/run/shared]
  - name: failing
    image: "{busybox}"
    command: [sh, -c, "echo about to fail; exit 3"]
  - name: rootwriter
    image: "{busybox}"
    command: [sh, -c, "if echo x > /host/etc/written-by-container; then echo ROOT-IS-WRITABLE; else echo ROOT-IS-READONLY; fi"]
    binds: ["/:/host:rw,rbind"]
  # LinuxKit's getty and format bind the guest's /dev as is.
  - name: devbind
    image: "{busybox}"
    command: [sh, -c, "for t in ttyS0 ttyAMA0; do [ -c /dev/$t ] && echo CONSOLE-DEVICE=$t; done; [ -e /dev/kcore ] || echo NO-KCORE; echo '<3>hull-devbind-wrote-kmsg' > /dev/kmsg && echo mark > /dev/hull-devbind-mark"]
    binds: ["/dev:/dev"]
  - name: devbind2
    image: "{busybox}"
    command: [sh, -c, "echo seen=$(cat /dev/hull-devbind-mark) null=$(echo x > /dev/null && echo ok); rm /dev/hull-devbind-mark"]
    binds: ["/dev:/dev"]
services:
  - name: reader
    image: "{busybox}"
    command: [sh, -c, "trap 'echo got SIGTERM; exit 0' TERM; echo value=$(cat /shared/value); while true; do sleep 1; done"]
    binds: ["/run/shared:/shared"]
"#
    )
}

fn spine(arch: &str) {
    let mut b = boot(arch, &spine_yaml());
    let vm = &mut b.vm;

    // Onboot runs in order; a failure is reported with its exit code and the boot goes on.
    vm.expect("writer exited with exit code 0", BOOT)
        .expect("writer ran");
    vm.expect("failing | about to fail", BOOT)
        .expect("failing ran");
    vm.expect(
        "onboot failing failed with exit code 3; boot continues",
        BOOT,
    )
    .expect("failure reported with its code");
    // Writing to the root through a read-write bind of / fails: the root is read-only.
    let line = vm
        .expect("rootwriter | ROOT-IS-", BOOT)
        .expect("rootwriter ran");
    assert!(
        line.contains("ROOT-IS-READONLY"),
        "root was writable: {line}"
    );
    // A container whose /dev is the guest's (`binds: [/dev:/dev]`) sees its
    // devices, writes to the kernel log, and leaves nothing of libcontainer's
    // /dev setup behind in the guest's /dev (no /dev/kcore symlink there).
    let console_dev = if arch == "x86_64" { "ttyS0" } else { "ttyAMA0" };
    vm.expect(&format!("devbind | CONSOLE-DEVICE={console_dev}"), BOOT)
        .expect("the container sees the guest's serial device");
    vm.expect("devbind | NO-KCORE", BOOT)
        .expect("the guest's /dev untouched by libcontainer");
    vm.expect("devbind exited with exit code 0", BOOT)
        .expect("devbind ran");
    // The kernel prints it straight to the console, so it may come before
    // or after the container's own lines.
    vm.wait_for_line("hull-devbind-wrote-kmsg", Duration::from_secs(10));
    // A second one sees the file the first put in the guest's /dev.
    vm.expect("devbind2 | seen=mark null=ok", BOOT)
        .expect("the second container shares the guest's /dev");
    vm.expect("devbind2 exited with exit code 0", BOOT)
        .expect("devbind2 ran");
    vm.expect("hull: all services started", BOOT)
        .expect("boot completed");
    // The service reads what the onboot container wrote (its output may come
    // before or after the ready line, so look at the whole console).
    vm.wait_for_line("reader | value=VALUE-42-OK", Duration::from_secs(30));

    // The host presses the power button; the service sees SIGTERM and QEMU exits by itself.
    vm.powerdown().expect("QMP system_powerdown");
    vm.expect("reader | got SIGTERM", Duration::from_secs(30))
        .expect("service saw SIGTERM");
    vm.expect(
        "hull: shutdown complete (Poweroff)",
        Duration::from_secs(30),
    )
    .expect("clean shutdown");
    let status = vm
        .wait_exit(Duration::from_secs(30))
        .expect("QEMU exits by itself");
    assert!(status.success(), "QEMU exit status {status}");
    let console = vm.console().join("\n");
    assert!(
        !console.contains("panicked"),
        "something panicked in the guest"
    );
    assert!(!console.contains("Kernel panic"), "kernel panic");
}

#[test]
#[cfg_attr(not(vm_tests), ignore = "boots a VM: set HULL_VM_TESTS=1")]
fn spine_x86_64() {
    spine("x86_64");
}

#[test]
#[cfg_attr(not(vm_tests), ignore = "boots a VM: set HULL_VM_TESTS=1")]
fn spine_aarch64() {
    spine("aarch64");
}
