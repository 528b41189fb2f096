//! The restart policy and every transition of a service's life, without a
//! single system call: each test drives a [`Service`] through its methods
//! at chosen times and checks the state and the actions it asks for.

use super::*;
use contract::Readiness;
use runtime::SignalNumber;

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

// ---- transitions ----

/// A clock for one test: `t.at(ms)` is the context `ms` milliseconds after its start.
struct Clock(Instant);

impl Clock {
    fn new() -> Self {
        Clock(Instant::now())
    }
    fn at(&self, ms: u64) -> Ctx {
        Ctx {
            now: self.0 + Duration::from_millis(ms),
            jitter: |d| d,
            stopping_all: false,
        }
    }
    fn stopping_at(&self, ms: u64) -> Ctx {
        Ctx {
            stopping_all: true,
            ..self.at(ms)
        }
    }
}

fn say(text: &str) -> Action {
    Action::Say(text.into())
}

fn changed(state: ServiceState, detail: &str) -> Action {
    Action::Changed {
        state,
        detail: detail.into(),
    }
}

fn with_readiness(mut s: Service, check: ReadinessCheck) -> Service {
    s.runtime.readiness = Some(Readiness {
        check,
        timeout_ms: 1000,
    });
    s
}

/// Started at time 0 as pid 42.
fn running(mut s: Service, clock: &Clock) -> Service {
    s.start();
    s.spawned(Pid::from_raw(42), &clock.at(0));
    s
}

fn no_probe(_: &ReadinessCheck, _: Pid) -> bool {
    panic!("no readiness check expected")
}

#[test]
fn a_service_without_a_check_is_ready_once_it_runs() {
    let clock = Clock::new();
    let mut s = svc(RestartPolicy::OnFailure);
    assert_eq!(s.state(), ServiceState::Waiting);
    assert!(s.is_waiting());
    assert_eq!(
        s.start(),
        [changed(ServiceState::Starting, ""), Action::Spawn]
    );
    assert_eq!(s.start_phase(), "service s");
    assert_eq!(
        s.spawned(Pid::from_raw(42), &clock.at(0)),
        [
            say("service s started (pid 42)"),
            changed(ServiceState::Running, "pid 42"),
            changed(ServiceState::Ready, "started"),
            Action::StartEligible,
        ]
    );
    assert_eq!(s.state(), ServiceState::Ready);
    assert!(s.is_ready() && s.started_once());
    assert_eq!(s.pid(), Some(Pid::from_raw(42)));
    let st = s.status(clock.at(1500).now, Vec::new(), Vec::new());
    assert_eq!(
        (st.pid, st.uptime_ms, st.ready),
        (Some(42), Some(1500), true)
    );
    assert_eq!(st.readiness, "started");
}

#[test]
fn a_notify_service_is_ready_when_it_says_so() {
    let clock = Clock::new();
    let mut s = with_readiness(svc(RestartPolicy::OnFailure), ReadinessCheck::Notify);
    assert!(s.uses_notify() && !s.probes_readiness());
    s.start();
    assert_eq!(
        s.spawned(Pid::from_raw(7), &clock.at(0)),
        [
            say("service s started (pid 7)"),
            changed(ServiceState::Running, "pid 7")
        ]
    );
    assert!(!s.is_ready());
    assert_eq!(
        s.timers()[1],
        Some(clock.at(1000).now),
        "readiness deadline"
    );
    assert_eq!(
        s.ready(),
        [
            say("service s is ready (notify)"),
            changed(ServiceState::Ready, "notify"),
            Action::StartEligible,
        ]
    );
    assert_eq!(s.timers()[1], None);
    assert!(s.ready().is_empty(), "ready once");
}

#[test]
fn a_file_check_is_probed_until_it_passes() {
    let clock = Clock::new();
    let s = with_readiness(
        svc(RestartPolicy::OnFailure),
        ReadinessCheck::File("/run/ok".into()),
    );
    let mut s = running(s, &clock);
    assert!(s.probes_readiness());
    let mut asked = Vec::new();
    let out = s.tick(&clock.at(100), |c, pid| {
        asked.push((c.clone(), pid));
        false
    });
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(
        asked,
        [(ReadinessCheck::File("/run/ok".into()), Pid::from_raw(42))]
    );
    let out = s.tick(&clock.at(200), |_, _| true);
    assert_eq!(
        out,
        [
            say("service s is ready (file:/run/ok)"),
            changed(ServiceState::Ready, "file:/run/ok"),
            Action::StartEligible,
        ]
    );
    assert!(!s.probes_readiness());
    assert!(s.tick(&clock.at(300), no_probe).is_empty());
}

