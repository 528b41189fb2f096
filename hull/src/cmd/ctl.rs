//! `hull ctl --vm STATE_DIR ...`: `hullctl` from the host, through the
//! virtio-serial port of a VM started by `hull run qemu` (QEMU listens on
//! `STATE_DIR/control.sock`). The subcommands and the client are `hull-ctl`'s,
//! the same as the guest's `hullctl`.

use std::path::PathBuf;

use anyhow::Context;
use report::BadInput;

#[derive(clap::Args)]
pub struct CtlArgs {
    /// The VM's state directory (`hull run qemu --state`, default PREFIX-state).
    #[arg(long, value_name = "STATE_DIR")]
    pub vm: PathBuf,
    #[command(subcommand)]
    pub cmd: ctl::CtlCommand,
}

pub fn run(args: CtlArgs) -> anyhow::Result<i32> {
    if !args.vm.is_dir() {
        return Err(BadInput::new(format!(
            "{}: no such VM state directory (give the --state of `hull run qemu`, default PREFIX-state)",
            args.vm.display()
        ))
        .into());
    }
    // Bad input is reported as such before any port is taken.
    if let ctl::CtlCommand::Kill { signal, .. } = &args.cmd {
        ctl::parse_signal(signal)?;
    }
    let (sock, _lock) = free_port(&args.vm)?;
    Ok(ctl::run(&sock, args.cmd)?)
}

/// A control port no other `hull ctl` is using, and the lock that keeps it
/// ours: QEMU serves one client per port and leaves the others waiting
/// unanswered, so clients take turns through lock files next to the sockets.
fn free_port(state: &std::path::Path) -> anyhow::Result<(PathBuf, std::fs::File)> {
    for n in 0..qemu::CONTROL_PORTS {
        let sock = state.join(qemu::control_socket_name(n));
        if !sock.exists() {
            continue;
        }
        let lock_path = state.join(format!("{}.lock", qemu::control_socket_name(n)));
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| lock_path.display().to_string())?;
        if lock.try_lock().is_ok() {
            return Ok((sock, lock));
        }
    }
    anyhow::bail!(
        "{}: no control socket free (is the VM running? at most {} `hull ctl` at once)",
        state.display(),
        qemu::CONTROL_PORTS
    )
}

#[cfg(test)]
mod tests {
    /// QEMU's side (hull-qemu) and the guest's side (spec) name the port and
    /// the socket independently; they must agree.
    #[test]
    fn host_and_guest_agree_on_the_control_port() {
        assert_eq!(qemu::CONTROL_PORT_NAME, contract::control::VIRTIO_PORT_NAME);
        assert_eq!(qemu::CONTROL_SOCKET, contract::control::HOST_CONTROL_SOCKET);
    }
}
