//! The signals PID 1 handles, read through a signalfd in the event loop,
//! and what each one means (busybox init's conventions, which LinuxKit users
//! script against).

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::{ShutdownKind, Supervisor};

/// The signals PID 1 reads.
const HANDLED: [Signal; 9] = [
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGPWR,
    Signal::SIGHUP,
    Signal::SIGIO,
    // A control client that goes away mid-write must not kill PID 1.
    Signal::SIGPIPE,
];

/// Blocks the handled signals and returns a signalfd reading them.
/// SIGCHLD stays at its default disposition (never SIG_IGN: that would make
/// the kernel reap for us and hide exit codes).
pub fn signalfd() -> nix::Result<SignalFd> {
    let mut mask = SigSet::empty();
    for s in HANDLED {
        mask.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

/// What a signal to PID 1 asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// A child exited.
    Reap,
    Shutdown(ShutdownKind),
    /// The host side of the control port connected or left.
    PortActivity,
    Nothing,
}

pub fn meaning(sig: Signal) -> Meaning {
    match sig {
        Signal::SIGCHLD => Meaning::Reap,
        Signal::SIGTERM | Signal::SIGINT => Meaning::Shutdown(ShutdownKind::Reboot),
        Signal::SIGUSR1 => Meaning::Shutdown(ShutdownKind::Halt),
        Signal::SIGUSR2 | Signal::SIGPWR => Meaning::Shutdown(ShutdownKind::Poweroff),
        Signal::SIGIO => Meaning::PortActivity,
        _ => Meaning::Nothing,
    }
}

impl Supervisor {
    pub(crate) fn handle_signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            match meaning(sig) {
                Meaning::Reap => self.reap(),
                Meaning::Shutdown(kind) => self.request_shutdown(kind),
                Meaning::PortActivity => self.clients.port_activity(),
                Meaning::Nothing => {}
            }
        }
        // A SIGCHLD coalesced with another signal still leaves children to reap.
        self.reap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busybox_init_conventions() {
        assert_eq!(
            meaning(Signal::SIGTERM),
            Meaning::Shutdown(ShutdownKind::Reboot)
        );
        // Ctrl-Alt-Del (the kernel sends SIGINT once it is disabled).
        assert_eq!(
            meaning(Signal::SIGINT),
            Meaning::Shutdown(ShutdownKind::Reboot)
        );
        assert_eq!(
            meaning(Signal::SIGUSR1),
            Meaning::Shutdown(ShutdownKind::Halt)
        );
        assert_eq!(
            meaning(Signal::SIGUSR2),
            Meaning::Shutdown(ShutdownKind::Poweroff)
        );
        assert_eq!(
            meaning(Signal::SIGPWR),
            Meaning::Shutdown(ShutdownKind::Poweroff)
        );
        assert_eq!(meaning(Signal::SIGCHLD), Meaning::Reap);
        assert_eq!(meaning(Signal::SIGHUP), Meaning::Nothing);
        assert_eq!(meaning(Signal::SIGPIPE), Meaning::Nothing);
    }
}