#[test]
fn a_readiness_timeout_stops_and_fails_the_service() {
    let clock = Clock::new();
    let s = with_readiness(svc(RestartPolicy::Always), ReadinessCheck::Tcp(80));
    let mut s = running(s, &clock);
    let out = s.tick(&clock.at(1000), |_, _| false);
    assert_eq!(
        out,
        [
            say("service s not ready within 1000ms; stopping it"),
            say("stopping s with SIGTERM"),
            Action::Signal(SignalNumber::TERM),
            changed(ServiceState::Stopping, "SIGTERM"),
            changed(ServiceState::Failed, "not ready within 1000ms (tcp:80)"),
            Action::Announce,
        ]
    );
    // It exits: it stays down, whatever its policy.
    let out = s.exited(Some(ExitStatus::Code(0)), &clock.at(1100));
    assert_eq!(
        out.last(),
        Some(&changed(ServiceState::Exited, "exit code 0"))
    );
    assert!(s.timers().iter().all(Option::is_none));
}

#[test]
fn a_failure_backs_off_then_starts_again_when_due() {
    let clock = Clock::new();
    let mut s = running(svc(RestartPolicy::OnFailure), &clock);
    assert_eq!(
        s.exited(Some(ExitStatus::Code(1)), &clock.at(500)),
        [
            Action::Cleanup,
            say("service s exited with exit code 1 after 0.5s"),
            say("service s restarts in 0.10s"),
            changed(ServiceState::BackingOff, "exit code 1; next start in 100ms"),
        ]
    );
    assert_eq!(s.pid(), None);
    assert_eq!(s.timers()[0], Some(clock.at(600).now));
    let st = s.status(clock.at(550).now, Vec::new(), vec!["last words".into()]);
    assert_eq!(st.restart_delay_ms, Some(100));
    assert_eq!(st.restarts, 1);
    assert_eq!(st.last_exit, Some(ExitStatus::Code(1)));
    assert_eq!(st.last_lines, ["last words"]);
    assert!(s.tick(&clock.at(599), no_probe).is_empty(), "not due yet");
    assert_eq!(
        s.tick(&clock.at(600), no_probe),
        [changed(ServiceState::Starting, ""), Action::Spawn]
    );
    assert_eq!(s.start_phase(), "service s (restart 1)");
    s.spawned(Pid::from_raw(43), &clock.at(600));
    assert_eq!(s.timers(), [None, None, None]);
    assert_eq!(
        s.status(clock.at(700).now, Vec::new(), Vec::new())
            .restart_delay_ms,
        None
    );
}

#[test]
fn each_policy_decides_what_follows_an_exit() {
    let clock = Clock::new();
    let last = |policy, exit| {
        let mut s = running(svc(policy), &clock);
        let out = s.exited(exit, &clock.at(100));
        (s.state(), s.reason.clone(), out.last().cloned())
    };
    let (state, reason, _) = last(RestartPolicy::OnFailure, Some(ExitStatus::Code(0)));
    assert_eq!((state, reason.as_str()), (ServiceState::Exited, ""));
    let (state, reason, _) = last(RestartPolicy::Never, Some(ExitStatus::Code(2)));
    assert_eq!(state, ServiceState::Failed);
    assert_eq!(reason, "exit code 2; restart policy Never");
    let (state, _, _) = last(RestartPolicy::Never, Some(ExitStatus::Code(0)));
    assert_eq!(state, ServiceState::Exited);
    let (state, _, _) = last(RestartPolicy::Always, Some(ExitStatus::Code(0)));
    assert_eq!(state, ServiceState::BackingOff);
    let (state, _, _) = last(RestartPolicy::OnFailure, Some(ExitStatus::Signal(9)));
    assert_eq!(state, ServiceState::BackingOff);
}

