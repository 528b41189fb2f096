//! Guest library: the service table and the event loop of PID 1.
//!
//! `hull-init` hands it the resolved image (`/etc/hull/image.json`) once the
//! root is mounted; it runs the onboot containers one after another, starts
//! the services in dependency order (a service waits until those it
//! `depends` on are ready), supervises them (restart with growing delays, a
//! start limit), keeps their output (console, `/var/log`, an in-memory ring),
//! answers the control API (`hullctl`, `hull ctl`) and, on a shutdown
//! request, stops everything in reverse dependency order before returning
//! what the kernel should be asked to do.
//!
//! Two rules shape this crate (DESIGN.md, "Known hazards"):
//! - **One reaper.** [`Supervisor::reap`] is the only `waitpid` of the guest
//!   outside libcontainer's own synchronous waits; each status goes to its
//!   owner by pid (a service, an onboot container, an `exec` process), and
//!   orphans re-parented to PID 1 are simply collected.
//! - **No threads.** Everything runs on one thread around `poll(2)`, the
//!   control server included, so libcontainer's forks are safe.

mod console;
mod control;
mod kmsg;
mod logs;
mod power_button;
mod readiness;
mod service;

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use contract::control::{
    BootPhase, Event, ExitStatus, Inspect, LogLine, Op, Reply, Request, Response, ServiceState,
    ServiceStatus, CONTROL_SOCKET, NOTIFY_SOCKET_IN_CONTAINER, PROTOCOL_VERSION,
};
use contract::{ContainerRef, ImageJson, ReadinessCheck, RestartPolicy, RuntimeJson, READY_MARKER};
use control::{Conn, Follow, Incoming, Io};
use logs::{LogFile, LogStream, ReadOutcome, Ring};
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use runtime::{Additions, Runtime, Stdio};
use service::{Decision, Service};

pub use console::say as console_say;

/// What PID 1 asks the kernel for once everything has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownKind {
    Poweroff,
    Reboot,
    Halt,
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("setting up signal handling: {0}")]
    Signals(#[source] nix::Error),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    #[error("creating the output pipe of {name}: {errno}")]
    Pipe { name: String, errno: nix::Error },
    #[error("creating the notify socket of {name}: {source}")]
    Notify {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

pub struct Options {
    /// Copy container output to the console (`hull.console=off` turns it off).
    pub console_log: bool,
    /// Where libcontainer keeps its state.
    pub state_root: PathBuf,
    /// The boot phases before the supervisor (kernel, stage 1, ...), for `boot-time`.
    pub boot_phases: Vec<BootPhase>,
}

/// A shutdown never takes longer than this, whatever the grace periods say.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);
/// How long to keep looking for a power button and the control port after boot.
const DEVICE_SCAN: Duration = Duration::from_secs(20);
/// How often file and TCP readiness checks are tried.
const READINESS_POLL: Duration = Duration::from_millis(100);
/// How often an idle control port (no host connected) is looked at, in case
/// its SIGIO was missed.
const PORT_RECHECK: Duration = Duration::from_secs(2);
/// State changes kept for `hullctl events`.
const EVENTS_KEPT: usize = 1000;
/// Lines shown in a failed service's status.
const LAST_LINES: usize = 5;

/// A process started by `hullctl exec`.
struct ExecSession {
    conn: u64,
    id: u64,
    pid: Pid,
    /// Its output (a pty master, or the read end of a pipe).
    out: Option<OwnedFd>,
    /// Its input (the pty master again, or the write end of a pipe).
    input: Option<OwnedFd>,
    exit: Option<ExitStatus>,
}

pub struct Supervisor {
    runtime: Runtime,
    signals: SignalFd,
    streams: Vec<LogStream>,
    rings: BTreeMap<String, Ring>,
    files: BTreeMap<String, LogFile>,
    console_names: BTreeMap<String, bool>,
    buttons: Vec<(String, File)>,
    scan_until: Instant,
    services: Vec<Service>,
    /// The onboot/onshutdown container being waited for, and its exit once reaped.
    oneshot: Option<(Pid, Option<ExitStatus>)>,
    listener: Option<UnixListener>,
    /// The control ports opened so far (by name).
    ports: Vec<String>,
    port_recheck: Instant,
    conns: Vec<Conn>,
    next_token: u64,
    execs: Vec<ExecSession>,
    events: VecDeque<Event>,
    boot: Vec<BootPhase>,
    announced: bool,
    console_log: bool,
    shutdown: Option<ShutdownKind>,
    /// Services are being stopped for good: no restarts, no new starts.
    stopping_all: bool,
}

/// Prints one line per cause, the way every hull tool reports errors.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}

macro_rules! say {
    ($($t:tt)*) => { console::say(&format!($($t)*)) };
}

/// Seconds since the kernel started (CLOCK_BOOTTIME), for boot timing.
pub fn uptime() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
        .unwrap_or(0.0)
}

fn exit_of(status: WaitStatus) -> Option<(Pid, ExitStatus)> {
    match status {
        WaitStatus::Exited(pid, code) => Some((pid, ExitStatus::Code(code))),
        WaitStatus::Signaled(pid, sig, _) => Some((pid, ExitStatus::Signal(sig as i32))),
        _ => None,
    }
}

/// `linux.cgroupsPath` of a bundle's config.json.
fn cgroup_of(bundle: &Path) -> String {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok())
        .and_then(|v| v["linux"]["cgroupsPath"].as_str().map(String::from))
        .unwrap_or_default()
}

fn set_nonblocking(fd: &OwnedFd) -> nix::Result<()> {
    let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
    nix::fcntl::fcntl(
        fd.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )?;
    Ok(())
}

/// Where a pollable fd came from.
#[derive(Clone, Copy)]
enum Src {
    Signals,
    Button(usize),
    Stream(usize),
    Listener,
    Conn(usize),
    Notify(usize),
    Exec(usize),
}

