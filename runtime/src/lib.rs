//! Guest library: turns a bundle (config.json + runtime.json + rootfs) into a
//! running container through youki's `libcontainer`, in-process.
//!
//! Neighbours: `hull-supervisor` decides *when* to start and stop containers
//! and owns the single reaper; this crate only creates, starts, signals and
//! deletes. It never calls `waitpid` on a container's process: libcontainer's
//! own synchronous wait on its intermediate process is the only other wait in
//! the guest, and it happens inside [`Runtime::start`].
//!
//! Fork safety: libcontainer forks and runs Rust code in the child, so every
//! call here must come from a single-threaded process (`hull-init` has no
//! threads).

// PID 1 links this: it must never panic (tests may: see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod signal;

pub use signal::SignalNumber;

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use contract::{RuntimeJson, RuntimeMount, RUNTIME_JSON};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::mount::{mount, MsFlags};
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("reading {path}")]
    ReadBundle {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}")]
    ParseRuntimeJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("creating directory {path}")]
    Mkdir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mounting {source_path} on {destination}")]
    Mount {
        source_path: String,
        destination: String,
        #[source]
        errno: nix::Error,
    },
    #[error("creating container {id}")]
    Create {
        id: String,
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },
    #[error("starting container {id}")]
    Start {
        id: String,
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },
    #[error("starting a process in container {id}")]
    Exec {
        id: String,
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },
    #[error("container {id} has no pid after create")]
    NoPid { id: String },
    #[error("deleting container {id}")]
    Delete {
        id: String,
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },
    #[error("sending {signal} to container {id}")]
    Signal {
        id: String,
        signal: SignalNumber,
        #[source]
        errno: nix::Error,
    },
}

/// Reads `runtime.json` from a bundle; a bundle without one gets the defaults.
pub fn load_runtime_json(bundle: &Path) -> Result<RuntimeJson, RuntimeError> {
    let path = bundle.join(RUNTIME_JSON);
    match fs::read(&path) {
        Ok(data) => serde_json::from_slice(&data)
            .map_err(|source| RuntimeError::ParseRuntimeJson { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RuntimeJson::default()),
        Err(source) => Err(RuntimeError::ReadBundle { path, source }),
    }
}

/// Runs the pre-start actions of `runtime.json` in the guest's own namespace.
/// They are idempotent, so a restarted service runs them again safely.
pub fn prepare(runtime: &RuntimeJson) -> Result<(), RuntimeError> {
    for dir in &runtime.mkdir {
        fs::create_dir_all(dir).map_err(|source| RuntimeError::Mkdir {
            path: dir.into(),
            source,
        })?;
    }
    for m in &runtime.mounts {
        runtime_mount(m)?;
    }
    Ok(())
}

fn runtime_mount(m: &RuntimeMount) -> Result<(), RuntimeError> {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in &m.options {
        match o.as_str() {
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => {}
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "shared" | "rshared" => {}
            other => data.push(other.to_string()),
        }
    }
    fs::create_dir_all(&m.destination).map_err(|source| RuntimeError::Mkdir {
        path: m.destination.clone().into(),
        source,
    })?;
    let kind = if m.kind.is_empty() {
        None
    } else {
        Some(m.kind.as_str())
    };
    let data = data.join(",");
    mount(
        Some(m.source.as_str()),
        m.destination.as_str(),
        kind,
        flags,
        (!data.is_empty()).then_some(data.as_str()),
    )
    .map_err(|errno| RuntimeError::Mount {
        source_path: m.source.clone(),
        destination: m.destination.clone(),
        errno,
    })
}

/// The workload executor: the default one, after undoing what PID 1 changed
/// in its own process and the container would otherwise inherit.
///
/// hull-init blocks the signals it reads through a signalfd; a blocked mask
/// survives fork and exec, so without this the service would never see the
/// SIGTERM that asks it to stop. For `exec -t` the pseudo-terminal on stdin
/// also becomes the controlling terminal (libcontainer has already called
/// `setsid`), so that job control and Ctrl-C work in a shell.
#[derive(Clone)]
struct HullExecutor {
    controlling_tty: bool,
}

impl Executor for HullExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        // Errors here cannot be reported better than by the exec failing later.
        let _ =
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
        if self.controlling_tty {
            // SAFETY: TIOCSCTTY takes an int argument and only changes the
            // calling process's session; fd 0 is ours (a pty slave or not a
            // tty, in which case the call fails harmlessly).
            unsafe { nix::libc::ioctl(0, nix::libc::TIOCSCTTY as _, 0) };
        }
        libcontainer::workload::default::get_executor().exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        libcontainer::workload::default::get_executor().validate(spec)
    }
}

/// A container's standard streams.
pub struct Stdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// The name hull-init answers to as the createContainer hook that puts a
/// bind of the guest's `/dev` in place. The build writes that hook into
/// the bundle's `config.json` (see `hull-bundle`'s `spec::dev_bind_hook`
/// for why a bind of `/dev` needs one).
pub use contract::DEV_BIND_HOOK;

