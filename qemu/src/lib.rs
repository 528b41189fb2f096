//! `hull-qemu` boots a hull image (the `kernel+initrd` output of `hull build`) in
//! QEMU and talks to it over QMP.
//!
//! Its neighbours: the `hull` CLI calls [`run`] for `hull run qemu`, and the VM
//! test harness (`hull-test-vm`) spawns [`VmConfig::command`] through
//! [`RunningVm`] and drives the guest with [`Qmp`]. Nothing here knows about
//! YAML or containers: an image is three files and a state directory.
//!
//! Choices that matter (see DESIGN.md, "Known hazards"):
//! - KVM is used only when `/dev/kvm` can be opened; otherwise TCG.
//! - Every VM gets a virtio-rng device, so the guest never waits for entropy.
//! - arm64 boots through UEFI firmware (`-bios QEMU_EFI.fd`, still `-kernel`),
//!   because only ACPI gives the guest a power button that QMP
//!   `system_powerdown` can press.
//! - The QEMU child dies with us: `PR_SET_PDEATHSIG` plus a kill-and-wait in
//!   [`RunningVm`]'s `Drop`.

mod config;
mod devices;
mod error;
mod process;
mod qmp;
mod run;

pub use config::{
    control_socket_name, find_aarch64_firmware, Arch, VmConfig, AARCH64_FIRMWARE_DIRS,
    CONTROL_PORTS, CONTROL_PORT_NAME, CONTROL_SOCKET,
};
pub use devices::{DeviceError, Disk, Protocol, Publish, DEFAULT_DISK_SIZE};
pub use error::QemuError;
pub use process::RunningVm;
pub use qmp::Qmp;
pub use run::{run, RunOptions, KERNEL_PANIC_MARKER, POWERDOWN_TIMEOUT, READY_MARKER};
