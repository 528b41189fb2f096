//! Smoke tests of the harness itself, independent of `hull-init`: a
//! hand-made busybox initramfs booted with the workspace's kernel. The
//! kernel, a static busybox and the kernel modules the power-button test
//! needs (`button.ko` on x86_64, `evdev.ko`) come from an image `hull build`
//! makes of the workspace's packages (its `kernel+initrd` and `tar` outputs).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hull_test_vm::cpio::Initramfs;
use hull_test_vm::{busybox, header, hull_bin, Arch, Vm, VmConfig, VmTest};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// What the hand-made guest is made of.
struct Guest {
    kernel: PathBuf,
    busybox: Vec<u8>,
    /// Kernel modules by file name (`evdev.ko`, ...).
    modules: Vec<(String, Vec<u8>)>,
}

/// Builds an image of the workspace's kernel and busybox packages for the
/// test's arch and takes the guest's parts from it.
fn guest(t: &VmTest) -> Guest {
    let dir = t.dir().join("image");
    std::fs::create_dir_all(&dir).expect("image directory");
    let yml = dir.join("parts.yml");
    let yaml = format!(
        "{}services:\n  - name: s\n    image: \"{}\"\n    command: [sleep, '1000']\n",
        header(),
        busybox()
    );
    std::fs::write(&yml, yaml).expect("writing the YAML");
    let out = Command::new(hull_bin())
        .args(["build", "-f", "kernel+initrd", "-f", "tar", "--arch"])
        .arg(t.arch().as_str())
        .arg("--dir")
        .arg(&dir)
        .arg(&yml)
        .stdin(Stdio::null())
        .output()
        .expect("running hull build");
    assert!(
        out.status.success(),
        "hull build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tar = std::fs::File::open(dir.join("parts.tar")).expect("the tar output");
    let mut archive = tar::Archive::new(tar);
    let mut busybox = None;
    let mut modules = Vec::new();
    for entry in archive.entries().expect("reading the tar") {
        let mut entry = entry.expect("a tar entry");
        let path = entry.path().expect("an entry path").into_owned();
        let wanted_module = ["drivers/acpi/button.ko", "drivers/input/evdev.ko"]
            .iter()
            .any(|m| path.ends_with(m));
        if !(wanted_module || path == Path::new("containers/services/s/rootfs/bin/busybox")) {
            continue;
        }
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).expect("reading an entry");
        match path.file_name().and_then(|n| n.to_str()) {
            Some("busybox") => busybox = Some(data),
            Some(name) => modules.push((name.to_string(), data)),
            None => {}
        }
    }
    Guest {
        kernel: dir.join("parts-kernel"),
        busybox: busybox.expect("busybox in the image"),
        modules,
    }
}

/// Boots busybox with `script` as /init (after /proc, /sys and /dev are
/// mounted), with `modules` (file names of the guest's) in /modules.
fn boot(t: &VmTest, g: &Guest, modules: &[&str], script: &str) -> Vm {
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
        .file("/bin/busybox", 0o755, g.busybox.clone())
        .file("/init", 0o755, init);
    for name in modules {
        let (_, data) = g
            .modules
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} is not in the image"));
        ir = ir.file(&format!("/modules/{name}"), 0o644, data.clone());
    }
    let initrd = t.dir().join("initrd.img");
    std::fs::write(&initrd, ir.to_bytes()).expect("writing the initramfs");
    let cfg = VmConfig::new(
        t.arch(),
        g.kernel.clone(),
        initrd,
        "quiet panic=-1".into(),
        t.dir().join("state"),
    );
    eprintln!("qemu argv: {:?}", cfg.command().expect("a QEMU command"));
    t.start(cfg)
}

fn smoke(arch: &str) {
    let t = VmTest::new(arch);
    let g = guest(&t);
    let mut vm = boot(
        &t,
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
fn power_button(arch: &str) {
    let t = VmTest::new(arch);
    let g = guest(&t);
    // On the arm64 cloud kernel `button` is built in.
    let modules: &[&str] = match t.arch() {
        Arch::X86_64 => &["button.ko", "evdev.ko"],
        Arch::Aarch64 => &["evdev.ko"],
    };
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
    let mut vm = boot(&t, &g, modules, script);
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
#[cfg_attr(not(vm_tests), ignore = "boots a VM: set HULL_VM_TESTS=1")]
fn smoke_x86_64() {
    smoke("x86_64");
}

#[test]
#[cfg_attr(not(vm_tests), ignore = "boots a VM: set HULL_VM_TESTS=1")]
fn smoke_aarch64() {
    smoke("aarch64");
}

#[test]
#[cfg_attr(not(vm_tests), ignore = "boots a VM: set HULL_VM_TESTS=1")]
fn power_button_x86_64() {
    power_button("x86_64");
}

#[test]
#[cfg_attr(not(vm_tests), ignore = "boots a VM: set HULL_VM_TESTS=1")]
fn power_button_aarch64() {
    power_button("aarch64");
}