#[test]
fn quick_failures_reach_the_start_limit() {
    let clock = Clock::new();
    let mut s = svc(RestartPolicy::OnFailure);
    let mut details = Vec::new();
    let mut last = Vec::new();
    let mut t = 0;
    for pid in 1..=4 {
        s.start();
        s.spawned(Pid::from_raw(pid), &clock.at(t));
        t += 10;
        last = s.exited(Some(ExitStatus::Code(1)), &clock.at(t));
        for a in &last {
            if let Action::Changed { detail, .. } = a {
                details.push(detail.clone());
            }
        }
        t += 1000;
    }
    assert_eq!(
        details,
        [
            "exit code 1; next start in 100ms",
            "exit code 1; next start in 200ms",
            "exit code 1; next start in 350ms",
            "exit code 1",
        ]
    );
    assert_eq!(s.state(), ServiceState::Failed);
    assert_eq!(
        s.reason,
        "start limit reached (3 restarts in a row); last: exit code 1"
    );
    assert!(last.contains(&say("service s failed 3 times in a row; not restarting it")));
    // The ready marker may be due now that this service is settled.
    assert_eq!(last.last(), Some(&Action::Announce));
    assert_eq!(s.timers(), [None, None, None]);
}

#[test]
fn a_stop_signals_waits_the_grace_period_then_kills() {
    let clock = Clock::new();
    let mut s = svc(RestartPolicy::Always);
    s.runtime.stop_signal = 2;
    s.runtime.stop_grace_ms = 3000;
    let mut s = running(s, &clock);
    assert_eq!(
        s.request_stop(&clock.at(100)),
        [
            say("stopping s with SIGINT"),
            Action::Signal(SignalNumber::new(2).unwrap()),
            changed(ServiceState::Stopping, "SIGINT"),
        ]
    );
    assert!(
        s.request_stop(&clock.at(200)).is_empty(),
        "already stopping"
    );
    assert!(s.tick(&clock.at(3099), no_probe).is_empty());
    assert_eq!(
        s.tick(&clock.at(3100), no_probe),
        [say("s did not stop in time; killing it"), Action::Kill]
    );
    assert!(s.tick(&clock.at(5000), no_probe).is_empty(), "killed once");
    // Stopped by hand: not restarted, whatever the policy.
    let out = s.exited(Some(ExitStatus::Signal(9)), &clock.at(3200));
    assert_eq!(
        out,
        [
            Action::Cleanup,
            say("service s exited with signal 9 after 3.2s"),
            changed(ServiceState::Exited, "signal 9"),
        ]
    );
    assert!(!s.is_waiting());
}

#[test]
fn the_stop_signal_may_be_a_real_time_one_and_a_bad_one_is_sigterm() {
    let clock = Clock::new();
    let mut s = svc(RestartPolicy::Always);
    s.runtime.stop_signal = 37;
    let mut s = running(s, &clock);
    assert_eq!(
        s.stop(&clock.at(0)),
        [
            say("stopping s with SIGRTMIN+3"),
            Action::Signal(SignalNumber::new(37).unwrap()),
            changed(ServiceState::Stopping, "SIGRTMIN+3"),
        ]
    );
    let mut s = svc(RestartPolicy::Always);
    s.runtime.stop_signal = 99;
    let mut s = running(s, &clock);
    assert!(s
        .stop(&clock.at(0))
        .contains(&Action::Signal(SignalNumber::TERM)));
}

#[test]
fn a_stop_at_shutdown_kills_by_the_deadline() {
    let clock = Clock::new();
    let mut s = running(svc(RestartPolicy::Always), &clock);
    let deadline = clock.at(2000).now;
    let out = s.stop_by(deadline, &clock.at(0));
    assert!(out.contains(&Action::Signal(SignalNumber::TERM)));
    assert_eq!(
        s.timers()[2],
        Some(deadline),
        "10 s grace cut to the deadline"
    );
    assert!(s.kill_if_due(clock.at(1999).now).is_empty());
    assert_eq!(
        s.kill_if_due(deadline),
        [say("s did not stop in time; killing it"), Action::Kill]
    );
    let out = s.exited(Some(ExitStatus::Code(1)), &clock.stopping_at(2100));
    assert_eq!(
        out.last(),
        Some(&changed(ServiceState::Exited, "exit code 1"))
    );
    assert!(s.kill().is_empty(), "nothing left to kill");
}

