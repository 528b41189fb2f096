//! `hull-test-vm`: the VM test harness. It builds images with the `hull`
//! binary, boots them under QEMU (through `hull-qemu`, TCG on this machine),
//! and lets a test wait for console lines, press the power button and check
//! that the guest powers off.
//!
//! A VM test starts with [`boot`] (the standard header, a YAML body, one
//! arch: built and booted in one call) or, when it needs more (an example
//! file, a disk, a port, two boots), with a [`VmTest`].
//!
//! VM tests are opt-in: built without `HULL_VM_TESTS=1` they are ignored,
//! with the reason, by `#[cfg_attr(not(vm_tests), ignore = ...)]` (the
//! `vm_tests` cfg comes from this crate's build script). They run one at a
//! time ([`vm_lock`]; two TCG guests on two cores miss their deadlines):
//!
//! ```text
//! HULL_VM_TESTS=1 cargo test -p hull-test-vm -- --test-threads=1
//! ```
//!
//! The console of each VM is written to `target/test-vm-logs/<test>.log`; the
//! file is kept (and its tail printed) only when the test fails.

pub mod cpio;

use std::cell::Cell;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use qemu::{Arch, QemuError, VmConfig};
use qemu::{Qmp, RunningVm};

/// Lines of console shown when a test fails.
const TAIL_LINES: usize = 50;
/// How long an unfinished console line must stay unchanged to count as a
/// prompt in [`Vm::expect`].
const PROMPT_SETTLE: Duration = Duration::from_millis(300);

/// Everything a VM test can fail on.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(transparent)]
    Qemu(#[from] QemuError),

    #[error("creating {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("running {command}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{command}` failed ({status}):\n{stderr}")]
    Build {
        command: String,
        status: ExitStatus,
        stderr: String,
    },

    #[error("no console line containing {pattern:?} within {timeout:?}; last lines:\n{tail}")]
    Timeout {
        pattern: String,
        timeout: Duration,
        tail: String,
    },

    #[error("QEMU exited before a console line contained {pattern:?}; last lines:\n{tail}")]
    Exited { pattern: String, tail: String },

    #[error("QEMU still running {timeout:?} after it was expected to exit")]
    NoExit { timeout: Duration },
}

/// Serialises VM tests: within the test process (a mutex) and across
/// processes on this machine (an exclusive lock on `/tmp/hull-vm-tests.lock`),
/// because two TCG guests on two cores miss their deadlines. Hold the guard for
/// the whole test. A panic in an earlier test does not poison it.
pub fn vm_lock() -> VmLock {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("hull-vm-tests.lock"))
        .ok();
    // The lock is released when the file is closed (also if the process dies).
    let file = file.filter(|f| f.lock().is_ok());
    VmLock {
        _file: file,
        _guard: guard,
    }
}

/// Held for the duration of one VM test; see [`vm_lock`].
pub struct VmLock {
    _file: Option<File>,
    _guard: MutexGuard<'static, ()>,
}

/// The workspace root (the parent of this crate).
pub fn workspace_dir() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The workspace's target directory (`CARGO_TARGET_DIR` when set).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_dir().join(d)
            }
        }
        None => workspace_dir().join("target"),
    }
}

/// `hull ctl --vm STATE ARGS...` against a VM started by [`Vm`] (its state
/// directory is `vm.config().state_dir`).
pub fn hull_ctl(state: &Path, args: &[&str]) -> Output {
    Command::new(hull_bin())
        .arg("ctl")
        .arg("--vm")
        .arg(state)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running hull ctl")
}

/// [`hull_ctl`] that must succeed; its stdout.
pub fn hull_ctl_ok(state: &Path, args: &[&str]) -> String {
    let out = hull_ctl(state, args);
    assert!(
        out.status.success(),
        "hull ctl {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `hull` binary: `HULL_BIN` when set, otherwise `cargo build -p hull
/// --release` (once per test process) and `target/release/hull`. Panics with
/// cargo's exit status when the build fails (its output goes to stderr).
pub fn hull_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HULL_BIN") {
        return PathBuf::from(p);
    }
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let r = BIN.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(&cargo)
            .args(["build", "-p", "hull", "--release"])
            .current_dir(workspace_dir())
            .status()
            .map_err(|e| format!("running {}: {e}", Path::new(&cargo).display()))?;
        if !status.success() {
            return Err(format!("`cargo build -p hull --release` failed ({status})"));
        }
        Ok(target_dir().join("release").join("hull"))
    });
    match r {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// The `@pkg:` reference to `pkg/NAME` of this workspace, absolute.
pub fn pkg_dir(name: &str) -> String {
    let p = workspace_dir().join("pkg").join(name);
    let p = p.canonicalize().unwrap_or(p);
    format!("@pkg:{}", p.display())
}

/// Writes `yaml` to `workdir/test.yml`, runs `hull build -f kernel+initrd
/// --arch ARCH --dir workdir/out workdir/test.yml` and returns the prefix
/// `workdir/out/test` (for [`Vm::start`]). Hull's stderr is printed and
/// returned in the error when the build fails.
pub fn build_image(yaml: &str, arch: &str, workdir: &Path) -> Result<PathBuf, HarnessError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HarnessError::Io { path, source }
    };
    std::fs::create_dir_all(workdir).map_err(io(workdir))?;
    let yml = workdir.join("test.yml");
    std::fs::write(&yml, yaml).map_err(io(&yml))?;
    let out = workdir.join("out");
    let hull = hull_bin();
    let mut cmd = std::process::Command::new(&hull);
    cmd.args(["build", "-f", "kernel+initrd", "--arch", arch, "--dir"])
        .arg(&out)
        .arg(&yml);
    let command = format!("{cmd:?}");
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| HarnessError::Spawn {
            command: command.clone(),
            source,
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        eprintln!("{command} failed ({}):\n{stderr}", output.status);
        return Err(HarnessError::Build {
            command,
            status: output.status,
            stderr,
        });
    }
    Ok(out.join("test"))
}

