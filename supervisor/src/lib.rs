//! Guest library: the service table and the event loop of PID 1.
//!
//! `hull-init` hands it the resolved image (`/etc/hull/image.json`) once the
//! root is mounted; it runs the onboot containers one after another, starts
//! the services, supervises them (restart with growing delays, a start limit),
//! copies their output to the console and `/var/log`, and on a shutdown
//! request stops everything in reverse order before returning what the kernel
//! should be asked to do.
//!
//! Two rules shape this file (DESIGN.md, "Known hazards"):
//! - **One reaper.** [`Supervisor::reap`] is the only `waitpid` of the guest
//!   outside libcontainer's own synchronous wait; each status goes to its owner
//!   by pid, and orphans re-parented to PID 1 are simply collected.
//! - **No threads.** Everything runs on one thread around `poll(2)`, so
//!   libcontainer's forks are safe.

mod logs;
mod power_button;

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use logs::{LogStream, ReadOutcome};
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use runtime::{Running, Runtime};
use spec::{ContainerRef, ImageJson, RestartPolicy, RuntimeJson, READY_MARKER};

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
}

pub struct Options {
    /// Copy container output to the console (`hull.console=off` turns it off).
    pub console_log: bool,
    /// Where libcontainer keeps its state.
    pub state_root: PathBuf,
}

/// First restart delay; it doubles on each quick failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A service that ran this long without exiting gets its delay and count reset.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// Quick failures in a row after which a service is left alone (marked failed).
const START_LIMIT: u32 = 5;
/// A shutdown never takes longer than this, whatever the grace periods say.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);
/// How long to keep looking for a power button device after boot.
const BUTTON_SCAN: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    Code(i32),
    Signal(Signal),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    BackingOff,
    Exited,
    Failed,
}

struct Service {
    name: String,
    bundle: PathBuf,
    runtime: RuntimeJson,
    state: State,
    running: Option<Running>,
    started_at: Instant,
    next_start: Option<Instant>,
    backoff: Duration,
    quick_failures: u32,
    stop_deadline: Option<Instant>,
}

