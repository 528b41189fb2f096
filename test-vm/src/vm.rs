//! A booted VM: QEMU with its console read by a thread of the test
//! process, so a test can wait for lines, press the power button (QMP) and
//! wait for QEMU to exit.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use qemu::{Arch, QemuError, Qmp, RunningVm, VmConfig};

use crate::{target_dir, HarnessError};

/// Lines of console shown when a test fails.
const TAIL_LINES: usize = 50;
/// How long an unfinished console line must stay unchanged to count as a
/// prompt in [`Vm::expect`].
const PROMPT_SETTLE: Duration = Duration::from_millis(300);

/// The console as read so far.
#[derive(Default)]
struct Console {
    lines: Vec<String>,
    /// The current line, not yet ended by '\n'.
    partial: Vec<u8>,
    /// QEMU's stdout is closed.
    closed: bool,
}

impl Console {
    fn tail(&self, n: usize) -> String {
        let start = self.lines.len().saturating_sub(n);
        let mut s = self.lines[start..].join("\n");
        if !self.partial.is_empty() {
            s.push('\n');
            s.push_str(&String::from_utf8_lossy(&self.partial));
        }
        s
    }
}

type Shared = Arc<(Mutex<Console>, Condvar)>;

/// A booted VM. Dropping it kills QEMU; if the test is panicking the console
/// log is kept and its tail printed.
pub struct Vm {
    name: String,
    cfg: VmConfig,
    // Declared before `reader`, so QEMU is killed (closing the pipe) before
    // the reader thread is joined.
    qemu: RunningVm,
    qmp: Option<Qmp>,
    console: Shared,
    reader: Option<JoinHandle<()>>,
    /// Index of the first console line the next `expect` looks at.
    cursor: usize,
    log_path: PathBuf,
    started: Instant,
}

impl Vm {
    /// Boots the `hull build -f kernel+initrd` output at `prefix`.
    pub fn start(prefix: &Path, arch: &str) -> Result<Vm, HarnessError> {
        let arch: Arch = arch.parse().map_err(QemuError::from)?;
        Vm::start_config(VmConfig::from_prefix(prefix, arch)?)
    }

    /// Boots an explicit configuration. The log is named after the current
    /// test (the thread name libtest gives it).
    pub fn start_config(cfg: VmConfig) -> Result<Vm, HarnessError> {
        let name = std::thread::current()
            .name()
            .unwrap_or("vm")
            .replace("::", "__")
            .replace(
                |c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-',
                "_",
            );
        Vm::start_named(cfg, &name)
    }

    /// As [`Vm::start_config`], with the log named `name.log`.
    pub fn start_named(cfg: VmConfig, name: &str) -> Result<Vm, HarnessError> {
        let log_dir = target_dir().join("test-vm-logs");
        std::fs::create_dir_all(&log_dir).map_err(|source| HarnessError::Io {
            path: log_dir.clone(),
            source,
        })?;
        let log_path = log_dir.join(format!("{name}.log"));
        let log = File::create(&log_path).map_err(|source| HarnessError::Io {
            path: log_path.clone(),
            source,
        })?;
        let mut cmd = cfg.command()?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            // QEMU's own complaints (bad option, missing file) stay visible.
            .stderr(Stdio::inherit());
        let started = Instant::now();
        let mut qemu = RunningVm::spawn(cmd, |e| cfg.spawn_error(e))?;
        let stdout = qemu.take_stdout();
        let console: Shared = Arc::default();
        let reader = stdout.map(|out| {
            let console = console.clone();
            std::thread::spawn(move || read_console(out, log, console))
        });
        Ok(Vm {
            name: name.to_string(),
            cfg,
            qemu,
            qmp: None,
            console,
            reader,
            cursor: 0,
            log_path,
            started,
        })
    }

    /// The configuration the VM was started with.
    pub fn config(&self) -> &VmConfig {
        &self.cfg
    }