impl Supervisor {
    /// Blocks the signals PID 1 handles and reads them through a signalfd.
    /// SIGCHLD stays at its default disposition (never SIG_IGN: that would
    /// make the kernel reap for us and hide exit codes).
    pub fn new(opts: Options) -> Result<Self, SupervisorError> {
        let mut mask = SigSet::empty();
        for s in [
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
        ] {
            mask.add(s);
        }
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
            .map_err(SupervisorError::Signals)?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(SupervisorError::Signals)?;
        console::make_nonblocking();
        Ok(Supervisor {
            runtime: Runtime::new(opts.state_root)?,
            signals,
            streams: Vec::new(),
            rings: BTreeMap::new(),
            files: BTreeMap::new(),
            console_names: BTreeMap::new(),
            buttons: Vec::new(),
            scan_until: Instant::now() + DEVICE_SCAN,
            services: Vec::new(),
            oneshot: None,
            listener: None,
            ports: Vec::new(),
            port_recheck: Instant::now(),
            conns: Vec::new(),
            next_token: 0,
            execs: Vec::new(),
            events: VecDeque::new(),
            boot: opts.boot_phases,
            announced: false,
            console_log: opts.console_log,
            shutdown: None,
            stopping_all: false,
        })
    }

    /// Runs the whole life of the image and returns what to ask the kernel for.
    pub fn run(mut self, image: &ImageJson) -> ShutdownKind {
        match control::listen(CONTROL_SOCKET) {
            Ok(l) => self.listener = Some(l),
            Err(e) => say!("control socket {CONTROL_SOCKET}: {e}; hullctl will not work"),
        }
        self.scan_devices();
        for c in &image.onboot {
            if self.shutdown.is_some() {
                break;
            }
            let t0 = uptime();
            let result = self.run_oneshot(c, None);
            self.boot.push(BootPhase {
                name: format!("onboot {}", c.name),
                start: t0,
                duration: uptime() - t0,
            });
            match result {
                Ok(ExitStatus::Code(0)) => say!("onboot {} done", c.name),
                Ok(exit) => {
                    let required = runtime::load_runtime_json(Path::new(&c.bundle))
                        .map(|r| r.required)
                        .unwrap_or(false);
                    if required {
                        say!(
                            "onboot {} failed with {exit}; it is required, powering off",
                            c.name
                        );
                        self.shutdown = Some(ShutdownKind::Poweroff);
                    } else {
                        say!("onboot {} failed with {exit}; boot continues", c.name);
                    }
                }
                Err(e) => say!(
                    "onboot {} could not run: {}; boot continues",
                    c.name,
                    error_chain(&e)
                ),
            }
        }
        if self.shutdown.is_none() {
            for c in &image.services {
                self.add_service(c);
            }
            self.start_eligible();
        }
        while self.shutdown.is_none() {
            let timeout = self.next_timer();
            self.pump(timeout);
            self.tick();
        }
        let kind = self.shutdown.unwrap_or(ShutdownKind::Poweroff);
        self.stop_everything(image);
        kind
    }

    fn add_service(&mut self, c: &ContainerRef) {
        let bundle = PathBuf::from(&c.bundle);
        let (rt, reason) = match runtime::load_runtime_json(&bundle) {
            Ok(rt) => (rt, String::new()),
            Err(e) => (
                RuntimeJson {
                    restart: RestartPolicy::Never,
                    ..RuntimeJson::default()
                },
                error_chain(&e),
            ),
        };
        let cgroup = cgroup_of(&bundle);
        self.console_names
            .insert(c.name.clone(), rt.console_log && self.console_log);
        let mut s = Service::new(c.name.clone(), bundle, rt, cgroup);
        if !reason.is_empty() {
            say!("service {} cannot start: {reason}", c.name);
            s.state = ServiceState::Failed;
            s.reason = reason;
            s.wanted = false;
        }
        self.services.push(s);
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.services.iter().position(|s| s.name == name)
    }

    /// Records a state change: the service's state, an event, the followers.
    fn set_state(&mut self, idx: usize, state: ServiceState, detail: String) {
        self.services[idx].state = state;
        let ev = Event {
            time: uptime(),
            name: self.services[idx].name.clone(),
            state,
            detail,
        };
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(ev.clone());
        for c in &mut self.conns {
            let ids: Vec<u64> = c
                .follows
                .iter()
                .filter_map(|f| match f {
                    Follow::Events { id } => Some(*id),
                    _ => None,
                })
                .collect();
            for id in ids {
                c.send(&Response {
                    id,
                    reply: Reply::Event(ev.clone()),
                });
            }
        }
    }

    /// Starts every waiting service whose dependencies are ready.
    fn start_eligible(&mut self) {
        if self.stopping_all {
            return;
        }
        for idx in 0..self.services.len() {
            let s = &self.services[idx];
            if s.state != ServiceState::Waiting || !s.wanted {
                continue;
            }
            let mut blocked = false;
            let mut unknown = None;
            for d in &s.runtime.depends {
                match self.find(d) {
                    Some(j) if self.services[j].ready => {}
                    Some(_) => blocked = true,
                    None => unknown = Some(d.clone()),
                }
            }
            if let Some(d) = unknown {
                let name = s.name.clone();
                say!("service {name} depends on {d}, which is not a service; not starting it");
                self.services[idx].reason = format!("depends on unknown service {d}");
                self.services[idx].wanted = false;
                self.set_state(idx, ServiceState::Failed, format!("unknown dependency {d}"));
                continue;
            }
            if !blocked {
                self.start_service(idx);
            }
        }
        self.maybe_announce();
    }

