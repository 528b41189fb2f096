//! `hullctl`: hull-init called by that name is the guest's control client
//! (the subcommands live in `hull-ctl`, shared with `hull ctl` on the host),
//! plus `notify`, a tiny `systemd-notify` for services whose readiness is
//! `notify` and that have no sd_notify of their own.

use std::path::PathBuf;

use clap::Parser;
use ctl::CtlCommand;
use report::BadInput;

const PROGRAM: &str = "hullctl";

#[derive(Parser)]
#[command(
    name = "hullctl",
    about = "Inspect and control the services of this hull machine"
)]
struct Cli {
    /// The control socket of hull-init.
    #[arg(long, default_value = contract::control::CONTROL_SOCKET)]
    socket: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    #[command(flatten)]
    Ctl(CtlCommand),
    /// Tells the supervisor this service is ready (sends READY=1 to $NOTIFY_SOCKET).
    Notify {
        #[arg(long)]
        ready: bool,
        /// Free text, sent as STATUS=...
        #[arg(long)]
        status: Option<String>,
    },
}

/// Why `hullctl notify` failed.
#[derive(Debug, thiserror::Error)]
enum NotifyError {
    #[error("{0}")]
    Usage(#[from] BadInput),
    #[error("creating a socket")]
    Socket(#[source] std::io::Error),
    #[error("sending to {path}")]
    Send {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Runs `hullctl`; the exit code (0, 1 failed, 2 bad input).
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Ctl(c) => match ctl::run(&cli.socket, c) {
            Ok(code) => code,
            Err(e) => report::fail(PROGRAM, &e),
        },
        Cmd::Notify { ready, status } => match notify(ready, status) {
            Ok(()) => 0,
            Err(e) => report::fail(PROGRAM, &e),
        },
    }
}

fn notify(ready: bool, status: Option<String>) -> Result<(), NotifyError> {
    let path = std::env::var("NOTIFY_SOCKET").map_err(|_| {
        BadInput::new("NOTIFY_SOCKET is not set (is this service's readiness `notify`?)")
    })?;
    let mut msg = String::new();
    if ready {
        msg.push_str("READY=1\n");
    }
    if let Some(s) = status {
        msg.push_str(&format!("STATUS={s}\n"));
    }
    if msg.is_empty() {
        return Err(BadInput::new("nothing to send: give --ready or --status").into());
    }
    let sock = std::os::unix::net::UnixDatagram::unbound().map_err(NotifyError::Socket)?;
    sock.send_to(msg.as_bytes(), &path)
        .map_err(|source| NotifyError::Send { path, source })?;
    Ok(())
}
