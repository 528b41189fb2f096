//! examples/persistent.yml (x86_64): a blank disk is formatted and mounted,
//! the service's data survives a clean poweroff and a second boot, and the
//! second boot does not format again. A disk that already holds a
//! filesystem made elsewhere is never reformatted: its marker file survives.
//!
//! Opt-in: `HULL_VM_TESTS=1 cargo test -p hull-test-vm --test persistent`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hull_test_vm::{Vm, VmTest};

const BOOT: Duration = Duration::from_secs(90);

fn boot(t: &VmTest, prefix: &Path, disk: &Path, name: &str) -> Vm {
    let mut cfg = t.config(prefix);
    let disk: qemu::Disk = format!("{},size=64M", disk.display())
        .parse()
        .expect("disk");
    disk.ensure().expect("disk file");
    cfg.disks = vec![disk];
    t.start_named(cfg, name)
}

fn power_off(vm: &mut Vm) {
    vm.powerdown().expect("QMP system_powerdown");
    vm.expect("hull: shutdown complete", Duration::from_secs(30))
        .expect("clean shutdown");
    let status = vm.wait_exit(Duration::from_secs(30)).expect("QEMU exits");
    assert!(status.success(), "QEMU exit status {status}");
}

#[test]
#[cfg_attr(not(vm_tests), ignore = "boots a VM: set HULL_VM_TESTS=1")]
fn persistent_x86_64() {
    let t = VmTest::new("x86_64");
    let prefix = t.build(&common::example("persistent.yml"));
    let disk = t.dir().join("data.img");

    // First boot: a blank disk is formatted, the service writes to it.
    let mut vm = boot(&t, &prefix, &disk, "persistent_x86_64_first");
    vm.expect("format | format: formatted /dev/vda", BOOT)
        .expect("blank disk formatted");
    vm.expect("mount | mount: /var/lib/data is /dev/vda (ext4)", BOOT)
        .expect("disk mounted");
    let first = vm
        .expect("counter | boot number 1, first boot at ", BOOT)
        .expect("service wrote to the disk");
    power_off(&mut vm);
    drop(vm);

    // Second boot, same disk: not formatted again, the data is there.
    let mut vm = boot(&t, &prefix, &disk, "persistent_x86_64_second");
    vm.expect("format | format: /dev/vda already holds data", BOOT)
        .expect("not reformatted");
    let second = vm
        .expect("counter | boot number 2, first boot at ", BOOT)
        .expect("data survived the reboot");
    let when = |l: &str| l.split("first boot at ").nth(1).map(str::to_string);
    assert_eq!(
        when(&first),
        when(&second),
        "the first boot's record survived"
    );
    power_off(&mut vm);
    drop(vm);

    // A disk with a filesystem made elsewhere, holding a record of its own:
    // left alone, and its files are what the service reads.
    let seed = t.dir().join("seed");
    std::fs::create_dir(&seed).expect("seed");
    std::fs::write(seed.join("boots"), "1\n").expect("seed file");
    std::fs::write(seed.join("first-boot"), "host-made\n").expect("seed file");
    let other = t.dir().join("other.img");
    std::fs::File::create(&other)
        .and_then(|f| f.set_len(32 << 20))
        .expect("disk");
    let mkfs = common::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "hostmade", "-d"])
            .arg(&seed)
            .arg(&other),
    );
    assert!(mkfs.status.success(), "mkfs.ext4 failed: {mkfs:?}");
    let mut vm = boot(&t, &prefix, &other, "persistent_x86_64_hostmade");
    vm.expect("format | format: /dev/vda already holds data", BOOT)
        .expect("a filesystem made elsewhere is not reformatted");
    vm.expect("counter | boot number 2, first boot at host-made", BOOT)
        .expect("the host's files are still there");
    power_off(&mut vm);
}