#[test]
fn nothing_restarts_while_everything_stops() {
    let clock = Clock::new();
    let mut s = running(svc(RestartPolicy::Always), &clock);
    let out = s.exited(Some(ExitStatus::Code(1)), &clock.stopping_at(100));
    assert_eq!(
        out.last(),
        Some(&changed(ServiceState::Exited, "exit code 1"))
    );
    assert_eq!(s.timers(), [None, None, None]);
}

#[test]
fn a_restart_by_hand_stops_then_starts_again() {
    let clock = Clock::new();
    let mut s = running(svc(RestartPolicy::Never), &clock);
    let out = s.request_restart(&clock.at(100));
    assert_eq!(
        out.last(),
        Some(&changed(ServiceState::Stopping, "SIGTERM"))
    );
    assert_eq!(
        s.exited(Some(ExitStatus::Code(0)), &clock.at(200)),
        [
            Action::Cleanup,
            say("service s exited with exit code 0 after 0.2s"),
            changed(ServiceState::Waiting, "exit code 0"),
            Action::StartEligible,
        ]
    );
    assert!(s.is_waiting());
    assert_eq!(s.start_phase(), "service s (restart 1)");
    // Not running: it waits to start at once.
    let mut s = svc(RestartPolicy::Never);
    assert_eq!(
        s.request_restart(&clock.at(0)),
        [
            changed(ServiceState::Waiting, "restart requested"),
            Action::StartEligible
        ]
    );
}

#[test]
fn start_by_hand_refuses_a_running_service_and_resets_a_failed_one() {
    let clock = Clock::new();
    let mut s = running(svc(RestartPolicy::Never), &clock);
    assert_eq!(s.request_start(), Err("s is already running".to_string()));
    s.exited(Some(ExitStatus::Code(3)), &clock.at(100));
    assert_eq!(s.state(), ServiceState::Failed);
    assert_eq!(
        s.request_start(),
        Ok(vec![
            changed(ServiceState::Waiting, "start requested"),
            Action::StartEligible
        ])
    );
    assert!(s.is_waiting());
    assert_eq!(s.reason, "");
}

#[test]
fn a_stopped_service_that_is_not_running_is_marked_exited() {
    let clock = Clock::new();
    let mut s = svc(RestartPolicy::OnFailure);
    assert_eq!(
        s.request_stop(&clock.at(0)),
        [changed(ServiceState::Exited, "stopped")]
    );
    assert!(!s.is_waiting(), "a stopped service is not started");
}

#[test]
fn a_container_that_cannot_be_created_counts_as_a_failure() {
    let clock = Clock::new();
    let mut s = svc(RestartPolicy::OnFailure);
    s.start();
    assert_eq!(
        s.spawn_failed("creating container s: boom".into(), &clock.at(0)),
        [
            say("service s failed to start: creating container s: boom"),
            Action::Cleanup,
            say("service s restarts in 0.10s"),
            changed(
                ServiceState::BackingOff,
                "creating container s: boom; next start in 100ms"
            ),
        ]
    );
    assert!(s.started_once());
    let mut s = svc(RestartPolicy::Never);
    s.start();
    let out = s.spawn_failed("boom".into(), &clock.at(0));
    assert_eq!(out.last(), Some(&changed(ServiceState::Failed, "boom")));
}

#[test]
fn a_service_that_cannot_load_or_has_an_unknown_dependency_fails() {
    let mut s = svc(RestartPolicy::OnFailure);
    assert_eq!(
        s.cannot_load("parsing runtime.json: bad".into()),
        [say("service s cannot start: parsing runtime.json: bad")]
    );
    assert_eq!(s.state(), ServiceState::Failed);
    assert!(!s.is_waiting());
    let mut s = svc(RestartPolicy::OnFailure);
    assert_eq!(
        s.unknown_dependency("db"),
        [
            say("service s depends on db, which is not a service; not starting it"),
            changed(ServiceState::Failed, "unknown dependency db"),
        ]
    );
    assert_eq!(s.reason, "depends on unknown service db");
}
