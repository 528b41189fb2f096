//! `hull ctl --vm STATE_DIR ...`: `hullctl` from the host, through the
//! virtio-serial port of a VM started by `hull run qemu` (QEMU listens on
//! `STATE_DIR/control.sock`). The subcommands and the client are `hull-ctl`'s,
//! the same as the guest's `hullctl`.

use std::path::PathBuf;

use crate::UsageError;

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
        return Err(UsageError(format!(
            "{}: no such VM state directory (give the --state of `hull run qemu`, default PREFIX-state)",
            args.vm.display()
        ))
        .into());
    }
    let sock = args.vm.join(spec::control::HOST_CONTROL_SOCKET);
    match ctl::run(&sock, args.cmd) {
        Ok(code) => Ok(code),
        Err(e @ ctl::CtlError::Usage(_)) => Err(UsageError(e.to_string()).into()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    /// QEMU's side (hull-qemu) and the guest's side (spec) name the port and
    /// the socket independently; they must agree.
    #[test]
    fn host_and_guest_agree_on_the_control_port() {
        assert_eq!(qemu::CONTROL_PORT_NAME, spec::control::VIRTIO_PORT_NAME);
        assert_eq!(qemu::CONTROL_SOCKET, spec::control::HOST_CONTROL_SOCKET);
    }
}
