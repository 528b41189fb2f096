//! Smoke tests of the harness itself, independent of `hull`: a hand-made
//! busybox initramfs booted with a Debian kernel named by environment
//! variables (skipped when they are not set):
//!
//! - `HULL_TEST_KERNEL`: an x86_64 vmlinuz (e.g. from `apt-get download
//!   linux-image-6.1.0-NN-cloud-amd64`, extracted with `dpkg-deb -x`);
//!   busybox is `HULL_TEST_BUSYBOX` or the host's static `/bin/busybox`.
//! - `HULL_TEST_KERNEL_AARCH64` and `HULL_TEST_BUSYBOX_AARCH64`: the same for
//!   arm64 (booted through UEFI firmware).
//!
//! The power-button tests also need `button.ko` (x86_64 only) and `evdev.ko`,
//! found next to the kernel as Debian's package lays them out
//! (`../lib/modules/VERSION/kernel/...` relative to `boot/vmlinuz-VERSION`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use hull_test_vm::cpio::Initramfs;
use hull_test_vm::{vm_lock, vm_tests_enabled, Arch, Vm, VmConfig};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

struct Guest {
    kernel: PathBuf,
    busybox: PathBuf,
}

fn guest(arch: Arch) -> Option<Guest> {
    let (kvar, bvar, default_bb) = match arch {
        Arch::X86_64 => (
            "HULL_TEST_KERNEL",
            "HULL_TEST_BUSYBOX",
            Some("/bin/busybox"),
        ),
        Arch::Aarch64 => (
            "HULL_TEST_KERNEL_AARCH64",
            "HULL_TEST_BUSYBOX_AARCH64",
            None,
        ),
    };
    let kernel = std::env::var_os(kvar).map(PathBuf::from);
    let busybox = std::env::var_os(bvar)
        .map(PathBuf::from)
        .or_else(|| default_bb.map(PathBuf::from));
    match (kernel, busybox) {
        (Some(kernel), Some(busybox)) => Some(Guest { kernel, busybox }),
        _ => {
            eprintln!("skipped: set {kvar} (and {bvar}) to boot a test kernel");
            None
        }
    }
}

/// A module of the kernel's Debian package, e.g. `drivers/input/evdev.ko`.
fn module(kernel: &Path, rel: &str) -> Option<PathBuf> {
    let name = kernel.file_name()?.to_str()?;
    let version = name.strip_prefix("vmlinuz-")?;
    let p = kernel
        .parent()?
        .parent()?
        .join("lib/modules")
        .join(version)
        .join("kernel")
        .join(rel);
    p.is_file().then_some(p)
}

/// Boots busybox with `script` as /init (after /proc, /sys and /dev are
/// mounted), with `modules` in /modules.
fn boot(arch: Arch, g: &Guest, modules: &[PathBuf], script: &str) -> Vm {
    let work = std::env::temp_dir().join(format!(
        "hull-test-vm-{}-{}",
        std::process::id(),
        arch.as_str()
    ));
    std::fs::create_dir_all(&work).unwrap();
    let bb = std::fs::read(&g.busybox).unwrap();
    let init = format!(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s /bin\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sys /sys\n\
         mount -t devtmpfs dev /dev\n\
         {script}\n"
    );
    let mut ir = Initramfs::new()
        .dir("/bin")
        .dir("/dev")
        .chardev("/dev/console", 5, 1)
        .dir("/proc")
        .dir("/sys")
        .dir("/modules")
        .file("/bin/busybox", 0o755, bb)
        .file("/init", 0o755, init);
    for m in modules {
        let name = m.file_name().unwrap().to_str().unwrap();
        ir = ir.file(
            &format!("/modules/{name}"),
            0o644,
            std::fs::read(m).unwrap(),
        );
    }
    let initrd = work.join("initrd.img");
    std::fs::write(&initrd, ir.to_bytes()).unwrap();
    let cfg = VmConfig::new(
        arch,
        g.kernel.clone(),
        initrd,
        "quiet panic=-1".into(),
        work.join("state"),
    );
    eprintln!("qemu argv: {:?}", cfg.command().unwrap());
    Vm::start_config(cfg).unwrap()
}

fn smoke(arch: Arch) {
    if !vm_tests_enabled() {
        return;
    }
    let Some(g) = guest(arch) else { return };
    let _lock = vm_lock();
    let mut vm = boot(
        arch,
        &g,
        &[],
        "echo \"HARNESS-OK uptime $(cat /proc/uptime)\"\npoweroff -f",
    );
    let line = vm.expect("HARNESS-OK", BOOT_TIMEOUT).unwrap();
    eprintln!("{arch}: {line:?} after {:?} wall", vm.elapsed());
    let status = vm.wait_exit(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "QEMU exited with {status}");
    eprintln!("{arch}: QEMU exited after {:?} wall", vm.elapsed());
}

/// QMP `system_powerdown` must reach the guest as an input event from the
/// ACPI "Power Button" device.
fn power_button(arch: Arch) {
    if !vm_tests_enabled() {
        return;
    }
    let Some(g) = guest(arch) else { return };
    let mut modules = Vec::new();
    // On the arm64 cloud kernel `button` is built in.
    let wanted: &[&str] = match arch {
        Arch::X86_64 => &["drivers/acpi/button.ko", "drivers/input/evdev.ko"],
        Arch::Aarch64 => &["drivers/input/evdev.ko"],
    };
    for rel in wanted {
        match module(&g.kernel, rel) {
            Some(m) => modules.push(m),
            None => {
                eprintln!("skipped: {rel} not found next to {}", g.kernel.display());
                return;
            }
        }
    }
    let _lock = vm_lock();
    // The reader must have the device open before the button is pressed:
    // evdev drops events nobody is reading.
    let script = "for m in /modules/*.ko; do insmod $m; done\n\
        ev=$(awk '/^N: /{p=/Power Button/} p&&/^H: /{for(i=1;i<=NF;i++) if($i~/^event/) print $i}' /proc/bus/input/devices | head -n1)\n\
        echo \"POWER-BUTTON-DEVICE $ev\"\n\
        (dd if=/dev/input/$ev of=/dev/null bs=24 count=1 2>/dev/null && echo \"POWER-BUTTON-PRESSED uptime $(cat /proc/uptime)\") &\n\
        sleep 1\n\
        echo \"WAITING uptime $(cat /proc/uptime)\"\n\
        wait\n\
        poweroff -f";
    let mut vm = boot(arch, &g, &modules, script);
    let dev = vm.expect("POWER-BUTTON-DEVICE", BOOT_TIMEOUT).unwrap();
    assert!(
        dev.contains("event"),
        "no Power Button input device: {dev:?}"
    );
    let line = vm.expect("WAITING", BOOT_TIMEOUT).unwrap();
    eprintln!("{arch}: {line:?} after {:?} wall", vm.elapsed());
    vm.powerdown().unwrap();
    let line = vm
        .expect("POWER-BUTTON-PRESSED", Duration::from_secs(20))
        .unwrap();
    eprintln!("{arch}: {line:?} after {:?} wall", vm.elapsed());
    let status = vm.wait_exit(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "QEMU exited with {status}");
}

#[test]
fn smoke_x86_64() {
    smoke(Arch::X86_64);
}

#[test]
fn smoke_aarch64() {
    smoke(Arch::Aarch64);
}

#[test]
fn power_button_x86_64() {
    power_button(Arch::X86_64);
}

#[test]
fn power_button_aarch64() {
    power_button(Arch::Aarch64);
}
