use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::QemuError;
use crate::process;

/// Where Debian (`qemu-efi-aarch64`) and Fedora/older Debian (`AAVMF`) put the
/// arm64 UEFI firmware.
pub const AARCH64_FIRMWARE_DIRS: &[&str] = &["/usr/share/qemu-efi-aarch64", "/usr/share/AAVMF"];

/// The file in the state directory where QEMU listens for the first control port.
pub const CONTROL_SOCKET: &str = "control.sock";
/// How many control ports a VM has (how many `hull ctl` may talk to it at once).
pub const CONTROL_PORTS: u32 = 4;

/// `control.sock`, `control.1.sock`, ...: the host side of control port `n`.
pub fn control_socket_name(n: u32) -> String {
    if n == 0 {
        CONTROL_SOCKET.to_string()
    } else {
        format!("control.{n}.sock")
    }
}
/// The virtio-serial port's name, as the guest finds it in /sys/class/virtio-ports.
pub const CONTROL_PORT_NAME: &str = "org.hull.control";

/// The guest architecture: one type for every crate of hull (its QEMU
/// spellings are [`Arch::qemu_binary`] and [`Arch::serial_console`]).
pub use contract::Arch;

/// The Debian package that ships [`Arch::qemu_binary`].
fn qemu_package(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "qemu-system-x86",
        Arch::Aarch64 => "qemu-system-arm",
    }
}

/// What to boot and how big the machine is.
#[derive(Debug, Clone)]
pub struct VmConfig {
    pub arch: Arch,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The kernel command line; a `console=` for the serial port is appended
    /// by [`VmConfig::command`] when it has none.
    pub cmdline: String,
    /// Memory in MiB (default 1024).
    pub mem_mib: u32,
    /// Virtual CPUs (default 1).
    pub cpus: u32,
    /// Holds `qmp.sock`; created by [`VmConfig::command`].
    pub state_dir: PathBuf,
    /// Appended verbatim to QEMU's argv (after everything hull adds).
    pub extra_args: Vec<String>,
    /// Port forwards into the guest (`--publish`), on its virtio NIC.
    pub publish: Vec<crate::Publish>,
    /// Disks attached as virtio-blk (`--disk`), in order.
    pub disks: Vec<crate::Disk>,
}

impl VmConfig {
    /// A config with the defaults (1 GiB, 1 CPU, no extra arguments).
    pub fn new(
        arch: Arch,
        kernel: PathBuf,
        initrd: PathBuf,
        cmdline: String,
        state_dir: PathBuf,
    ) -> VmConfig {
        VmConfig {
            arch,
            kernel,
            initrd,
            cmdline,
            mem_mib: 1024,
            cpus: 1,
            state_dir,
            extra_args: Vec::new(),
            publish: Vec::new(),
            disks: Vec::new(),
        }
    }

    /// Reads `PREFIX-kernel`, `PREFIX-initrd.img` and `PREFIX-cmdline` (the
    /// output of `hull build -f kernel+initrd`); the state directory defaults
    /// to `PREFIX-state`.
    pub fn from_prefix(prefix: &Path, arch: Arch) -> Result<VmConfig, QemuError> {
        let kernel = with_suffix(prefix, "-kernel");
        let initrd = with_suffix(prefix, "-initrd.img");
        let cmdline_path = with_suffix(prefix, "-cmdline");
        for (what, path) in [
            ("kernel", &kernel),
            ("initrd", &initrd),
            ("kernel command line", &cmdline_path),
        ] {
            if !path.is_file() {
                return Err(QemuError::MissingArtifact {
                    what,
                    path: path.clone(),
                    input: report::BadInput::marker(),
                });
            }
        }
        let cmdline =
            std::fs::read_to_string(&cmdline_path).map_err(|source| QemuError::ReadArtifact {
                path: cmdline_path.clone(),
                source,
            })?;
        Ok(VmConfig::new(
            arch,
            kernel,
            initrd,
            cmdline.trim().to_string(),
            with_suffix(prefix, "-state"),
        ))
    }

    /// The QMP socket QEMU listens on.
    pub fn qmp_socket(&self) -> PathBuf {
        self.state_dir.join("qmp.sock")
    }

    /// The socket QEMU listens on for the host side of the guest's control
    /// port `n` (virtio-serial `org.hull.control`, then `org.hull.control.N`):
    /// what `hull ctl --vm` connects to.
    pub fn control_socket(&self, n: u32) -> PathBuf {
        self.state_dir.join(control_socket_name(n))
    }

    /// The kernel command line as passed to `-append`.
    pub fn effective_cmdline(&self) -> String {
        let has_console = self
            .cmdline
            .split_whitespace()
            .any(|w| w.starts_with("console="));
        if has_console {
            self.cmdline.clone()
        } else if self.cmdline.is_empty() {
            format!("console={}", self.arch.serial_console())
        } else {
            format!("{} console={}", self.cmdline, self.arch.serial_console())
        }
    }