    /// Prints the ready marker once no service is left to be started (each
    /// was started, failed, or waits for one that failed).
    fn maybe_announce(&mut self) {
        if self.announced {
            return;
        }
        let settled = |s: &Service| {
            s.started_once
                || s.state == ServiceState::Failed
                || s.runtime.depends.iter().any(|d| {
                    self.find(d)
                        .is_some_and(|j| self.services[j].state == ServiceState::Failed)
                })
        };
        if self.services.iter().all(settled) {
            self.announced = true;
            let now = uptime();
            self.boot.push(BootPhase {
                name: "all services started".into(),
                start: now,
                duration: 0.0,
            });
            // The marker is a contract with `hull run qemu --until-ready` and the VM tests.
            console::say(&format!(
                "{} ({} services) at {now:.3}s since kernel start",
                READY_MARKER.trim_start_matches("hull: "),
                self.services.len(),
            ));
        }
    }

    fn start_service(&mut self, idx: usize) {
        self.set_state(idx, ServiceState::Starting, String::new());
        let t0 = uptime();
        let (name, bundle, rt) = {
            let s = &self.services[idx];
            (s.name.clone(), s.bundle.clone(), s.runtime.clone())
        };
        let mut add = Additions::default();
        let mut notify_err = None;
        if matches!(
            rt.readiness.as_ref().map(|r| &r.check),
            Some(ReadinessCheck::Notify)
        ) {
            match readiness::notify_socket(&name) {
                Ok(sock) => {
                    self.services[idx].notify = Some(sock);
                    add.env
                        .push(format!("NOTIFY_SOCKET={NOTIFY_SOCKET_IN_CONTAINER}"));
                    let inside = Path::new(NOTIFY_SOCKET_IN_CONTAINER)
                        .parent()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    add.binds.push((readiness::notify_dir(&name), inside));
                }
                Err(source) => {
                    notify_err = Some(SupervisorError::Notify {
                        name: name.clone(),
                        source,
                    })
                }
            }
        }
        let result = match notify_err {
            Some(e) => Err(e),
            None => runtime::prepare(&rt)
                .map_err(SupervisorError::from)
                .and_then(|_| self.start_container(&name, &name, &bundle, &add)),
        };
        let restarts = self.services[idx].restarts;
        self.boot.push(BootPhase {
            name: if restarts == 0 && !self.services[idx].started_once {
                format!("service {name}")
            } else {
                format!("service {name} (restart {restarts})")
            },
            start: t0,
            duration: uptime() - t0,
        });
        let s = &mut self.services[idx];
        s.next_start = None;
        s.current_delay = None;
        s.started_at = Instant::now();
        s.started_once = true;
        s.ready = false;
        match result {
            Ok(running) => {
                let pid = running.pid;
                s.running = Some(running);
                s.ready_deadline = s
                    .runtime
                    .readiness
                    .as_ref()
                    .map(|r| Instant::now() + Duration::from_millis(r.timeout_ms));
                say!("service {name} started (pid {pid})");
                self.set_state(idx, ServiceState::Running, format!("pid {pid}"));
                if self.services[idx].runtime.readiness.is_none() {
                    self.mark_ready(idx);
                }
            }
            Err(e) => {
                let msg = error_chain(&e);
                say!("service {name} failed to start: {msg}");
                self.services[idx].reason = msg;
                self.after_service_exit(idx, None);
            }
        }
    }

    fn mark_ready(&mut self, idx: usize) {
        let s = &mut self.services[idx];
        if s.ready || s.running.is_none() {
            return;
        }
        s.ready = true;
        s.ready_deadline = None;
        let how = s.readiness_name();
        if s.runtime.readiness.is_some() {
            say!("service {} is ready ({how})", s.name);
        }
        self.set_state(idx, ServiceState::Ready, how);
        self.start_eligible();
    }

    /// Creates the output pipe and starts the container with it.
    fn start_container(
        &mut self,
        id: &str,
        name: &str,
        bundle: &Path,
        add: &Additions,
    ) -> Result<runtime::Running, SupervisorError> {
        let pipe_err = |errno| SupervisorError::Pipe {
            name: name.to_string(),
            errno,
        };
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(pipe_err)?;
        set_nonblocking(&read).map_err(pipe_err)?;
        let write2: OwnedFd = write
            .try_clone()
            .map_err(|e| pipe_err(nix::Error::from_raw(e.raw_os_error().unwrap_or(0))))?;
        let stdin = File::open("/dev/null")
            .map(OwnedFd::from)
            .map_err(|e| pipe_err(nix::Error::from_raw(e.raw_os_error().unwrap_or(0))))?;
        self.streams.push(LogStream::new(name, read));
        self.files
            .entry(name.to_string())
            .or_insert_with(|| LogFile::open(name));
        // Our copies of the write end are owned by the builder and closed when
        // it returns, so the pipe reaches EOF when the container exits.
        Ok(self.runtime.start(
            id,
            bundle,
            Stdio {
                stdin,
                stdout: write,
                stderr: write2,
            },
            add,
        )?)
    }

    /// Runs one onboot/onshutdown container to completion.
    fn run_oneshot(
        &mut self,
        c: &ContainerRef,
        deadline: Option<Instant>,
    ) -> Result<ExitStatus, SupervisorError> {
        let bundle = PathBuf::from(&c.bundle);
        let rt = runtime::load_runtime_json(&bundle)?;
        runtime::prepare(&rt)?;
        self.console_names
            .insert(c.name.clone(), rt.console_log && self.console_log);
        let id = format!("oneshot-{}", c.name);
        let started = Instant::now();
        let running = self.start_container(&id, &c.name, &bundle, &Additions::default())?;
        self.oneshot = Some((running.pid, None));
        let mut killed = false;
        let exit = loop {
            if let Some((_, Some(exit))) = self.oneshot {
                break exit;
            }
            if !killed && deadline.is_some_and(|d| Instant::now() >= d) {
                say!("{} did not finish in time; killing it", c.name);
                let _ = running.signal(Signal::SIGKILL);
                killed = true;
            }
            self.pump(Duration::from_millis(500));
        };
        self.oneshot = None;
        self.drain_streams();
        say!(
            "{} exited with {exit} after {:.3}s",
            c.name,
            started.elapsed().as_secs_f64()
        );
        if let Err(e) = running.delete() {
            say!("cleaning up {}: {}", c.name, error_chain(&e));
        }
        Ok(exit)
    }

