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

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::mount::{mount, MsFlags};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use spec::{RuntimeJson, RuntimeMount, RUNTIME_JSON};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("reading {path}: {source}")]
    ReadBundle {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    ParseRuntimeJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("creating directory {path}: {source}")]
    Mkdir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mounting {source_path} on {destination}: {errno}")]
    Mount {
        source_path: String,
        destination: String,
        errno: nix::Error,
    },
    #[error("creating container {id}: {source}")]
    Create {
        id: String,
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },
    #[error("starting container {id}: {source}")]
    Start {
        id: String,
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },
    #[error("container {id} has no pid after create")]
    NoPid { id: String },
    #[error("deleting container {id}: {source}")]
    Delete {
        id: String,
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },
    #[error("sending {signal} to container {id}: {errno}")]
    Signal {
        id: String,
        signal: Signal,
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
/// SIGTERM that asks it to stop.
#[derive(Clone)]
struct HullExecutor;

impl Executor for HullExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        // Errors here cannot be reported better than by the exec failing later.
        let _ =
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
        libcontainer::workload::default::get_executor().exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        libcontainer::workload::default::get_executor().validate(spec)
    }
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

    /// Creates and starts the container of `bundle` with the given stdio.
    /// A stale state directory of the same id (a previous run) is removed first.
    pub fn start(
        &self,
        id: &str,
        bundle: &Path,
        stdout: OwnedFd,
        stderr: OwnedFd,
    ) -> Result<Running, RuntimeError> {
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
        let stdin = fs::File::open("/dev/null").map_err(|source| RuntimeError::ReadBundle {
            path: "/dev/null".into(),
            source,
        })?;
        let mut container = ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_root_path(&self.state_root)
            .map_err(create)?
            .with_executor(HullExecutor)
            .with_stdin(OwnedFd::from(stdin))
            .with_stdout(stdout)
            .with_stderr(stderr)
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
}

impl Running {
    /// Sends `signal` to the container's init process.
    pub fn signal(&self, signal: Signal) -> Result<(), RuntimeError> {
        nix::sys::signal::kill(self.pid, signal).map_err(|errno| RuntimeError::Signal {
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
