//! The control client, shared by `hullctl` (the guest's `hull-init` called
//! by that name, talking to `/run/hull/control.sock`) and `hull ctl --vm
//! STATE_DIR` (the host, talking to the virtio-serial port through QEMU's
//! socket in the VM's state directory). Both speak the protocol of
//! [`contract::control`] over a Unix stream socket, so they share everything:
//! the subcommands, the client loop, and how answers are printed.
//!
//! Single-threaded (poll) so that it can live in the guest's static binary
//! next to PID 1's code without pulling in a runtime.
//!
//! One job per file: this one holds the subcommands, the errors and the
//! signal names (`contract::signal`, the guest's table); `client.rs` speaks
//! the protocol, `run.rs` runs a subcommand, `format.rs` prints tables, and
//! `exec.rs` carries an interactive `exec`.

mod client;
mod exec;
mod format;
mod run;

use std::path::PathBuf;
use std::time::Duration;

use contract::signal::{self, SignalError};
use report::BadInput;

pub use client::Client;
pub use format::{boot_table, ps_table};
pub use run::run;

/// How long a one-shot request may take before the client gives up.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// The subcommands of `hullctl` and `hull ctl`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum CtlCommand {
    /// Every service: state, pid, restarts, uptime, last exit, readiness.
    Ps {
        #[arg(long)]
        json: bool,
    },
    /// A service's OCI spec, runtime actions, cgroup and namespaces (JSON).
    Inspect { name: String },
    /// A container's output (the last 1000 lines are kept in memory).
    Logs {
        /// Keep printing new lines.
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines.
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
        /// Prefix each line with its time (seconds since boot).
        #[arg(short = 't', long)]
        timestamps: bool,
        name: String,
    },
    /// Runs a command inside a service's namespaces and cgroup.
    Exec {
        /// Give the command a pseudo-terminal.
        #[arg(short, long)]
        tty: bool,
        name: String,
        #[arg(last = true, required = true, value_name = "CMD")]
        cmd: Vec<String>,
    },
    /// Starts a stopped or failed service (resets its start limit).
    Start { name: String },
    /// Stops a service (stop signal, grace period, SIGKILL); it stays stopped.
    Stop { name: String },
    /// Stops a service and starts it again.
    Restart { name: String },
    /// Sends a signal to a service's main process.
    Kill {
        /// Name (TERM, SIGKILL, ...) or number.
        #[arg(short, long, default_value = "TERM")]
        signal: String,
        name: String,
    },
    /// The kernel's messages.
    Dmesg,
    /// Service state changes.
    Events {
        #[arg(short, long)]
        follow: bool,
        #[arg(long)]
        json: bool,
    },
    /// Each boot phase and container start with its duration.
    BootTime {
        #[arg(long)]
        json: bool,
    },
    /// Powers the machine off cleanly.
    Shutdown,
    /// Reboots the machine cleanly.
    Reboot,
}

/// One variant per failing step; the cause is the `#[source]`. Bad input on
/// the command line carries a [`BadInput`] marker (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("cannot reach hull-init at {path}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to hull-init")]
    Io(#[from] std::io::Error),
    #[error("hull-init closed the connection before answering")]
    Closed,
    #[error("no answer from hull-init within {0:?}")]
    Timeout(Duration),
    /// The request was refused; the message is hull-init's.
    #[error("{0}")]
    Refused(String),
    /// Bad input on the command line (exit code 2).
    #[error("{message}")]
    Usage {
        message: String,
        /// Empty: marks the error as bad input.
        #[source]
        input: BadInput,
    },
}

impl CtlError {
    /// 2 for bad input, 1 for everything else (as `report::exit_code`).
    pub fn exit_code(&self) -> i32 {
        report::exit_code(self).code()
    }

    fn usage(message: String) -> CtlError {
        CtlError::Usage {
            message,
            input: BadInput::marker(),
        }
    }
}

/// A signal given by name (`TERM`, `SIGTERM`, `term`, `SIGRTMIN+2`) or
/// number, in the guest's numbering ([`contract::signal`]).
pub fn parse_signal(s: &str) -> Result<i32, CtlError> {
    signal::parse(s).map_err(|e| match e {
        SignalError::Number(_) => CtlError::usage(e.to_string()),
        SignalError::Name(_) => CtlError::usage(format!("unknown signal {s:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("sigkill").unwrap(), 9);
        assert_eq!(parse_signal("10").unwrap(), 10);
        let e = parse_signal("FLY").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.to_string(), "unknown signal \"FLY\"");
    }

    #[test]
    fn signals_come_from_the_guests_table() {
        // Real-time signals, which the host's libc table would not name.
        assert_eq!(parse_signal("SIGRTMIN+2").unwrap(), 36);
        assert_eq!(parse_signal("64").unwrap(), 64);
        let e = parse_signal("65").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.to_string(), "65 is not a signal number (1-64)");
    }
}