/// The start of every VM test's YAML: this workspace's kernel and init
/// packages (`pkg/kernel`, `pkg/init`).
pub fn header() -> String {
    format!(
        "kernel:\n  image: \"{}\"\ninit:\n  - \"{}\"\n",
        pkg_dir("kernel"),
        pkg_dir("init")
    )
}

/// The `image:` of this workspace's busybox package, for the containers of a test.
pub fn busybox() -> String {
    pkg_dir("busybox")
}

/// What one VM test holds while it runs: the machine-wide VM lock and a
/// work directory (builds, disks, sockets), both released when it is
/// dropped. Its methods panic with the reason when a step fails.
pub struct VmTest {
    arch: Arch,
    builds: Cell<usize>,
    // Dropped in this order: the files, then the lock.
    work: tempfile::TempDir,
    _lock: VmLock,
}

impl VmTest {
    /// Takes the VM lock (waiting for any other VM test) and makes a work directory.
    pub fn new(arch: &str) -> VmTest {
        let arch = arch
            .parse()
            .unwrap_or_else(|e| panic!("arch {arch:?}: {e}"));
        let lock = vm_lock();
        let work = tempfile::Builder::new()
            .prefix("hull-test-vm-")
            .tempdir()
            .unwrap_or_else(|e| panic!("creating a work directory: {e}"));
        VmTest {
            arch,
            builds: Cell::new(0),
            work,
            _lock: lock,
        }
    }

    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The work directory.
    pub fn dir(&self) -> &Path {
        self.work.path()
    }

    /// `hull build -f kernel+initrd` of `yaml` (a whole file) for this
    /// test's arch; each build in a directory of its own. Returns the
    /// output prefix.
    pub fn build(&self, yaml: &str) -> PathBuf {
        let n = self.builds.get() + 1;
        self.builds.set(n);
        let dir = self.dir().join(format!("build{n}"));
        build_image(yaml, self.arch.as_str(), &dir).unwrap_or_else(|e| panic!("hull build: {e}"))
    }

    /// The configuration `hull run qemu` would boot the image at `prefix` with.
    pub fn config(&self, prefix: &Path) -> VmConfig {
        VmConfig::from_prefix(prefix, self.arch)
            .unwrap_or_else(|e| panic!("VM configuration of {}: {e}", prefix.display()))
    }

    /// Boots `cfg`; the console log is named after the running test.
    pub fn start(&self, cfg: VmConfig) -> Vm {
        Vm::start_config(cfg).unwrap_or_else(|e| panic!("booting: {e}"))
    }

    /// Boots `cfg` with the console logged as `name.log` (for a test that boots several times).
    pub fn start_named(&self, cfg: VmConfig, name: &str) -> Vm {
        Vm::start_named(cfg, name).unwrap_or_else(|e| panic!("booting: {e}"))
    }
}

/// A VM booted by [`boot`], with what a test needs around it.
pub struct Booted {
    pub vm: Vm,
    /// The VM's state directory, for [`hull_ctl`].
    pub state: PathBuf,
    /// The image's output prefix (`.../test`: `-kernel`, `-initrd.img`, `-cmdline`).
    pub prefix: PathBuf,
    // Declared after `vm`, so QEMU is gone before the lock is released.
    pub test: VmTest,
}

/// The prologue of a VM test in one call: takes the VM lock, builds
/// [`header`] + `body` for `arch` and boots it.
pub fn boot(arch: &str, body: &str) -> Booted {
    let test = VmTest::new(arch);
    let prefix = test.build(&format!("{}{body}", header()));
    let vm = test.start(test.config(&prefix));
    let state = vm.config().state_dir.clone();
    Booted {
        vm,
        state,
        prefix,
        test,
    }
}

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
