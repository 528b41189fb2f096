//! One supervised service: its lifecycle state and the restart policy, kept
//! free of system calls so that both are unit-tested. Its transitions
//! (`service/lifecycle.rs`) change the state and return the
//! [`Action`]s that `supervise.rs` carries out.

mod lifecycle;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use contract::control::{ExitStatus, ServiceState, ServiceStatus};
use contract::{ReadinessCheck, RestartPolicy, RuntimeJson};
use nix::unistd::Pid;

pub use lifecycle::{Action, Ctx};

/// A service that ran this long without exiting gets its delay and its count
/// of quick failures reset.
pub const STABLE_AFTER: Duration = Duration::from_secs(10);

pub struct Service {
    name: String,
    bundle: PathBuf,
    runtime: RuntimeJson,
    /// The cgroup (the spec's `cgroupsPath`), relative to /sys/fs/cgroup.
    cgroup: String,
    state: ServiceState,
    /// The container's main process, from its start until it is reaped.
    pid: Option<Pid>,
    started_at: Instant,
    /// When the next start is due (state backing-off).
    next_start: Option<Instant>,
    /// The delay the next restart will wait (before jitter).
    delay: Duration,
    quick_failures: u32,
    restarts: u32,
    started_once: bool,
    last_exit: Option<ExitStatus>,
    ready: bool,
    ready_deadline: Option<Instant>,
    /// SIGKILL to the whole cgroup is due at this time (state stopping).
    kill_at: Option<Instant>,
    /// False after `hullctl stop`: an exit is not followed by a restart.
    wanted: bool,
    /// Start again as soon as the process has exited (`hullctl restart`).
    restart_after_stop: bool,
    reason: String,
    /// The delay the current backing-off waits, jitter included (for `ps`).
    current_delay: Option<Duration>,
}

impl Service {
    pub fn new(name: String, bundle: PathBuf, runtime: RuntimeJson, cgroup: String) -> Self {
        let delay = Duration::from_millis(runtime.backoff_initial_ms);
        Service {
            name,
            bundle,
            runtime,
            cgroup,
            state: ServiceState::Waiting,
            pid: None,
            started_at: Instant::now(),
            next_start: None,
            delay,
            quick_failures: 0,
            restarts: 0,
            started_once: false,
            last_exit: None,
            ready: false,
            ready_deadline: None,
            kill_at: None,
            wanted: true,
            restart_after_stop: false,
            reason: String::new(),
            current_delay: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn bundle(&self) -> &Path {
        &self.bundle
    }

    pub fn runtime(&self) -> &RuntimeJson {
        &self.runtime
    }

    pub fn cgroup(&self) -> &str {
        &self.cgroup
    }

    pub fn state(&self) -> ServiceState {
        self.state
    }

    /// The main process, while the service runs.
    pub fn pid(&self) -> Option<Pid> {
        self.pid
    }

    pub fn is_running(&self) -> bool {
        self.pid.is_some()
    }

    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Waits for a start: neither started yet nor stopped by hand.
    pub fn is_waiting(&self) -> bool {
        self.state == ServiceState::Waiting && self.wanted
    }

    /// Started at least once (successfully or not) since boot.
    pub fn started_once(&self) -> bool {
        self.started_once
    }

    pub fn depends(&self) -> &[String] {
        &self.runtime.depends
    }

    /// `notify`, `file:PATH`, `tcp:PORT`, or `started` (no check).
    pub fn readiness_name(&self) -> String {
        match self.runtime.readiness.as_ref().map(|r| &r.check) {
            None => "started".into(),
            Some(ReadinessCheck::Notify) => "notify".into(),
            Some(ReadinessCheck::File(p)) => format!("file:{p}"),
            Some(ReadinessCheck::Tcp(p)) => format!("tcp:{p}"),
        }
    }

    /// Whether its readiness is the sd_notify socket.
    pub fn uses_notify(&self) -> bool {
        matches!(
            self.runtime.readiness.as_ref().map(|r| &r.check),
            Some(ReadinessCheck::Notify)
        )
    }

    /// Whether a file or TCP readiness check is to be tried now and then.
    pub fn probes_readiness(&self) -> bool {
        self.pid.is_some()
            && !self.ready
            && matches!(
                self.runtime.readiness.as_ref().map(|r| &r.check),
                Some(ReadinessCheck::File(_)) | Some(ReadinessCheck::Tcp(_))
            )
    }

    /// When something is due: the next start, the readiness deadline, the kill.
    pub fn timers(&self) -> [Option<Instant>; 3] {
        [self.next_start, self.ready_deadline, self.kill_at]
    }

    /// The name of the boot phase the coming start is recorded under.
    pub fn start_phase(&self) -> String {
        if self.restarts == 0 && !self.started_once {
            format!("service {}", self.name)
        } else {
            format!("service {} (restart {})", self.name, self.restarts)
        }
    }

    /// Back to the initial delay and count (a `start` or `restart` by hand).
    pub fn reset_backoff(&mut self) {
        self.delay = Duration::from_millis(self.runtime.backoff_initial_ms);
        self.quick_failures = 0;
    }

    /// Its line of `hullctl ps`; `waiting_for` and `last_lines` come from
    /// the other services and the output rings.
    pub fn status(
        &self,
        now: Instant,
        waiting_for: Vec<String>,
        last_lines: Vec<String>,
    ) -> ServiceStatus {
        ServiceStatus {
            name: self.name.clone(),
            state: self.state,
            pid: self.pid.map(Pid::as_raw),
            restarts: self.restarts,
            uptime_ms: self.pid.map(|_| {
                u64::try_from(now.saturating_duration_since(self.started_at).as_millis())
                    .unwrap_or(u64::MAX)
            }),
            last_exit: self.last_exit,
            readiness: self.readiness_name(),
            ready: self.ready,
            waiting_for,
            restart_delay_ms: self
                .current_delay
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            reason: self.reason.clone(),
            last_lines,
        }
    }
}

/// What to do once a service's process has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start again after this delay.
    Restart(Duration),
    /// Leave it: its policy says so (exited) ...
    Done,
    /// ... or it failed too often in a row (the start limit).
    GiveUp,
}

/// The restart policy. `exit` is `None` when the container could not even be
/// created (a failure). Updates the service's delay and failure count.
pub fn decide(s: &mut Service, exit: Option<ExitStatus>, ran: Duration) -> Decision {
    let failed = !matches!(exit, Some(ExitStatus::Code(0)));
    let restart = match s.runtime.restart {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => failed,
        RestartPolicy::Never => false,
    };
    if !restart {
        return Decision::Done;
    }
    if ran >= STABLE_AFTER {
        s.reset_backoff();
    }
    s.quick_failures += 1;
    if s.quick_failures > s.runtime.start_limit {
        return Decision::GiveUp;
    }
    let delay = s.delay;
    let max = Duration::from_millis(s.runtime.backoff_max_ms.max(s.runtime.backoff_initial_ms));
    s.delay = (s.delay * 2).min(max);
    Decision::Restart(delay)
}

/// `delay` give or take 10%, so that services failing together do not
/// restart in lockstep. The randomness need not be good: the clock's
/// nanoseconds through a mixer (the kernel's RNG may not be ready at boot,
/// and nothing on PID 1's path may block on it).
pub fn jitter(delay: Duration) -> Duration {
    let seed = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_nsec() as u64 ^ (t.tv_sec() as u64).rotate_left(32))
        .unwrap_or(0);
    // splitmix64's finaliser.
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let frac = (z % 2001) as f64 / 10_000.0 - 0.1; // -0.1 ..= +0.1
    delay.mul_f64(1.0 + frac)
}
