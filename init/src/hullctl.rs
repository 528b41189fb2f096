//! `hullctl`: hull-init called by that name is the guest's control client
//! (the subcommands live in `hull-ctl`, shared with `hull ctl` on the host),
//! plus `notify`, a tiny `systemd-notify` for services whose readiness is
//! `notify` and that have no sd_notify of their own.

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;
use ctl::CtlCommand;

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

pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Ctl(c) => ctl::run(&cli.socket, c).map_err(|e| (e.to_string(), e.exit_code())),
        Cmd::Notify { ready, status } => notify(ready, status).map(|_| 0),
    };
    match result {
        Ok(code) => code,
        Err((msg, code)) => {
            let _ = writeln!(std::io::stderr(), "hullctl: {msg}");
            code
        }
    }
}

fn notify(ready: bool, status: Option<String>) -> Result<(), (String, i32)> {
    let path = std::env::var("NOTIFY_SOCKET").map_err(|_| {
        (
            "NOTIFY_SOCKET is not set (is this service's readiness `notify`?)".to_string(),
            2,
        )
    })?;
    let mut msg = String::new();
    if ready {
        msg.push_str("READY=1\n");
    }
    if let Some(s) = status {
        msg.push_str(&format!("STATUS={s}\n"));
    }
    if msg.is_empty() {
        return Err(("nothing to send: give --ready or --status".into(), 2));
    }
    let sock = std::os::unix::net::UnixDatagram::unbound()
        .map_err(|e| (format!("creating a socket: {e}"), 1))?;
    sock.send_to(msg.as_bytes(), &path)
        .map_err(|e| (format!("sending to {path}: {e}"), 1))?;
    Ok(())
}