/// The createContainer hook for a bind of `/dev`: `args` are SOURCE,
/// TARGET and the bind's options. Mounts SOURCE over TARGET (recursively
/// for `rbind`), read-only for `ro`, with the asked propagation. Returns the
/// exit code; a failure fails the container's creation, with this message
/// in its log.
pub fn dev_bind_hook(args: &[String]) -> i32 {
    let (Some(source), Some(target)) = (args.first(), args.get(1)) else {
        eprintln!("{DEV_BIND_HOOK}: usage: {DEV_BIND_HOOK} SOURCE TARGET [OPTION...]");
        return 2;
    };
    let opts = args.get(2..).unwrap_or_default();
    let has = |o: &str| opts.iter().any(|x| x == o);
    let mut flags = MsFlags::MS_BIND;
    if has("rbind") {
        flags |= MsFlags::MS_REC;
    }
    let fail = |what: &str, e: nix::Error| {
        eprintln!("{DEV_BIND_HOOK}: {what} {source} on {target}: {e}");
        1
    };
    if let Err(e) = mount(
        Some(source.as_str()),
        target.as_str(),
        None::<&str>,
        flags,
        None::<&str>,
    ) {
        return fail("bind-mounting", e);
    }
    if has("ro") {
        let ro = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        if let Err(e) = mount(
            None::<&str>,
            target.as_str(),
            None::<&str>,
            ro,
            None::<&str>,
        ) {
            return fail("making read-only", e);
        }
    }
    for (name, prop) in [
        ("shared", MsFlags::MS_SHARED),
        ("slave", MsFlags::MS_SLAVE),
        ("private", MsFlags::MS_PRIVATE),
    ] {
        let prop = if has(&format!("r{name}")) {
            prop | MsFlags::MS_REC
        } else if has(name) {
            prop
        } else {
            continue;
        };
        if let Err(e) = mount(
            None::<&str>,
            target.as_str(),
            None::<&str>,
            prop,
            None::<&str>,
        ) {
            return fail("setting propagation of", e);
        }
    }
    0
}

/// Kills every process of a cgroup (`cgroup.kill`, Linux 5.14+), so that
/// nothing a service forked survives its stop. `path` is relative to
/// /sys/fs/cgroup (the spec's `cgroupsPath`).
pub fn kill_cgroup(path: &str) -> bool {
    let file = Path::new("/sys/fs/cgroup")
        .join(path.trim_start_matches('/'))
        .join("cgroup.kill");
    fs::write(file, b"1").is_ok()
}

/// The pids in a cgroup (relative to /sys/fs/cgroup), recursively.
pub fn cgroup_pids(path: &str) -> Vec<i32> {
    fn walk(dir: &Path, out: &mut Vec<i32>) {
        if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/')),
        &mut out,
    );
    out
}

/// Where libcontainer keeps container state (must be writable: a tmpfs).
pub struct Runtime {
    state_root: PathBuf,
}

/// A created and started container.
pub struct Running {
    pub id: String,
    pub pid: Pid,
    container: Container,
}

impl Runtime {
    pub fn new(state_root: impl Into<PathBuf>) -> Result<Self, RuntimeError> {
        let state_root = state_root.into();
        fs::create_dir_all(&state_root).map_err(|source| RuntimeError::Mkdir {
            path: state_root.clone(),
            source,
        })?;
        Ok(Runtime { state_root })
    }

    /// Creates and starts the container of `bundle`, as written, with the
    /// given stdio. A stale state directory of the same id (a previous run)
    /// is removed first.
    pub fn start(&self, id: &str, bundle: &Path, stdio: Stdio) -> Result<Running, RuntimeError> {
        let stale = self.state_root.join(id);
        if stale.exists() {
            if let Ok(mut old) = Container::load(stale.clone()) {
                let _ = old.delete(true);
            }
            let _ = fs::remove_dir_all(&stale);
        }
        let create = |source| RuntimeError::Create {
            id: id.to_string(),
            source: Box::new(source),
        };
        let mut container = ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_root_path(&self.state_root)
            .map_err(create)?
            .with_executor(HullExecutor {
                controlling_tty: false,
            })
            .with_stdin(stdio.stdin)
            .with_stdout(stdio.stdout)
            .with_stderr(stdio.stderr)
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(create)?;
        let pid = container
            .pid()
            .ok_or_else(|| RuntimeError::NoPid { id: id.to_string() })?;
        container.start().map_err(|source| RuntimeError::Start {
            id: id.to_string(),
            source: Box::new(source),
        })?;
        Ok(Running {
            id: id.to_string(),
            pid,
            container,
        })
    }

    /// Starts `args` inside the running container `id` (its namespaces and
    /// cgroup, its spec's user and environment). The process is a child of
    /// the caller, reaped by the caller's reaper. With `tty`, stdin is a pty
    /// slave that becomes the controlling terminal.
    pub fn exec(
        &self,
        id: &str,
        args: Vec<String>,
        stdio: Stdio,
        tty: bool,
    ) -> Result<Pid, RuntimeError> {
        let err = |source| RuntimeError::Exec {
            id: id.to_string(),
            source: Box::new(source),
        };
        ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_root_path(&self.state_root)
            .map_err(err)?
            .with_executor(HullExecutor {
                controlling_tty: tty,
            })
            .with_stdin(stdio.stdin)
            .with_stdout(stdio.stdout)
            .with_stderr(stdio.stderr)
            .as_tenant()
            .with_container_args(args)
            .with_detach(true)
            .build()
            .map_err(err)
    }
}

impl Running {
    /// Sends `signal` to the container's init process.
    pub fn signal(&self, signal: SignalNumber) -> Result<(), RuntimeError> {
        signal::kill(self.pid, signal).map_err(|errno| RuntimeError::Signal {
            id: self.id.clone(),
            signal,
            errno,
        })
    }

    /// Removes the container's state and cgroup once its process has been reaped.
    /// Any process left in its cgroup is killed.
    pub fn delete(mut self) -> Result<(), RuntimeError> {
        let _ = self.container.refresh_status();
        self.container
            .delete(true)
            .map_err(|source| RuntimeError::Delete {
                id: self.id.clone(),
                source: Box::new(source),
            })
    }
}
