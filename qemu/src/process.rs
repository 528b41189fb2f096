use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::{getpid, getppid};

use crate::error::QemuError;

/// Makes the child receive SIGKILL when the spawning thread goes away, so that
/// a crashed or killed hull never leaves a QEMU behind.
pub(crate) fn die_with_parent(cmd: &mut Command) {
    let parent = getpid();
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe operations are allowed. It makes two raw syscalls
    // (prctl(PR_SET_PDEATHSIG) and getppid) through nix's thin wrappers, which
    // neither allocate nor take locks; the error path builds an io::Error from
    // an errno value, which does not allocate either.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // The parent may have died before prctl took effect; then the
            // signal will never come, so refuse to start.
            if getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc_esrch()));
            }
            Ok(())
        });
    }
}

fn libc_esrch() -> i32 {
    nix::errno::Errno::ESRCH as i32
}

/// A running QEMU. Dropping it kills QEMU (SIGKILL) and reaps it.
#[derive(Debug)]
pub struct RunningVm {
    child: Child,
    exited: Option<ExitStatus>,
}

impl RunningVm {
    /// Spawns `cmd` (normally from [`crate::VmConfig::command`], with stdio
    /// already chosen). `on_error` maps a spawn failure to a clear error.
    pub fn spawn(
        mut cmd: Command,
        on_error: impl FnOnce(std::io::Error) -> QemuError,
    ) -> Result<RunningVm, QemuError> {
        let child = cmd.spawn().map_err(on_error)?;
        Ok(RunningVm {
            child,
            exited: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// QEMU's stdout when it was piped (once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// The exit status if QEMU has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, QemuError> {
        if let Some(s) = self.exited {
            return Ok(Some(s));
        }
        let pid = self.pid();
        let s = self
            .child
            .try_wait()
            .map_err(|source| QemuError::Wait { pid, source })?;
        self.exited = s;
        Ok(s)
    }

    /// Waits for QEMU to exit by itself, at most `timeout`; `Ok(None)` when it
    /// is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, QemuError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(Some(s));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for QEMU to exit, however long it takes.
    pub fn wait(&mut self) -> Result<ExitStatus, QemuError> {
        if let Some(s) = self.exited {
            return Ok(s);
        }
        let pid = self.pid();
        let s = self
            .child
            .wait()
            .map_err(|source| QemuError::Wait { pid, source })?;
        self.exited = Some(s);
        Ok(s)
    }

    /// SIGKILL and reap (no-op once QEMU has exited).
    pub fn kill(&mut self) -> Result<ExitStatus, QemuError> {
        if let Some(s) = self.try_wait()? {
            return Ok(s);
        }
        // ESRCH/"already exited" races are fine: wait() reaps either way.
        let _ = self.child.kill();
        self.wait()
    }
}

impl Drop for RunningVm {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
