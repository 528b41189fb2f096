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
mod vm;

use std::cell::Cell;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

pub use qemu::{Arch, QemuError, VmConfig};
pub use vm::Vm;

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