    /// Waits up to `timeout` for something to happen and handles it.
    fn pump(&mut self, timeout: Duration) {
        let now = Instant::now();
        let (srcs, ready): (Vec<Src>, Vec<PollFlags>) = {
            let mut fds = Vec::new();
            let mut srcs = Vec::new();
            fds.push(PollFd::new(self.signals.as_fd(), PollFlags::POLLIN));
            srcs.push(Src::Signals);
            for (i, (_, b)) in self.buttons.iter().enumerate() {
                fds.push(PollFd::new(b.as_fd(), PollFlags::POLLIN));
                srcs.push(Src::Button(i));
            }
            for (i, l) in self.streams.iter().enumerate() {
                fds.push(PollFd::new(l.fd(), PollFlags::POLLIN));
                srcs.push(Src::Stream(i));
            }
            if let Some(l) = &self.listener {
                fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
                srcs.push(Src::Listener);
            }
            for (i, c) in self.conns.iter().enumerate() {
                if c.idle && now < self.port_recheck {
                    continue;
                }
                let mut ev = PollFlags::POLLIN;
                if c.wants_write() {
                    ev |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(c.io.fd(), ev));
                srcs.push(Src::Conn(i));
            }
            for (i, s) in self.services.iter().enumerate() {
                if let Some(n) = &s.notify {
                    fds.push(PollFd::new(n.as_fd(), PollFlags::POLLIN));
                    srcs.push(Src::Notify(i));
                }
            }
            for (i, e) in self.execs.iter().enumerate() {
                if let Some(o) = &e.out {
                    fds.push(PollFd::new(o.as_fd(), PollFlags::POLLIN));
                    srcs.push(Src::Exec(i));
                }
            }
            let ms = timeout.as_millis().min(60_000) as u16;
            if nix::poll::poll(&mut fds, PollTimeout::from(ms)).is_err() {
                return;
            }
            let ready = fds
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect();
            (srcs, ready)
        };
        let mut dead_streams = Vec::new();
        let mut dead_execs = Vec::new();
        for (src, ev) in srcs.into_iter().zip(ready) {
            if ev.is_empty() {
                continue;
            }
            match src {
                Src::Signals => self.handle_signals(),
                Src::Button(i) => {
                    if power_button::pressed(&mut self.buttons[i].1) {
                        say!("power button pressed");
                        self.request_shutdown(ShutdownKind::Poweroff);
                    }
                }
                Src::Stream(i) => {
                    let mut lines = Vec::new();
                    let outcome = self.streams[i].read_available(&mut lines);
                    let owner = self.streams[i].owner.clone();
                    self.emit_lines(&owner, lines);
                    if let ReadOutcome::Eof = outcome {
                        dead_streams.push(i);
                    }
                }
                Src::Listener => {
                    if let Some(l) = &self.listener {
                        control::accept_all(l, &mut self.next_token, &mut self.conns);
                    }
                }
                Src::Conn(i) => self.handle_conn(i, ev),
                Src::Notify(i) => {
                    let ready = self.services[i]
                        .notify
                        .as_ref()
                        .is_some_and(readiness::notified_ready);
                    if ready {
                        self.mark_ready(i);
                    }
                }
                Src::Exec(i) => {
                    if !self.pump_exec(i) {
                        dead_execs.push(i);
                    }
                }
            }
        }
        for i in dead_streams.into_iter().rev() {
            self.streams.remove(i);
        }
        for i in dead_execs.into_iter().rev() {
            self.execs[i].out = None;
        }
        self.finish_execs();
        self.conns.retain(|c| !c.closed);
        if Instant::now() < self.scan_until {
            self.scan_devices();
        }
    }

    /// Sends lines of `owner` to the console, its log file, its ring and
    /// the clients following it.
    fn emit_lines(&mut self, owner: &str, lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        let console = self.console_names.get(owner).copied().unwrap_or(true) && self.console_log;
        let now = uptime();
        let followers: Vec<(usize, u64)> = self
            .conns
            .iter()
            .enumerate()
            .flat_map(|(i, c)| {
                c.follows.iter().filter_map(move |f| match f {
                    Follow::Logs { id, name } if name == owner => Some((i, *id)),
                    _ => None,
                })
            })
            .collect();
        let file = self
            .files
            .entry(owner.to_string())
            .or_insert_with(|| LogFile::open(owner));
        file.write_lines(&lines);
        let ring = self.rings.entry(owner.to_string()).or_default();
        for line in lines {
            if console {
                console::container_line(owner, &line);
            }
            for &(i, id) in &followers {
                self.conns[i].send(&Response {
                    id,
                    reply: Reply::Log(LogLine {
                        name: owner.to_string(),
                        time: now,
                        line: line.clone(),
                    }),
                });
            }
            ring.push(now, line);
        }
    }

    fn drain_streams(&mut self) {
        let mut i = 0;
        while i < self.streams.len() {
            let mut lines = Vec::new();
            let outcome = self.streams[i].read_available(&mut lines);
            let owner = self.streams[i].owner.clone();
            self.emit_lines(&owner, lines);
            if let ReadOutcome::Eof = outcome {
                self.streams.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Power buttons and the control port appear asynchronously after their
    /// modules load, so they are looked for during the first seconds.
    fn scan_devices(&mut self) {
        if self.buttons.is_empty() {
            let known: Vec<String> = self.buttons.iter().map(|(n, _)| n.clone()).collect();
            self.buttons
                .extend(power_button::open_power_buttons(&known));
        }
        for f in control::open_ports(&mut self.ports) {
            self.next_token += 1;
            self.conns.push(Conn::new(self.next_token, Io::Port(f)));
        }
    }

    fn request_shutdown(&mut self, kind: ShutdownKind) {
        if self.shutdown.is_none() {
            self.shutdown = Some(kind);
        }
    }

    fn handle_signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => self.reap(),
                // busybox init's convention, which LinuxKit users script against.
                Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => {
                    self.request_shutdown(ShutdownKind::Reboot)
                }
                Ok(Signal::SIGUSR1) => self.request_shutdown(ShutdownKind::Halt),
                Ok(Signal::SIGUSR2) | Ok(Signal::SIGPWR) => {
                    self.request_shutdown(ShutdownKind::Poweroff)
                }
                // The host side of the control port connected or left.
                Ok(Signal::SIGIO) => self.port_recheck = Instant::now(),
                _ => {}
            }
        }
        // A SIGCHLD coalesced with another signal still leaves children to reap.
        self.reap();
    }

