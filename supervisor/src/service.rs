//! One supervised service: its lifecycle state and the restart policy, kept
//! free of system calls so the policy is unit-tested.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use contract::control::{ExitStatus, ServiceState};
use contract::{ReadinessCheck, RestartPolicy, RuntimeJson};
use runtime::Running;

/// A service that ran this long without exiting gets its delay and its count
/// of quick failures reset.
pub const STABLE_AFTER: Duration = Duration::from_secs(10);

pub struct Service {
    pub name: String,
    pub bundle: PathBuf,
    pub runtime: RuntimeJson,
    /// The cgroup (the spec's `cgroupsPath`), relative to /sys/fs/cgroup.
    pub cgroup: String,
    pub state: ServiceState,
    pub running: Option<Running>,
    pub started_at: Instant,
    /// When the next start is due (state backing-off).
    pub next_start: Option<Instant>,
    /// The delay the next restart will wait (before jitter).
    pub delay: Duration,
    pub quick_failures: u32,
    pub restarts: u32,
    pub started_once: bool,
    pub last_exit: Option<ExitStatus>,
    pub ready: bool,
    pub ready_deadline: Option<Instant>,
    /// SIGKILL to the whole cgroup is due at this time (state stopping).
    pub kill_at: Option<Instant>,
    /// False after `hullctl stop`: an exit is not followed by a restart.
    pub wanted: bool,
    /// Start again as soon as the process has exited (`hullctl restart`).
    pub restart_after_stop: bool,
    pub reason: String,
    pub notify: Option<UnixDatagram>,
    /// The delay the current backing-off waits, jitter included (for `ps`).
    pub current_delay: Option<Duration>,
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
            running: None,
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
            notify: None,
            current_delay: None,
        }
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

    /// Back to the initial delay and count (a `start` or `restart` by hand).
    pub fn reset_backoff(&mut self) {
        self.delay = Duration::from_millis(self.runtime.backoff_initial_ms);
        self.quick_failures = 0;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(policy: RestartPolicy) -> Service {
        let rt = RuntimeJson {
            restart: policy,
            start_limit: 3,
            backoff_initial_ms: 100,
            backoff_max_ms: 350,
            ..RuntimeJson::default()
        };
        Service::new("s".into(), "/b".into(), rt, "/c".into())
    }

    const QUICK: Duration = Duration::from_secs(1);

    #[test]
    fn delays_double_up_to_the_max_then_the_start_limit_gives_up() {
        let mut s = svc(RestartPolicy::OnFailure);
        let fail = Some(ExitStatus::Code(1));
        let ms = |d: Decision| match d {
            Decision::Restart(d) => d.as_millis(),
            other => panic!("{other:?}"),
        };
        assert_eq!(ms(decide(&mut s, fail, QUICK)), 100);
        assert_eq!(ms(decide(&mut s, fail, QUICK)), 200);
        assert_eq!(ms(decide(&mut s, fail, QUICK)), 350);
        assert_eq!(decide(&mut s, fail, QUICK), Decision::GiveUp);
    }

    #[test]
    fn a_stable_run_resets_the_count() {
        let mut s = svc(RestartPolicy::OnFailure);
        let fail = Some(ExitStatus::Signal(9));
        for _ in 0..3 {
            decide(&mut s, fail, QUICK);
        }
        assert_eq!(
            decide(&mut s, fail, STABLE_AFTER),
            Decision::Restart(Duration::from_millis(100))
        );
    }

    #[test]
    fn policies() {
        let ok = Some(ExitStatus::Code(0));
        assert_eq!(
            decide(&mut svc(RestartPolicy::OnFailure), ok, QUICK),
            Decision::Done
        );
        assert!(matches!(
            decide(&mut svc(RestartPolicy::Always), ok, QUICK),
            Decision::Restart(_)
        ));
        assert_eq!(
            decide(&mut svc(RestartPolicy::Never), None, QUICK),
            Decision::Done
        );
        assert!(matches!(
            decide(&mut svc(RestartPolicy::OnFailure), None, QUICK),
            Decision::Restart(_)
        ));
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jitter(Duration::from_millis(1000)).as_millis();
            assert!((900..=1100).contains(&d), "{d}");
        }
    }
}
