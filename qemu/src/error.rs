use std::path::PathBuf;
use std::time::Duration;

use report::BadInput;

/// Everything that can go wrong while configuring, starting or driving a VM.
/// One variant per failing step; I/O causes are kept as `#[source]`.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error(transparent)]
    UnknownArch(#[from] contract::UnknownArch),

    #[error("{what} not found at {path} (build it with `hull build -f kernel+initrd`)")]
    MissingArtifact {
        what: &'static str,
        path: PathBuf,
        /// The prefix the user gave names no image: bad input (exit code 2).
        #[source]
        input: BadInput,
    },

    #[error("reading {path}")]
    ReadArtifact {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "no UEFI firmware for aarch64 (looked for QEMU_EFI.fd in {}); install the Debian package qemu-efi-aarch64",
        searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NoFirmware { searched: Vec<PathBuf> },

    #[error("creating the VM state directory {path}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("starting {binary} (is it installed? Debian package {package})")]
    Spawn {
        binary: String,
        package: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("connecting to QMP at {path} within {timeout:?}")]
    QmpConnect {
        path: PathBuf,
        timeout: Duration,
        #[source]
        source: std::io::Error,
    },

    #[error("talking QMP on {path}")]
    QmpIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("unexpected QMP message on {path}: {message}")]
    QmpProtocol { path: PathBuf, message: String },

    #[error("QMP command {command} failed: {class}: {desc}")]
    QmpCommand {
        command: String,
        class: String,
        desc: String,
    },

    #[error("waiting for QEMU (pid {pid})")]
    Wait {
        pid: u32,
        #[source]
        source: std::io::Error,
    },

    #[error("copying the guest console")]
    Console(#[source] std::io::Error),

    #[error("no \"all services started\" within {}s", .timeout.as_secs())]
    NotReady { timeout: Duration },

    #[error("kernel panic on the guest console: {line}")]
    KernelPanic { line: String },

    #[error("QEMU exited ({status}) before the guest said \"all services started\"")]
    ExitedEarly { status: std::process::ExitStatus },

    #[error("the guest did not power off within {}s after system_powerdown", .timeout.as_secs())]
    NoPowerOff { timeout: Duration },

    #[error("QEMU exited with {status} after system_powerdown")]
    BadExit { status: std::process::ExitStatus },
}