    /// The guest's one reaper: collects every exited child and routes it.
    fn reap(&mut self) {
        loop {
            let (pid, exit) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(status) => match exit_of(status) {
                    Some(x) => x,
                    None => continue,
                },
            };
            if let Some((p, slot)) = &mut self.oneshot {
                if *p == pid {
                    *slot = Some(exit);
                    continue;
                }
            }
            if let Some(e) = self.execs.iter_mut().find(|e| e.pid == pid) {
                e.exit = Some(exit);
                continue;
            }
            if let Some(idx) = self
                .services
                .iter()
                .position(|s| s.running.as_ref().is_some_and(|r| r.pid == pid))
            {
                self.after_service_exit(idx, Some(exit));
            }
            // Anything else is an orphan re-parented to PID 1: collected, nothing more.
        }
    }

    /// A service's process is gone (or never started: `exit` is None).
    fn after_service_exit(&mut self, idx: usize, exit: Option<ExitStatus>) {
        let s = &mut self.services[idx];
        if let Some(r) = s.running.take() {
            // Whatever the service forked dies with it.
            runtime::kill_cgroup(&s.cgroup);
            if let Err(e) = r.delete() {
                say!("cleaning up {}: {}", s.name, error_chain(&e));
            }
        }
        s.notify = None;
        s.ready = false;
        s.ready_deadline = None;
        s.kill_at = None;
        let ran = s.started_at.elapsed();
        if let Some(e) = exit {
            s.last_exit = Some(e);
            say!(
                "service {} exited with {e} after {:.1}s",
                s.name,
                ran.as_secs_f64()
            );
        }
        let detail = exit
            .map(|e| e.to_string())
            .unwrap_or_else(|| s.reason.clone());
        if self.stopping_all || !s.wanted {
            self.set_state(idx, ServiceState::Exited, detail);
            return;
        }
        if s.restart_after_stop {
            s.restart_after_stop = false;
            s.reset_backoff();
            s.restarts += 1;
            self.set_state(idx, ServiceState::Waiting, detail);
            self.start_eligible();
            return;
        }
        match service::decide(s, exit, ran) {
            Decision::Done => {
                let failed = !matches!(exit, Some(ExitStatus::Code(0)));
                let state = if failed {
                    s.reason = format!("{detail}; restart policy {:?}", s.runtime.restart);
                    ServiceState::Failed
                } else {
                    ServiceState::Exited
                };
                self.set_state(idx, state, detail);
            }
            Decision::GiveUp => {
                let limit = s.runtime.start_limit;
                say!(
                    "service {} failed {limit} times in a row; not restarting it",
                    s.name
                );
                s.reason =
                    format!("start limit reached ({limit} restarts in a row); last: {detail}");
                self.set_state(idx, ServiceState::Failed, detail);
                self.maybe_announce();
            }
            Decision::Restart(delay) => {
                let delay = service::jitter(delay);
                say!("service {} restarts in {:.2}s", s.name, delay.as_secs_f64());
                s.next_start = Some(Instant::now() + delay);
                s.current_delay = Some(delay);
                s.restarts += 1;
                self.set_state(
                    idx,
                    ServiceState::BackingOff,
                    format!("{detail}; next start in {}ms", delay.as_millis()),
                );
            }
        }
    }

    fn next_timer(&self) -> Duration {
        let now = Instant::now();
        let mut t = Duration::from_secs(60);
        if now < self.scan_until && (self.buttons.is_empty() || self.ports.is_empty()) {
            t = Duration::from_millis(500);
        }
        if self.conns.iter().any(|c| c.idle) {
            t = t.min(self.port_recheck.saturating_duration_since(now));
        }
        for s in &self.services {
            for at in [s.next_start, s.ready_deadline, s.kill_at]
                .into_iter()
                .flatten()
            {
                t = t.min(at.saturating_duration_since(now));
            }
            if s.running.is_some()
                && !s.ready
                && matches!(
                    s.runtime.readiness.as_ref().map(|r| &r.check),
                    Some(ReadinessCheck::File(_)) | Some(ReadinessCheck::Tcp(_))
                )
            {
                t = t.min(READINESS_POLL);
            }
        }
        t
    }

    /// Timers: restarts due, readiness checks and timeouts, stop deadlines.
    fn tick(&mut self) {
        let now = Instant::now();
        if self.conns.iter().any(|c| c.idle) && now >= self.port_recheck {
            for c in &mut self.conns {
                c.idle = false;
            }
            self.port_recheck = now + PORT_RECHECK;
        }
        for idx in 0..self.services.len() {
            if self.shutdown.is_some() {
                return;
            }
            let s = &self.services[idx];
            if s.kill_at.is_some_and(|t| t <= now) {
                say!("{} did not stop in time; killing it", s.name);
                self.kill_service(idx);
            }
            let s = &self.services[idx];
            if s.state == ServiceState::BackingOff && s.next_start.is_some_and(|t| t <= now) {
                self.start_service(idx);
                continue;
            }
            if s.running.is_none() || s.ready {
                continue;
            }
            let pid = s.running.as_ref().map_or(0, |r| r.pid.as_raw());
            let passed = match s.runtime.readiness.as_ref().map(|r| &r.check) {
                Some(ReadinessCheck::File(p)) => Path::new(p).exists(),
                Some(ReadinessCheck::Tcp(port)) => readiness::tcp_accepts(pid, *port),
                _ => false,
            };
            if passed {
                self.mark_ready(idx);
            } else if s.ready_deadline.is_some_and(|t| t <= now) {
                let s = &mut self.services[idx];
                let ms = s.runtime.readiness.as_ref().map_or(0, |r| r.timeout_ms);
                say!("service {} not ready within {ms}ms; stopping it", s.name);
                s.reason = format!("not ready within {ms}ms ({})", s.readiness_name());
                s.wanted = false;
                s.ready_deadline = None;
                self.stop_service(idx);
                let reason = self.services[idx].reason.clone();
                self.set_state(idx, ServiceState::Failed, reason);
                self.maybe_announce();
            }
        }
    }

    /// Sends the stop signal; SIGKILL to the whole cgroup follows after the
    /// grace period (see [`Supervisor::tick`]).
    fn stop_service(&mut self, idx: usize) {
        let s = &mut self.services[idx];
        let Some(r) = &s.running else { return };
        let sig = Signal::try_from(s.runtime.stop_signal).unwrap_or(Signal::SIGTERM);
        say!("stopping {} with {sig}", s.name);
        let _ = r.signal(sig);
        s.kill_at = Some(Instant::now() + Duration::from_millis(s.runtime.stop_grace_ms));
        self.set_state(idx, ServiceState::Stopping, sig.to_string());
    }

    fn kill_service(&mut self, idx: usize) {
        let s = &mut self.services[idx];
        s.kill_at = None;
        if let Some(r) = &s.running {
            if !runtime::kill_cgroup(&s.cgroup) {
                let _ = r.signal(Signal::SIGKILL);
            }
        }
    }

    /// onshutdown containers, then the services in reverse dependency order
    /// (a service is signalled once every service depending on it has
    /// stopped): stop signal, grace period, SIGKILL to its cgroup; bounded by
    /// [`SHUTDOWN_DEADLINE`] in all.
    fn stop_everything(&mut self, image: &ImageJson) {
        let deadline = Instant::now() + SHUTDOWN_DEADLINE;
        self.stopping_all = true;
        say!("shutting down");
        for c in &image.onshutdown {
            if let Err(e) = self.run_oneshot(c, Some(deadline)) {
                say!("onshutdown {} could not run: {}", c.name, error_chain(&e));
            }
        }
        for s in &mut self.services {
            s.next_start = None;
        }
        for e in &self.execs {
            let _ = nix::sys::signal::kill(e.pid, Signal::SIGKILL);
        }
        let mut signalled = vec![false; self.services.len()];
        loop {
            let now = Instant::now();
            let mut left = false;
            for idx in (0..self.services.len()).rev() {
                if self.services[idx].running.is_none() {
                    continue;
                }
                left = true;
                if !signalled[idx] {
                    let name = self.services[idx].name.clone();
                    let dependants_running = self
                        .services
                        .iter()
                        .any(|d| d.running.is_some() && d.runtime.depends.contains(&name));
                    if !dependants_running {
                        signalled[idx] = true;
                        self.stop_service(idx);
                        let s = &mut self.services[idx];
                        s.kill_at = s.kill_at.map(|k| k.min(deadline));
                    }
                } else if self.services[idx].kill_at.is_some_and(|k| now >= k) {
                    say!(
                        "{} did not stop in time; killing it",
                        self.services[idx].name
                    );
                    self.kill_service(idx);
                }
            }
            if !left || now >= deadline + Duration::from_secs(2) {
                break;
            }
            if now >= deadline {
                for idx in 0..self.services.len() {
                    self.kill_service(idx);
                }
            }
            self.pump(Duration::from_millis(100));
        }
        self.drain_streams();
        for c in &mut self.conns {
            c.flush();
        }
    }

    // ---- the control API ----

    fn handle_conn(&mut self, i: usize, ev: PollFlags) {
        if ev.contains(PollFlags::POLLOUT) {
            self.conns[i].flush();
        }
        if ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            let (incoming, hup) = self.conns[i].read_requests();
            if hup {
                // The client (or the port's host side) is gone: so are its execs.
                let token = self.conns[i].token;
                self.kill_execs_of(token);
            }
            for inc in incoming {
                match inc {
                    Incoming::Request(r) => self.handle_request(i, r),
                    Incoming::Malformed { id, message } => self.conns[i].send(&Response {
                        id,
                        reply: Reply::Error { message },
                    }),
                }
            }
        }
    }

    fn kill_execs_of(&mut self, token: u64) {
        for e in self.execs.iter_mut().filter(|e| e.conn == token) {
            let _ = nix::sys::signal::kill(e.pid, Signal::SIGKILL);
            e.conn = 0;
        }
    }

    fn reply(&mut self, i: usize, id: u64, reply: Reply) {
        self.conns[i].send(&Response { id, reply });
    }

    fn end(&mut self, i: usize, id: u64, message: impl Into<String>) {
        self.reply(
            i,
            id,
            Reply::End {
                message: message.into(),
            },
        );
    }

    fn error(&mut self, i: usize, id: u64, message: impl Into<String>) {
        self.reply(
            i,
            id,
            Reply::Error {
                message: message.into(),
            },
        );
    }

    fn handle_request(&mut self, i: usize, r: Request) {
        let id = r.id;
        if r.version != PROTOCOL_VERSION {
            return self.error(
                i,
                id,
                format!(
                    "protocol version {} is not supported (this hull-init speaks {PROTOCOL_VERSION})",
                    r.version
                ),
            );
        }
        let service = |sup: &Self, name: &str| {
            sup.find(name)
                .ok_or_else(|| format!("no service named {name:?}"))
        };
        match r.op {
            Op::Ps => {
                let services = self.services.iter().map(|s| self.status(s)).collect();
                self.reply(i, id, Reply::Ps { services });
                self.end(i, id, "");
            }
            Op::Inspect { name } => match self.inspect(&name) {
                Ok(ins) => {
                    self.reply(i, id, Reply::Inspect(Box::new(ins)));
                    self.end(i, id, "");
                }
                Err(e) => self.error(i, id, e),
            },
            Op::Logs { name, follow, tail } => {
                if !self.rings.contains_key(&name) && self.find(&name).is_none() {
                    return self.error(i, id, format!("no container named {name:?}"));
                }
                let lines: Vec<LogLine> = self
                    .rings
                    .get(&name)
                    .map(|r| {
                        r.tail(tail)
                            .map(|(t, l)| LogLine {
                                name: name.clone(),
                                time: *t,
                                line: l.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                for l in lines {
                    self.reply(i, id, Reply::Log(l));
                }
                if follow {
                    self.conns[i].follows.push(Follow::Logs { id, name });
                } else {
                    self.end(i, id, "");
                }
            }
            Op::Events { follow } => {
                let evs: Vec<Event> = self.events.iter().cloned().collect();
                for e in evs {
                    self.reply(i, id, Reply::Event(e));
                }
                if follow {
                    self.conns[i].follows.push(Follow::Events { id });
                } else {
                    self.end(i, id, "");
                }
            }
            Op::Dmesg => {
                let lines = kmsg::read_all();
                self.reply(i, id, Reply::Dmesg { lines });
                self.end(i, id, "");
            }
            Op::BootTime => {
                let phases = self.boot.clone();
                self.reply(i, id, Reply::BootTime { phases });
                self.end(i, id, "");
            }
            Op::Shutdown | Op::Reboot => {
                let (kind, what) = if r.op == Op::Shutdown {
                    (ShutdownKind::Poweroff, "powering off")
                } else {
                    (ShutdownKind::Reboot, "rebooting")
                };
                say!("{what} (asked through the control API)");
                self.end(i, id, what);
                self.request_shutdown(kind);
            }
            Op::Start { name } => match service(self, &name) {
                Err(e) => self.error(i, id, e),
                Ok(idx) => {
                    if self.stopping_all || self.shutdown.is_some() {
                        return self.error(i, id, "shutting down");
                    }
                    let s = &mut self.services[idx];
                    if s.running.is_some() {
                        return self.error(i, id, format!("{name} is already running"));
                    }
                    s.wanted = true;
                    s.reason.clear();
                    s.reset_backoff();
                    s.next_start = None;
                    s.current_delay = None;
                    self.set_state(idx, ServiceState::Waiting, "start requested".into());
                    self.start_eligible();
                    self.end(i, id, format!("{name} started"));
                }
            },
            Op::Stop { name } => match service(self, &name) {
                Err(e) => self.error(i, id, e),
                Ok(idx) => {
                    let s = &mut self.services[idx];
                    s.wanted = false;
                    s.restart_after_stop = false;
                    if s.running.is_some() {
                        if s.state != ServiceState::Stopping {
                            self.stop_service(idx);
                        }
                    } else {
                        s.next_start = None;
                        s.current_delay = None;
                        self.set_state(idx, ServiceState::Exited, "stopped".into());
                    }
                    self.end(i, id, format!("{name} stopping"));
                }
            },
            Op::Restart { name } => match service(self, &name) {
                Err(e) => self.error(i, id, e),
                Ok(idx) => {
                    if self.stopping_all || self.shutdown.is_some() {
                        return self.error(i, id, "shutting down");
                    }
                    let s = &mut self.services[idx];
                    s.wanted = true;
                    s.reason.clear();
                    if s.running.is_some() {
                        s.restart_after_stop = true;
                        if s.state != ServiceState::Stopping {
                            self.stop_service(idx);
                        }
                    } else {
                        s.reset_backoff();
                        s.next_start = None;
                        s.current_delay = None;
                        s.restarts += 1;
                        self.set_state(idx, ServiceState::Waiting, "restart requested".into());
                        self.start_eligible();
                    }
                    self.end(i, id, format!("{name} restarting"));
                }
            },
            Op::Kill { name, signal } => match service(self, &name) {
                Err(e) => self.error(i, id, e),
                Ok(idx) => {
                    let Ok(sig) = Signal::try_from(signal) else {
                        return self.error(i, id, format!("{signal} is not a signal"));
                    };
                    let Some(r) = &self.services[idx].running else {
                        return self.error(i, id, format!("{name} is not running"));
                    };
                    match r.signal(sig) {
                        Ok(()) => self.end(i, id, format!("sent {sig} to {name}")),
                        Err(e) => self.error(i, id, error_chain(&e)),
                    }
                }
            },
            Op::Exec {
                name,
                args,
                tty,
                size,
            } => {
                let token = self.conns[i].token;
                if let Err(e) = self.start_exec(token, id, &name, args, tty, size) {
                    self.error(i, id, e);
                }
            }
            Op::Stdin { data, eof } => {
                let token = self.conns[i].token;
                let Some(e) = self
                    .execs
                    .iter_mut()
                    .find(|e| e.conn == token && e.id == id)
                else {
                    return self.error(i, id, "no exec session with this id");
                };
                if let Some(fd) = &e.input {
                    // A process that does not read its input loses what does
                    // not fit; PID 1 never waits for it.
                    let _ = nix::unistd::write(fd, &data);
                }
                if eof {
                    e.input = None;
                }
            }
        }
    }

    fn status(&self, s: &Service) -> ServiceStatus {
        let waiting_for = if s.state == ServiceState::Waiting {
            s.runtime
                .depends
                .iter()
                .filter(|d| self.find(d).is_none_or(|j| !self.services[j].ready))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let last_lines = if s.state == ServiceState::Failed || s.state == ServiceState::BackingOff {
            self.rings
                .get(&s.name)
                .map(|r| r.tail(Some(LAST_LINES)).map(|(_, l)| l.clone()).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        ServiceStatus {
            name: s.name.clone(),
            state: s.state,
            pid: s.running.as_ref().map(|r| r.pid.as_raw()),
            restarts: s.restarts,
            uptime_ms: s
                .running
                .as_ref()
                .map(|_| s.started_at.elapsed().as_millis() as u64),
            last_exit: s.last_exit,
            readiness: s.readiness_name(),
            ready: s.ready,
            waiting_for,
            restart_delay_ms: s.current_delay.map(|d| d.as_millis() as u64),
            reason: s.reason.clone(),
            last_lines,
        }
    }

    fn inspect(&self, name: &str) -> Result<Inspect, String> {
        let idx = self
            .find(name)
            .ok_or_else(|| format!("no service named {name:?}"))?;
        let s = &self.services[idx];
        let read_json = |p: PathBuf| -> serde_json::Value {
            std::fs::read(&p)
                .ok()
                .and_then(|d| serde_json::from_slice(&d).ok())
                .unwrap_or(serde_json::Value::Null)
        };
        // The spec as the runtime got it: amended (notify socket) when it was.
        let amended = Path::new("/run/hull/bundles")
            .join(name)
            .join("config.json");
        let spec = if amended.exists() {
            read_json(amended)
        } else {
            read_json(s.bundle.join("config.json"))
        };
        let pid = s.running.as_ref().map(|r| r.pid.as_raw());
        let mut namespaces = Vec::new();
        if let Some(pid) = pid {
            for kind in ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"] {
                if let Ok(t) = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")) {
                    namespaces.push((kind.to_string(), t.display().to_string()));
                }
            }
        }
        Ok(Inspect {
            name: name.to_string(),
            bundle: s.bundle.display().to_string(),
            spec,
            runtime: serde_json::to_value(&s.runtime).unwrap_or_default(),
            cgroup: s.cgroup.clone(),
            cgroup_pids: runtime::cgroup_pids(&s.cgroup),
            namespaces,
            pid,
        })
    }

    fn start_exec(
        &mut self,
        token: u64,
        id: u64,
        name: &str,
        args: Vec<String>,
        tty: bool,
        size: Option<(u16, u16)>,
    ) -> Result<(), String> {
        let idx = self
            .find(name)
            .ok_or_else(|| format!("no service named {name:?}"))?;
        if self.services[idx].running.is_none() {
            return Err(format!("{name} is not running"));
        }
        if args.is_empty() {
            return Err("no command given".into());
        }
        let e = |what: &str, err: nix::Error| format!("{what}: {err}");
        let (stdio, out, input) = if tty {
            let ws = size.map(|(rows, cols)| nix::pty::Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            });
            let pty = nix::pty::openpty(ws.as_ref(), None).map_err(|x| e("openpty", x))?;
            let dup = |fd: &OwnedFd| fd.try_clone().map_err(|x| x.to_string());
            let stdio = Stdio {
                stdin: dup(&pty.slave)?,
                stdout: dup(&pty.slave)?,
                stderr: pty.slave,
            };
            let input = dup(&pty.master)?;
            (stdio, pty.master, input)
        } else {
            let (in_r, in_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|x| e("pipe", x))?;
            let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|x| e("pipe", x))?;
            let out_w2 = out_w.try_clone().map_err(|x| x.to_string())?;
            let stdio = Stdio {
                stdin: in_r,
                stdout: out_w,
                stderr: out_w2,
            };
            (stdio, out_r, in_w)
        };
        set_nonblocking(&out).map_err(|x| e("fcntl", x))?;
        set_nonblocking(&input).map_err(|x| e("fcntl", x))?;
        let pid = self
            .runtime
            .exec(name, args, stdio, tty)
            .map_err(|x| error_chain(&x))?;
        self.execs.push(ExecSession {
            conn: token,
            id,
            pid,
            out: Some(out),
            input: Some(input),
            exit: None,
        });
        Ok(())
    }

    /// Forwards an exec process's output; false at EOF.
    fn pump_exec(&mut self, i: usize) -> bool {
        let mut buf = vec![0u8; 16 * 1024];
        let Some(fd) = &self.execs[i].out else {
            return false;
        };
        let mut alive = true;
        let mut data = Vec::new();
        loop {
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(0) => {
                    alive = false;
                    break;
                }
                Ok(n) => {
                    data.extend_from_slice(&buf[..n]);
                    if data.len() >= 64 * 1024 {
                        break;
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => break,
                // EIO: a pty whose slave side is closed everywhere.
                Err(_) => {
                    alive = false;
                    break;
                }
            }
        }
        let (token, id) = (self.execs[i].conn, self.execs[i].id);
        if !data.is_empty() {
            if let Some(c) = self.conns.iter_mut().find(|c| c.token == token) {
                c.send(&Response {
                    id,
                    reply: Reply::Output { data },
                });
            }
        }
        alive
    }

    /// Reports exec processes that have exited (after their last output).
    fn finish_execs(&mut self) {
        let mut i = 0;
        while i < self.execs.len() {
            let Some(status) = self.execs[i].exit else {
                i += 1;
                continue;
            };
            // Whatever output is still buffered goes first.
            while self.execs[i].out.is_some() && self.pump_exec(i) {
                let pending = self.execs[i]
                    .out
                    .as_ref()
                    .map(|fd| {
                        let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                        nix::poll::poll(&mut p, PollTimeout::ZERO).unwrap_or(0) > 0
                    })
                    .unwrap_or(false);
                if !pending {
                    break;
                }
            }
            let e = self.execs.remove(i);
            if let Some(c) = self.conns.iter_mut().find(|c| c.token == e.conn) {
                c.send(&Response {
                    id: e.id,
                    reply: Reply::Exit { status },
                });
                c.send(&Response {
                    id: e.id,
                    reply: Reply::End {
                        message: String::new(),
                    },
                });
            }
        }
    }
}