    /// QEMU's argv after the binary name. Pure: no files are touched except to
    /// look for firmware and `/dev/kvm`.
    pub fn args(&self) -> Result<Vec<OsString>, QemuError> {
        let kvm = kvm_usable(self.arch);
        let mut a: Vec<OsString> = Vec::new();
        let push = |a: &mut Vec<OsString>, s: &str| a.push(s.into());
        push(&mut a, "-accel");
        push(&mut a, if kvm { "kvm" } else { "tcg" });
        match self.arch {
            Arch::X86_64 => {
                // `pc` has ACPI: system_powerdown reaches the guest as the ACPI
                // power button.
                push(&mut a, "-M");
                push(&mut a, "pc");
                if kvm {
                    push(&mut a, "-cpu");
                    push(&mut a, "host");
                }
            }
            Arch::Aarch64 => {
                push(&mut a, "-M");
                push(&mut a, "virt");
                push(&mut a, "-cpu");
                // Plain `max` is several times slower under TCG (pointer auth).
                push(&mut a, if kvm { "host" } else { "cortex-a72" });
            }
        }
        if self.arch == Arch::Aarch64 {
            // UEFI, so that the guest sees ACPI and gets a power button; the
            // firmware still boots -kernel/-initrd (passed through fw_cfg).
            a.push("-bios".into());
            a.push(find_aarch64_firmware()?.into_os_string());
        }
        let mut sock = OsString::from("unix:");
        sock.push(self.qmp_socket());
        sock.push(",server=on,wait=off");
        for s in [
            "-nographic",
            "-no-reboot",
            // mon:stdio: the serial console on stdio, with Ctrl-A X to quit and
            // Ctrl-A C for the HMP monitor when run interactively.
            "-serial",
            "mon:stdio",
            "-device",
            "virtio-rng-pci",
        ] {
            a.push(s.into());
        }
        a.push("-qmp".into());
        a.push(sock);
        // The control ports: hull-init serves `hullctl` on them, so the host
        // can ask without a network or a shell. A port carries one client at
        // a time, so there are a few; `hull ctl` takes a free one.
        a.push("-device".into());
        a.push("virtio-serial-pci".into());
        for n in 0..CONTROL_PORTS {
            let mut chardev = OsString::from(format!("socket,id=hullctl{n},path="));
            chardev.push(self.control_socket(n));
            chardev.push(",server=on,wait=off");
            a.push("-chardev".into());
            a.push(chardev);
            let name = if n == 0 {
                CONTROL_PORT_NAME.to_string()
            } else {
                format!("{CONTROL_PORT_NAME}.{n}")
            };
            a.push("-device".into());
            a.push(format!("virtserialport,chardev=hullctl{n},name={name}").into());
        }
        a.push("-m".into());
        a.push(self.mem_mib.to_string().into());
        a.push("-smp".into());
        a.push(self.cpus.to_string().into());
        a.push("-kernel".into());
        a.push(self.kernel.clone().into_os_string());
        a.push("-initrd".into());
        a.push(self.initrd.clone().into_os_string());
        a.push("-append".into());
        a.push(self.effective_cmdline().into());
        // A virtio NIC on user networking (instead of QEMU's default e1000,
        // which the cloud kernel lacks), with the published ports.
        a.extend(crate::devices::nic_args(&self.publish));
        a.extend(crate::devices::disk_args(&self.disks));
        a.extend(self.extra_args.iter().map(OsString::from));
        Ok(a)
    }

    /// The full command: binary, accelerator, machine, firmware (arm64),
    /// console, virtio-rng, QMP socket, memory, CPUs, kernel, initrd and
    /// command line. Creates the state directory and removes a stale QMP
    /// socket. The child is set up to receive SIGKILL when the thread that
    /// spawns it exits (`PR_SET_PDEATHSIG`), so spawn it from a thread that
    /// outlives the VM.
    pub fn command(&self) -> Result<Command, QemuError> {
        let args = self.args()?;
        std::fs::create_dir_all(&self.state_dir).map_err(|source| QemuError::StateDir {
            path: self.state_dir.clone(),
            source,
        })?;
        let stale_files = std::iter::once(self.qmp_socket())
            .chain((0..CONTROL_PORTS).map(|n| self.control_socket(n)));
        for stale in stale_files {
            match std::fs::remove_file(&stale) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(QemuError::StateDir {
                        path: stale,
                        source,
                    })
                }
            }
        }
        let mut cmd = Command::new(self.arch.qemu_binary());
        cmd.args(args);
        process::die_with_parent(&mut cmd);
        Ok(cmd)
    }

    /// The error to report when spawning [`VmConfig::command`] fails.
    pub fn spawn_error(&self, source: std::io::Error) -> QemuError {
        QemuError::Spawn {
            binary: self.arch.qemu_binary().to_string(),
            package: qemu_package(self.arch),
            source,
        }
    }
}

