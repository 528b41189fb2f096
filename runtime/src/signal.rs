//! Signals by number, as Linux numbers them (1-64, the real-time ones
//! included: a `stopSignal` or `hullctl kill -s` may name `SIGRTMIN+3`).
//! nix's `Signal` knows the standard signals only, hence this type and a
//! raw `kill(2)`.

use std::fmt;

use nix::unistd::Pid;

/// A signal number Linux has, named like `SIGTERM` or `SIGRTMIN+2` for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalNumber(i32);

impl SignalNumber {
    pub const TERM: SignalNumber = SignalNumber(15);
    pub const KILL: SignalNumber = SignalNumber(9);

    /// `n` if Linux has such a signal.
    pub fn new(n: i32) -> Option<SignalNumber> {
        contract::signal::from_number(i64::from(n))
            .ok()
            .map(SignalNumber)
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

impl fmt::Display for SignalNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match contract::signal::name(self.0) {
            Some(name) => f.write_str(&name),
            None => write!(f, "signal {}", self.0),
        }
    }
}

/// `kill(pid, signal)`.
pub(crate) fn kill(pid: Pid, signal: SignalNumber) -> nix::Result<()> {
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    let rc = unsafe { nix::libc::kill(pid.as_raw(), signal.0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(nix::Error::last())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_linux_has_with_their_names() {
        assert_eq!(SignalNumber::new(15), Some(SignalNumber::TERM));
        assert_eq!(SignalNumber::TERM.to_string(), "SIGTERM");
        assert_eq!(SignalNumber::new(10).unwrap().to_string(), "SIGUSR1");
        assert_eq!(SignalNumber::new(36).unwrap().to_string(), "SIGRTMIN+2");
        assert_eq!(SignalNumber::new(0), None);
        assert_eq!(SignalNumber::new(65), None);
    }

    #[test]
    fn a_real_time_signal_reaches_a_process() {
        // Signal 0 is no signal: use a real-time one on a child that
        // blocks nothing, and see it die of it.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        kill(pid, SignalNumber::new(40).unwrap()).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(40));
    }
}