pub struct Supervisor {
    runtime: Runtime,
    signals: SignalFd,
    logs: Vec<LogStream>,
    buttons: Vec<(String, File)>,
    button_scan_until: Instant,
    services: Vec<Service>,
    /// The onboot/onshutdown container being waited for, and its exit once reaped.
    oneshot: Option<(Pid, Option<Exit>)>,
    console_log: bool,
    shutdown: Option<ShutdownKind>,
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

fn say(msg: std::fmt::Arguments) {
    let _ = writeln!(std::io::stdout().lock(), "hull: {msg}");
}

macro_rules! say {
    ($($t:tt)*) => { say(format_args!($($t)*)) };
}

/// Seconds since the kernel started (CLOCK_BOOTTIME), for boot timing.
pub fn uptime() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
        .unwrap_or(0.0)
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
        ] {
            mask.add(s);
        }
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
            .map_err(SupervisorError::Signals)?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(SupervisorError::Signals)?;
        Ok(Supervisor {
            runtime: Runtime::new(opts.state_root)?,
            signals,
            logs: Vec::new(),
            buttons: Vec::new(),
            button_scan_until: Instant::now() + BUTTON_SCAN,
            services: Vec::new(),
            oneshot: None,
            console_log: opts.console_log,
            shutdown: None,
        })
    }

    /// Runs the whole life of the image and returns what to ask the kernel for.
    pub fn run(mut self, image: &ImageJson) -> ShutdownKind {
        self.scan_buttons();
        for c in &image.onboot {
            if self.shutdown.is_some() {
                break;
            }
            match self.run_oneshot(c, None) {
                Ok(Exit::Code(0)) => say!("onboot {} done", c.name),
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
            // The marker is a contract with `hull run qemu --until-ready` and the VM tests.
            let _ = writeln!(
                std::io::stdout().lock(),
                "{READY_MARKER} ({} services) at {:.3}s since kernel start",
                self.services.len(),
                uptime()
            );
        }
        while self.shutdown.is_none() {
            let timeout = self.next_timer();
            self.pump(timeout);
            self.restart_due();
        }
        let kind = self.shutdown.unwrap_or(ShutdownKind::Poweroff);
        self.stop_everything(image);
        kind
    }

    fn add_service(&mut self, c: &ContainerRef) {
        let bundle = PathBuf::from(&c.bundle);
        let rt = match runtime::load_runtime_json(&bundle) {
            Ok(rt) => rt,
            Err(e) => {
                say!("service {} cannot start: {}", c.name, error_chain(&e));
                RuntimeJson {
                    restart: RestartPolicy::Never,
                    ..RuntimeJson::default()
                }
            }
        };
        let now = Instant::now();
        self.services.push(Service {
            name: c.name.clone(),
            bundle,
            runtime: rt,
            state: State::BackingOff,
            running: None,
            started_at: now,
            next_start: Some(now),
            backoff: MIN_BACKOFF,
            quick_failures: 0,
            stop_deadline: None,
        });
        let idx = self.services.len() - 1;
        self.start_service(idx);
    }

    fn start_service(&mut self, idx: usize) {
        let (name, bundle, rt) = {
            let s = &self.services[idx];
            (s.name.clone(), s.bundle.clone(), s.runtime.clone())
        };
        let result = runtime::prepare(&rt)
            .map_err(SupervisorError::from)
            .and_then(|_| self.start_container(&name, &name, &bundle, rt.console_log));
        let s = &mut self.services[idx];
        s.next_start = None;
        s.started_at = Instant::now();
        match result {
            Ok(running) => {
                say!("service {name} started (pid {})", running.pid);
                s.running = Some(running);
                s.state = State::Running;
            }
            Err(e) => {
                say!("service {name} failed to start: {}", error_chain(&e));
                self.after_service_exit(idx, None);
            }
        }
    }

    /// Creates the output pipe and starts the container with it.
    fn start_container(
        &mut self,
        id: &str,
        name: &str,
        bundle: &Path,
        console: bool,
    ) -> Result<Running, SupervisorError> {
        let pipe_err = |errno| SupervisorError::Pipe {
            name: name.to_string(),
            errno,
        };
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(pipe_err)?;
        nix::fcntl::fcntl(
            read.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK),
        )
        .map_err(pipe_err)?;
        let write2: OwnedFd = write
            .try_clone()
            .map_err(|e| pipe_err(nix::Error::from_raw(e.raw_os_error().unwrap_or(0))))?;
        self.logs
            .push(LogStream::new(name, read, console && self.console_log));
        // Our copies of the write end are owned by the builder and closed when
        // it returns, so the pipe reaches EOF when the container exits.
        Ok(self.runtime.start(id, bundle, write, write2)?)
    }

    /// Runs one onboot/onshutdown container to completion.
    fn run_oneshot(
        &mut self,
        c: &ContainerRef,
        deadline: Option<Instant>,
    ) -> Result<Exit, SupervisorError> {
        let bundle = PathBuf::from(&c.bundle);
        let rt = runtime::load_runtime_json(&bundle)?;
        runtime::prepare(&rt)?;
        let id = format!("oneshot-{}", c.name);
        let started = Instant::now();
        let running = self.start_container(&id, &c.name, &bundle, rt.console_log)?;
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
        self.drain_logs();
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
        let ready: Vec<bool> = {
            let mut fds = Vec::with_capacity(1 + self.buttons.len() + self.logs.len());
            fds.push(PollFd::new(self.signals.as_fd(), PollFlags::POLLIN));
            for (_, b) in &self.buttons {
                fds.push(PollFd::new(b.as_fd(), PollFlags::POLLIN));
            }
            for l in &self.logs {
                fds.push(PollFd::new(l.fd(), PollFlags::POLLIN));
            }
            let ms = timeout.as_millis().min(60_000) as u16;
            if nix::poll::poll(&mut fds, PollTimeout::from(ms)).is_err() {
                return;
            }
            fds.iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect()
        };
        if ready[0] {
            self.handle_signals();
        }
        let nb = self.buttons.len();
        for i in 0..nb {
            if ready[1 + i] && power_button::pressed(&mut self.buttons[i].1) {
                say!("power button pressed");
                self.request_shutdown(ShutdownKind::Poweroff);
            }
        }
        let mut i = 0;
        let mut k = 1 + nb;
        while i < self.logs.len() {
            if ready[k] {
                if let ReadOutcome::Eof = self.logs[i].read_available() {
                    self.logs.remove(i);
                    k += 1;
                    continue;
                }
            }
            i += 1;
            k += 1;
        }
        if Instant::now() < self.button_scan_until && self.buttons.is_empty() {
            self.scan_buttons();
        }
    }

    fn drain_logs(&mut self) {
        self.logs
            .retain_mut(|l| matches!(l.read_available(), ReadOutcome::More));
    }

    fn scan_buttons(&mut self) {
        let known: Vec<String> = self.buttons.iter().map(|(n, _)| n.clone()).collect();
        self.buttons
            .extend(power_button::open_power_buttons(&known));
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
                Ok(WaitStatus::Exited(pid, code)) => (pid, Exit::Code(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, Exit::Signal(sig)),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            if let Some((p, slot)) = &mut self.oneshot {
                if *p == pid {
                    *slot = Some(exit);
                    continue;
                }
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

    fn after_service_exit(&mut self, idx: usize, exit: Option<Exit>) {
        let shutting_down = self.shutdown.is_some();
        let s = &mut self.services[idx];
        if let Some(r) = s.running.take() {
            if let Err(e) = r.delete() {
                say!("cleaning up {}: {}", s.name, error_chain(&e));
            }
        }
        let ran = s.started_at.elapsed();
        if let Some(e) = exit {
            say!(
                "service {} exited with {e} after {:.1}s",
                s.name,
                ran.as_secs_f64()
            );
        }
        if shutting_down {
            s.state = State::Exited;
            return;
        }
        let failed = !matches!(exit, Some(Exit::Code(0)));
        let restart = match s.runtime.restart {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => failed,
            RestartPolicy::Never => false,
        };
        if !restart {
            s.state = if failed { State::Failed } else { State::Exited };
            return;
        }
        if ran >= STABLE_AFTER {
            s.backoff = MIN_BACKOFF;
            s.quick_failures = 0;
        }
        s.quick_failures += 1;
        if s.quick_failures > START_LIMIT {
            say!(
                "service {} failed {} times in a row; not restarting it",
                s.name,
                START_LIMIT
            );
            s.state = State::Failed;
            return;
        }
        say!(
            "service {} restarts in {:.2}s",
            s.name,
            s.backoff.as_secs_f64()
        );
        s.next_start = Some(Instant::now() + s.backoff);
        s.backoff = (s.backoff * 2).min(MAX_BACKOFF);
        s.state = State::BackingOff;
    }

    fn next_timer(&self) -> Duration {
        let now = Instant::now();
        let mut t = Duration::from_secs(60);
        if now < self.button_scan_until && self.buttons.is_empty() {
            t = Duration::from_millis(500);
        }
        for s in &self.services {
            if let Some(at) = s.next_start {
                t = t.min(at.saturating_duration_since(now));
            }
        }
        t
    }

    fn restart_due(&mut self) {
        let now = Instant::now();
        for idx in 0..self.services.len() {
            if self.shutdown.is_some() {
                return;
            }
            if self.services[idx].state == State::BackingOff
                && self.services[idx].next_start.is_some_and(|t| t <= now)
            {
                self.start_service(idx);
            }
        }
    }

    /// onshutdown containers, then the services in reverse order: stop signal,
    /// grace period, SIGKILL; bounded by [`SHUTDOWN_DEADLINE`] in all.
    fn stop_everything(&mut self, image: &ImageJson) {
        let deadline = Instant::now() + SHUTDOWN_DEADLINE;
        say!("shutting down");
        for c in &image.onshutdown {
            if let Err(e) = self.run_oneshot(c, Some(deadline)) {
                say!("onshutdown {} could not run: {}", c.name, error_chain(&e));
            }
        }
        for s in self.services.iter_mut().rev() {
            s.next_start = None;
            if let Some(r) = &s.running {
                let sig = Signal::try_from(s.runtime.stop_signal).unwrap_or(Signal::SIGTERM);
                say!("stopping {} with {sig}", s.name);
                let _ = r.signal(sig);
                s.stop_deadline = Some(
                    (Instant::now() + Duration::from_millis(s.runtime.stop_grace_ms)).min(deadline),
                );
            }
        }
        loop {
            let now = Instant::now();
            let mut left = false;
            for s in &mut self.services {
                if let Some(r) = &s.running {
                    left = true;
                    if s.stop_deadline.is_some_and(|d| now >= d) {
                        say!("{} did not stop in time; killing it", s.name);
                        let _ = r.signal(Signal::SIGKILL);
                        s.stop_deadline = None;
                    }
                }
            }
            if !left || now >= deadline + Duration::from_secs(2) {
                break;
            }
            self.pump(Duration::from_millis(100));
        }
        self.drain_logs();
    }
}
