//! A service's transitions. Each one changes the service's state and
//! returns what is to be done about it, in order, as [`Action`]s; none makes
//! a system call, so every transition is unit-tested (`service/tests.rs`).
//!
//! - `waiting` -> [`Service::start`] -> `starting` -> [`Service::spawned`] ->
//!   `running` -> [`Service::ready`] -> `ready`;
//! - [`Service::exited`] (or [`Service::spawn_failed`]) -> `backing-off`
//!   (its policy restarts it: [`Service::tick`] starts it when due),
//!   `exited`, `failed` (the start limit), or `waiting` again (a restart by hand);
//! - [`Service::stop`] -> `stopping` -> exited, or SIGKILL after the grace period.

use std::time::{Duration, Instant};

use contract::control::{ExitStatus, ServiceState};
use contract::ReadinessCheck;
use nix::unistd::Pid;
use runtime::SignalNumber;

use super::{decide, Decision, Service};

/// What the supervisor does after a transition, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Print `hull: MESSAGE` on the console.
    Say(String),
    /// Publish the service's new state with this detail (the event log and
    /// the clients following it).
    Changed { state: ServiceState, detail: String },
    /// Create and start the container, then report back through
    /// [`Service::spawned`] or [`Service::spawn_failed`].
    Spawn,
    /// Send this signal to the main process.
    Signal(SignalNumber),
    /// SIGKILL to every process of the service's cgroup (to the main
    /// process if the cgroup cannot be killed).
    Kill,
    /// The process is gone (or never started): kill what is left in its
    /// cgroup, delete the container, close the notify socket.
    Cleanup,
    /// Start the waiting services whose dependencies are ready.
    StartEligible,
    /// Print the ready marker if no service is left to be started.
    Announce,
}

/// What a transition needs from outside the service.
#[derive(Clone, Copy)]
pub struct Ctx {
    pub now: Instant,
    /// Spreads a restart delay ([`super::jitter`]; the identity in tests).
    pub jitter: fn(Duration) -> Duration,
    /// PID 1 is stopping every service for good: nothing restarts.
    pub stopping_all: bool,
}

impl Service {
    fn changed(&mut self, state: ServiceState, detail: String) -> Action {
        self.state = state;
        Action::Changed { state, detail }
    }

    /// Its `runtime.json` could not be read: failed before anything ran.
    pub fn cannot_load(&mut self, reason: String) -> Vec<Action> {
        let say = Action::Say(format!("service {} cannot start: {reason}", self.name));
        self.state = ServiceState::Failed;
        self.reason = reason;
        self.wanted = false;
        vec![say]
    }

    /// A dependency that is no service at all: it never starts.
    pub fn unknown_dependency(&mut self, dep: &str) -> Vec<Action> {
        let say = Action::Say(format!(
            "service {} depends on {dep}, which is not a service; not starting it",
            self.name
        ));
        self.reason = format!("depends on unknown service {dep}");
        self.wanted = false;
        vec![
            say,
            self.changed(ServiceState::Failed, format!("unknown dependency {dep}")),
        ]
    }

    /// Its dependencies are ready (or a restart is due): create it.
    pub fn start(&mut self) -> Vec<Action> {
        vec![
            self.changed(ServiceState::Starting, String::new()),
            Action::Spawn,
        ]
    }

    fn begin_run(&mut self, now: Instant) {
        self.next_start = None;
        self.current_delay = None;
        self.started_at = now;
        self.started_once = true;
        self.ready = false;
    }

    /// The container runs as `pid`. Without a readiness check it is ready at once.
    pub fn spawned(&mut self, pid: Pid, cx: &Ctx) -> Vec<Action> {
        self.begin_run(cx.now);
        self.pid = Some(pid);
        self.ready_deadline = self
            .runtime
            .readiness
            .as_ref()
            .map(|r| cx.now + Duration::from_millis(r.timeout_ms));
        let mut out = vec![
            Action::Say(format!("service {} started (pid {pid})", self.name)),
            self.changed(ServiceState::Running, format!("pid {pid}")),
        ];
        if self.runtime.readiness.is_none() {
            out.extend(self.ready());
        }
        out
    }