/// `QEMU_EFI.fd` from [`AARCH64_FIRMWARE_DIRS`].
pub fn find_aarch64_firmware() -> Result<PathBuf, QemuError> {
    let searched: Vec<PathBuf> = AARCH64_FIRMWARE_DIRS
        .iter()
        .map(|d| Path::new(d).join("QEMU_EFI.fd"))
        .collect();
    searched
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or(QemuError::NoFirmware { searched })
}

/// KVM only when the guest runs natively, `/dev/kvm` opens read-write and
/// (on x86) the CPU advertises vmx/svm. The last check matters: sandboxes
/// such as gVisor offer a `/dev/kvm` whose API answers (even KVM_CREATE_VM)
/// while a guest never gets past SeaBIOS. `HULL_QEMU_ACCEL=tcg|kvm`
/// overrides the guess.
fn kvm_usable(arch: Arch) -> bool {
    match std::env::var("HULL_QEMU_ACCEL").as_deref() {
        Ok("kvm") => return true,
        Ok("tcg") => return false,
        _ => {}
    }
    if Arch::host() != Some(arch) {
        return false;
    }
    let opens = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    let cpu_ok = match arch {
        Arch::X86_64 => std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| {
            c.lines()
                .filter(|l| l.starts_with("flags"))
                .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
        }),
        Arch::Aarch64 => true,
    };
    opens && cpu_ok
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(arch: Arch, cmdline: &str) -> VmConfig {
        VmConfig::new(
            arch,
            "/k".into(),
            "/i".into(),
            cmdline.into(),
            "/tmp/st".into(),
        )
    }

    #[test]
    fn arch_names() {
        assert_eq!("amd64".parse::<Arch>().unwrap(), Arch::X86_64);
        assert_eq!("arm64".parse::<Arch>().unwrap(), Arch::Aarch64);
        assert_eq!("aarch64".parse::<Arch>().unwrap(), Arch::Aarch64);
        let e = "riscv64".parse::<Arch>().unwrap_err().to_string();
        assert!(e.contains("riscv64"), "{e}");
    }

    #[test]
    fn console_appended_only_when_missing() {
        assert_eq!(
            cfg(Arch::X86_64, "quiet").effective_cmdline(),
            "quiet console=ttyS0"
        );
        assert_eq!(
            cfg(Arch::Aarch64, "").effective_cmdline(),
            "console=ttyAMA0"
        );
        assert_eq!(
            cfg(Arch::X86_64, "console=tty0 quiet").effective_cmdline(),
            "console=tty0 quiet"
        );
    }

    #[test]
    fn x86_args() {
        let a: Vec<String> = cfg(Arch::X86_64, "x")
            .args()
            .unwrap()
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        let joined = a.join(" ");
        assert!(joined.contains("-M pc"), "{joined}");
        assert!(joined.contains("-device virtio-rng-pci"), "{joined}");
        assert!(
            joined.contains("-qmp unix:/tmp/st/qmp.sock,server=on,wait=off"),
            "{joined}"
        );
        assert!(
            joined.contains("-device virtio-serial-pci -chardev socket,id=hullctl0,path=/tmp/st/control.sock,server=on,wait=off -device virtserialport,chardev=hullctl0,name=org.hull.control -chardev socket,id=hullctl1,path=/tmp/st/control.1.sock"),
            "{joined}"
        );
        assert!(
            joined.contains("-m 1024 -smp 1 -kernel /k -initrd /i -append"),
            "{joined}"
        );
        let append = a.iter().position(|s| s == "-append").unwrap();
        assert_eq!(a[append + 1], "x console=ttyS0");
        assert!(
            joined.contains("-netdev user,id=net0 -device virtio-net-pci,netdev=net0,romfile="),
            "{joined}"
        );
    }

    #[test]
    fn publish_and_disks_become_nic_and_drives() {
        let mut c = cfg(Arch::X86_64, "x");
        c.publish = vec!["6379:6379".parse().unwrap(), "5353:53/udp".parse().unwrap()];
        c.disks = vec!["/d/a.img".parse().unwrap(), "/d/b.qcow2".parse().unwrap()];
        let joined = c
            .args()
            .unwrap()
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(joined.contains("-netdev user,id=net0,hostfwd=tcp:127.0.0.1:6379-:6379,hostfwd=udp:127.0.0.1:5353-:53 -device virtio-net-pci,netdev=net0,romfile="), "{joined}");
        assert!(joined.contains("-drive file=/d/a.img,format=raw,if=virtio -drive file=/d/b.qcow2,format=qcow2,if=virtio"), "{joined}");
    }

    #[test]
    fn from_prefix_names_the_missing_file() {
        let e = VmConfig::from_prefix(Path::new("/nonexistent/img"), Arch::X86_64)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/img-kernel"), "{e}");
    }
}
