use std::io::{Read, Write};
use std::process::{ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::config::VmConfig;
use crate::error::QemuError;
use crate::process::RunningVm;
use crate::qmp::Qmp;

/// What hull-init prints once every service has been started.
pub const READY_MARKER: &str = "hull: all services started";
/// A console line containing this fails a `--until-ready` run at once.
pub const KERNEL_PANIC_MARKER: &str = "Kernel panic";
/// How long the guest has to power off after `system_powerdown`.
pub const POWERDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// How [`run`] behaves.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `None`: interactive, the serial console on our terminal. `Some(t)`:
    /// for CI, wait up to `t` for [`READY_MARKER`], press the power button and
    /// expect QEMU to exit by itself within [`POWERDOWN_TIMEOUT`].
    pub until_ready: Option<Duration>,
}

/// Boots `cfg` and returns QEMU's exit code (interactive) or 0 once the guest
/// became ready and powered off cleanly (`until_ready`).
pub fn run(cfg: &VmConfig, opts: RunOptions) -> Result<i32, QemuError> {
    match opts.until_ready {
        None => {
            let cmd = cfg.command()?;
            let mut vm = RunningVm::spawn(cmd, |e| cfg.spawn_error(e))?;
            Ok(exit_code(vm.wait()?))
        }
        Some(timeout) => run_until_ready(cfg, timeout),
    }
}

fn exit_code(s: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

enum ConsoleEvent {
    Ready,
    Panic(String),
    Closed(Result<(), std::io::Error>),
}

fn run_until_ready(cfg: &VmConfig, timeout: Duration) -> Result<i32, QemuError> {
    let mut cmd = cfg.command()?;
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut vm = RunningVm::spawn(cmd, |e| cfg.spawn_error(e))?;
    let stdout = vm
        .take_stdout()
        .ok_or_else(|| QemuError::Console(std::io::ErrorKind::BrokenPipe.into()))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || copy_console(stdout, std::io::stdout(), tx));

    // Phase 1: wait for the marker.
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(ConsoleEvent::Ready) => break,
            Ok(ConsoleEvent::Panic(line)) => return Err(QemuError::KernelPanic { line }),
            Ok(ConsoleEvent::Closed(r)) => {
                r.map_err(QemuError::Console)?;
                let status = vm.wait()?;
                return Err(QemuError::ExitedEarly { status });
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = vm.wait()?;
                return Err(QemuError::ExitedEarly { status });
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(status) = vm.try_wait()? {
                    return Err(QemuError::ExitedEarly { status });
                }
                if Instant::now() >= deadline {
                    return Err(QemuError::NotReady { timeout });
                }
            }
        }
    }

    // Phase 2: press the power button and let the guest shut down by itself.
    Qmp::connect(&cfg.qmp_socket(), Duration::from_secs(10))?.powerdown()?;
    let deadline = Instant::now() + POWERDOWN_TIMEOUT;
    loop {
        if let Ok(ConsoleEvent::Panic(line)) = rx.recv_timeout(Duration::from_millis(100)) {
            return Err(QemuError::KernelPanic { line });
        }
        if let Some(status) = vm.try_wait()? {
            // Lines still buffered in the channel may hold a panic.
            for ev in rx.try_iter() {
                if let ConsoleEvent::Panic(line) = ev {
                    return Err(QemuError::KernelPanic { line });
                }
            }
            return if status.success() {
                Ok(0)
            } else {
                Err(QemuError::BadExit { status })
            };
        }
        if Instant::now() >= deadline {
            return Err(QemuError::NoPowerOff {
                timeout: POWERDOWN_TIMEOUT,
            });
        }
    }
}

/// Copies every byte to `out` as it arrives and reports marker lines.
fn copy_console(mut input: impl Read, out: impl Write, tx: mpsc::Sender<ConsoleEvent>) {
    let mut out = out;
    let mut buf = [0u8; 4096];
    let mut line: Vec<u8> = Vec::new();
    let result = loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        };
        // A closed stdout (e.g. `| head`) must not stop the VM logic.
        let _ = out.write_all(&buf[..n]).and_then(|_| out.flush());
        for &b in &buf[..n] {
            if b != b'\n' {
                line.push(b);
                continue;
            }
            let text = String::from_utf8_lossy(&line).into_owned();
            line.clear();
            if text.contains(super::READY_MARKER) {
                let _ = tx.send(ConsoleEvent::Ready);
            } else if text.contains(KERNEL_PANIC_MARKER) {
                let _ = tx.send(ConsoleEvent::Panic(text.trim_end().to_string()));
            }
        }
    };
    let _ = tx.send(ConsoleEvent::Closed(result));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_copy_reports_markers() {
        let input =
            b"boot\r\nhull: all services started\r\nKernel panic - not syncing: x\r\n".to_vec();
        let (tx, rx) = mpsc::channel();
        let mut out = Vec::new();
        copy_console(&input[..], &mut out, tx);
        assert_eq!(out, input);
        let evs: Vec<_> = rx.try_iter().collect();
        assert!(matches!(evs[0], ConsoleEvent::Ready));
        assert!(matches!(&evs[1], ConsoleEvent::Panic(l) if l == "Kernel panic - not syncing: x"));
        assert!(matches!(evs[2], ConsoleEvent::Closed(Ok(()))));
    }

    #[test]
    fn not_ready_message() {
        let e = QemuError::NotReady {
            timeout: Duration::from_secs(120),
        };
        assert_eq!(e.to_string(), "no \"all services started\" within 120s");
    }
}