    /// The container could not be created: handled as an exit without a status.
    pub fn spawn_failed(&mut self, reason: String, cx: &Ctx) -> Vec<Action> {
        self.begin_run(cx.now);
        let mut out = vec![Action::Say(format!(
            "service {} failed to start: {reason}",
            self.name
        ))];
        self.reason = reason;
        out.extend(self.exited(None, cx));
        out
    }

    /// Its readiness check passed (or it has none).
    pub fn ready(&mut self) -> Vec<Action> {
        if self.ready || self.pid.is_none() {
            return Vec::new();
        }
        self.ready = true;
        self.ready_deadline = None;
        let how = self.readiness_name();
        let mut out = Vec::new();
        if self.runtime.readiness.is_some() {
            out.push(Action::Say(format!(
                "service {} is ready ({how})",
                self.name
            )));
        }
        out.push(self.changed(ServiceState::Ready, how));
        out.push(Action::StartEligible);
        out
    }

    /// Its process is gone (`exit`), or never started (`None`): clean up,
    /// then stay down, start again after a stop-and-restart, or follow the
    /// restart policy.
    pub fn exited(&mut self, exit: Option<ExitStatus>, cx: &Ctx) -> Vec<Action> {
        let mut out = vec![Action::Cleanup];
        self.pid = None;
        self.ready = false;
        self.ready_deadline = None;
        self.kill_at = None;
        let ran = cx.now.saturating_duration_since(self.started_at);
        if let Some(e) = exit {
            self.last_exit = Some(e);
            out.push(Action::Say(format!(
                "service {} exited with {e} after {:.1}s",
                self.name,
                ran.as_secs_f64()
            )));
        }
        let detail = exit
            .map(|e| e.to_string())
            .unwrap_or_else(|| self.reason.clone());
        if cx.stopping_all || !self.wanted {
            out.push(self.changed(ServiceState::Exited, detail));
            return out;
        }
        if self.restart_after_stop {
            self.restart_after_stop = false;
            self.reset_backoff();
            self.restarts += 1;
            out.push(self.changed(ServiceState::Waiting, detail));
            out.push(Action::StartEligible);
            return out;
        }
        match decide(self, exit, ran) {
            Decision::Done => {
                let state = if matches!(exit, Some(ExitStatus::Code(0))) {
                    ServiceState::Exited
                } else {
                    self.reason = format!("{detail}; restart policy {:?}", self.runtime.restart);
                    ServiceState::Failed
                };
                out.push(self.changed(state, detail));
            }
            Decision::GiveUp => {
                let limit = self.runtime.start_limit;
                out.push(Action::Say(format!(
                    "service {} failed {limit} times in a row; not restarting it",
                    self.name
                )));
                self.reason =
                    format!("start limit reached ({limit} restarts in a row); last: {detail}");
                out.push(self.changed(ServiceState::Failed, detail));
                out.push(Action::Announce);
            }
            Decision::Restart(delay) => {
                let delay = (cx.jitter)(delay);
                out.push(Action::Say(format!(
                    "service {} restarts in {:.2}s",
                    self.name,
                    delay.as_secs_f64()
                )));
                self.next_start = Some(cx.now + delay);
                self.current_delay = Some(delay);
                self.restarts += 1;
                out.push(self.changed(
                    ServiceState::BackingOff,
                    format!("{detail}; next start in {}ms", delay.as_millis()),
                ));
            }
        }
        out
    }

    /// Sends the stop signal; SIGKILL to the whole cgroup follows after the
    /// grace period (see [`Service::tick`]).
    pub fn stop(&mut self, cx: &Ctx) -> Vec<Action> {
        if self.pid.is_none() {
            return Vec::new();
        }
        let sig = SignalNumber::new(self.runtime.stop_signal).unwrap_or(SignalNumber::TERM);
        let mut out = vec![
            Action::Say(format!("stopping {} with {sig}", self.name)),
            Action::Signal(sig),
        ];
        self.kill_at = Some(cx.now + Duration::from_millis(self.runtime.stop_grace_ms));
        out.push(self.changed(ServiceState::Stopping, sig.to_string()));
        out
    }