    /// Time since QEMU was spawned.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Where the console is logged.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Waits for a console line containing `pattern`, looking only after the
    /// line the previous `expect` matched, and returns that line (without
    /// the line ending). An unfinished line matches once it has stopped
    /// growing for 300 ms (a prompt such as `login: `).
    pub fn expect(&mut self, pattern: &str, timeout: Duration) -> Result<String, HarnessError> {
        let deadline = Instant::now() + timeout;
        let (lock, cond) = &*self.console;
        let mut c = lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut partial_seen: Option<(usize, Instant)> = None;
        loop {
            if let Some(i) = c.lines[self.cursor.min(c.lines.len())..]
                .iter()
                .position(|l| l.contains(pattern))
            {
                let i = self.cursor.min(c.lines.len()) + i;
                self.cursor = i + 1;
                return Ok(c.lines[i].clone());
            }
            // An unfinished line that matches is returned once no more bytes
            // came for PROMPT_SETTLE (a prompt), so a line still being
            // written is not returned cut short.
            let partial = String::from_utf8_lossy(&c.partial).into_owned();
            if self.cursor <= c.lines.len() && partial.contains(pattern) {
                match partial_seen {
                    Some((len, at)) if len == c.partial.len() && at.elapsed() >= PROMPT_SETTLE => {
                        // Skip this line once it is complete.
                        self.cursor = c.lines.len() + 1;
                        return Ok(partial);
                    }
                    Some((len, _)) if len == c.partial.len() => {}
                    _ => partial_seen = Some((c.partial.len(), Instant::now())),
                }
            } else {
                partial_seen = None;
            }
            if c.closed {
                return Err(HarnessError::Exited {
                    pattern: pattern.to_string(),
                    tail: c.tail(TAIL_LINES),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(HarnessError::Timeout {
                    pattern: pattern.to_string(),
                    timeout,
                    tail: c.tail(TAIL_LINES),
                });
            }
            let wait = if partial_seen.is_some() {
                (deadline - now).min(PROMPT_SETTLE)
            } else {
                deadline - now
            };
            c = cond
                .wait_timeout(c, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until some console line, before or after the last
    /// [`Vm::expect`], contains `pattern` (for output whose order against
    /// other lines is not fixed); panics after `timeout`.
    pub fn wait_for_line(&self, pattern: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.console().iter().any(|l| l.contains(pattern)) {
            assert!(
                Instant::now() < deadline,
                "no console line with {pattern:?} within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// All console output so far (complete lines).
    pub fn console(&self) -> Vec<String> {
        let (lock, _) = &*self.console;
        lock.lock().unwrap_or_else(|e| e.into_inner()).lines.clone()
    }

    /// The QMP connection, opened on first use.
    pub fn qmp(&mut self) -> Result<&mut Qmp, HarnessError> {
        if self.qmp.is_none() {
            self.qmp = Some(Qmp::connect(
                &self.cfg.qmp_socket(),
                Duration::from_secs(10),
            )?);
        }
        // `qmp` was set just above when it was None.
        self.qmp.as_mut().ok_or_else(|| {
            HarnessError::Qemu(QemuError::QmpProtocol {
                path: self.cfg.qmp_socket(),
                message: "no connection".into(),
            })
        })
    }

    /// Presses the power button (QMP `system_powerdown`).
    pub fn powerdown(&mut self) -> Result<(), HarnessError> {
        self.qmp()?.powerdown()?;
        Ok(())
    }

    /// Waits for QEMU to exit by itself (the guest powered off, or rebooted:
    /// QEMU runs with `-no-reboot`).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, HarnessError> {
        match self.qemu.wait_timeout(timeout)? {
            Some(s) => {
                self.join_reader();
                Ok(s)
            }
            None => Err(HarnessError::NoExit { timeout }),
        }
    }

    fn join_reader(&mut self) {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        self.join_reader();
        if std::thread::panicking() {
            let (lock, _) = &*self.console;
            let c = lock.lock().unwrap_or_else(|e| e.into_inner());
            eprintln!(
                "--- VM {} console log kept at {} (last {TAIL_LINES} lines) ---\n{}\n--- end of console ---",
                self.name,
                self.log_path.display(),
                c.tail(TAIL_LINES)
            );
        } else {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}

fn read_console(mut out: impl Read, mut log: File, console: Shared) {
    let (lock, cond) = &*console;
    let mut buf = [0u8; 4096];
    loop {
        let n = match out.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let _ = log.write_all(&buf[..n]);
        let mut c = lock.lock().unwrap_or_else(|e| e.into_inner());
        for &b in &buf[..n] {
            if b == b'\n' {
                let line = String::from_utf8_lossy(&c.partial)
                    .trim_end_matches('\r')
                    .to_string();
                c.lines.push(line);
                c.partial.clear();
            } else {
                c.partial.push(b);
            }
        }
        cond.notify_all();
    }
    let _ = log.flush();
    let mut c = lock.lock().unwrap_or_else(|e| e.into_inner());
    c.closed = true;
    cond.notify_all();
}