    /// As [`Service::stop`], at shutdown: the kill comes by `deadline` at the latest.
    pub fn stop_by(&mut self, deadline: Instant, cx: &Ctx) -> Vec<Action> {
        let out = self.stop(cx);
        self.kill_at = self.kill_at.map(|k| k.min(deadline));
        out
    }

    /// SIGKILL now.
    pub fn kill(&mut self) -> Vec<Action> {
        self.kill_at = None;
        if self.pid.is_some() {
            vec![Action::Kill]
        } else {
            Vec::new()
        }
    }

    /// The kill is due: it did not stop within its grace period.
    pub fn kill_if_due(&mut self, now: Instant) -> Vec<Action> {
        if self.kill_at.is_none_or(|t| t > now) {
            return Vec::new();
        }
        let mut out = vec![Action::Say(format!(
            "{} did not stop in time; killing it",
            self.name
        ))];
        out.extend(self.kill());
        out
    }

    /// No restart is pending any more (shutdown).
    pub fn cancel_restart(&mut self) {
        self.next_start = None;
    }

    /// What time alone changes: the kill after the grace period, a restart
    /// that is due, the readiness check (`probe` runs a file or TCP check
    /// against the main process) and its timeout.
    pub fn tick(
        &mut self,
        cx: &Ctx,
        probe: impl FnOnce(&ReadinessCheck, Pid) -> bool,
    ) -> Vec<Action> {
        let mut out = self.kill_if_due(cx.now);
        if self.state == ServiceState::BackingOff && self.next_start.is_some_and(|t| t <= cx.now) {
            out.extend(self.start());
            return out;
        }
        let (Some(pid), false) = (self.pid, self.ready) else {
            return out;
        };
        let passed = match self.runtime.readiness.as_ref().map(|r| &r.check) {
            Some(check @ (ReadinessCheck::File(_) | ReadinessCheck::Tcp(_))) => probe(check, pid),
            _ => false,
        };
        if passed {
            out.extend(self.ready());
        } else if self.ready_deadline.is_some_and(|t| t <= cx.now) {
            let ms = self.runtime.readiness.as_ref().map_or(0, |r| r.timeout_ms);
            out.push(Action::Say(format!(
                "service {} not ready within {ms}ms; stopping it",
                self.name
            )));
            self.reason = format!("not ready within {ms}ms ({})", self.readiness_name());
            self.wanted = false;
            self.ready_deadline = None;
            out.extend(self.stop(cx));
            let reason = self.reason.clone();
            out.push(self.changed(ServiceState::Failed, reason));
            out.push(Action::Announce);
        }
        out
    }

    /// `hullctl start`: a stopped or failed service waits to start again,
    /// with its start limit reset.
    pub fn request_start(&mut self) -> Result<Vec<Action>, String> {
        if self.pid.is_some() {
            return Err(format!("{} is already running", self.name));
        }
        self.wanted = true;
        self.reason.clear();
        self.reset_backoff();
        self.next_start = None;
        self.current_delay = None;
        Ok(vec![
            self.changed(ServiceState::Waiting, "start requested".into()),
            Action::StartEligible,
        ])
    }

    /// `hullctl stop`: stopped, and it stays stopped.
    pub fn request_stop(&mut self, cx: &Ctx) -> Vec<Action> {
        self.wanted = false;
        self.restart_after_stop = false;
        if self.pid.is_some() {
            if self.state != ServiceState::Stopping {
                return self.stop(cx);
            }
            return Vec::new();
        }
        self.next_start = None;
        self.current_delay = None;
        vec![self.changed(ServiceState::Exited, "stopped".into())]
    }

    /// `hullctl restart`: stopped if it runs, then started again.
    pub fn request_restart(&mut self, cx: &Ctx) -> Vec<Action> {
        self.wanted = true;
        self.reason.clear();
        if self.pid.is_some() {
            self.restart_after_stop = true;
            if self.state != ServiceState::Stopping {
                return self.stop(cx);
            }
            return Vec::new();
        }
        self.reset_backoff();
        self.next_start = None;
        self.current_delay = None;
        self.restarts += 1;
        vec![
            self.changed(ServiceState::Waiting, "restart requested".into()),
            Action::StartEligible,
        ]
    }
}
