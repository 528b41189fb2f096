//! The control API, request in, effects out: a plain service table, rings
//! and journal, and a fake host that records what it was asked.

use super::*;
use std::time::Instant;

use contract::control::{ExitStatus, Request};
use contract::{Readiness, ReadinessCheck, RestartPolicy, RuntimeJson};
use nix::unistd::Pid;

use crate::event_loop::Registry;

#[derive(Default)]
struct FakeHost {
    signals: Vec<(ServiceId, SignalNumber)>,
    signal_error: Option<String>,
    execs: Vec<(Token, u64, ExecRequest)>,
    exec_error: Option<String>,
}

impl Host for FakeHost {
    fn signal(&mut self, id: ServiceId, sig: SignalNumber) -> Result<(), String> {
        self.signals.push((id, sig));
        self.signal_error.clone().map_or(Ok(()), Err)
    }
    fn dmesg(&mut self) -> Vec<String> {
        vec!["[    0.000000] Linux version 6.1".into()]
    }
    fn inspect(&mut self, s: &Service) -> Inspect {
        Inspect {
            name: s.name().into(),
            bundle: s.bundle().display().to_string(),
            spec: serde_json::Value::Null,
            runtime: serde_json::Value::Null,
            cgroup: s.cgroup().into(),
            cgroup_pids: Vec::new(),
            namespaces: Vec::new(),
            pid: s.pid().map(Pid::as_raw),
        }
    }
    fn exec(&mut self, conn: Token, id: u64, req: ExecRequest) -> Result<(), String> {
        self.execs.push((conn, id, req));
        self.exec_error.clone().map_or(Ok(()), Err)
    }
    fn stdin(&mut self, _: Token, _: u64, _: &[u8], _: bool) -> Result<(), String> {
        Err("no exec session with this id".into())
    }
}

fn cx() -> Ctx {
    Ctx {
        now: Instant::now(),
        jitter: |d| d,
        stopping_all: false,
    }
}

fn service(name: &str, rt: RuntimeJson) -> Service {
    Service::new(
        name.into(),
        format!("/b/{name}").into(),
        rt,
        format!("/c/{name}"),
    )
}

/// web: ready (pid 42); db: running, not ready (notify); worker: waits for
/// db; crashy: failed. Rings for crashy and for an onboot container.
struct World {
    services: ServiceTable,
    rings: BTreeMap<String, Ring>,
    journal: Journal,
    shutting_down: bool,
    host: FakeHost,
    conn: Token,
}

impl World {
    fn new() -> Self {
        let mut services = ServiceTable::default();
        let web = services.push(service("web", RuntimeJson::default()));
        let db = services.push(service(
            "db",
            RuntimeJson {
                readiness: Some(Readiness {
                    check: ReadinessCheck::Notify,
                    timeout_ms: 60_000,
                }),
                ..RuntimeJson::default()
            },
        ));
        services.push(service(
            "worker",
            RuntimeJson {
                depends: vec!["db".into()],
                ..RuntimeJson::default()
            },
        ));
        let crashy = services.push(service(
            "crashy",
            RuntimeJson {
                restart: RestartPolicy::Never,
                ..RuntimeJson::default()
            },
        ));
        for (id, pid) in [(web, 42), (db, 43), (crashy, 44)] {
            let s = services.get_mut(id).unwrap();
            s.start();
            s.spawned(Pid::from_raw(pid), &cx());
        }
        let s = services.get_mut(crashy).unwrap();
        s.exited(Some(ExitStatus::Code(1)), &cx());
        let mut rings = BTreeMap::new();
        let mut r = Ring::default();
        for i in 0..8 {
            r.push(f64::from(i), format!("crashy line {i}"));
        }
        rings.insert("crashy".to_string(), r);
        let mut r = Ring::default();
        r.push(1.5, "formatted /dev/vda".into());
        rings.insert("format".to_string(), r);
        let mut journal = Journal::new(vec![BootPhase {
            name: "kernel".into(),
            start: 0.0,
            duration: 1.5,
        }]);
        journal.record("web", ServiceState::Ready, "started".into());
        World {
            services,
            rings,
            journal,
            shutting_down: false,
            host: FakeHost::default(),
            conn: Registry::default().insert(()),
        }
    }

    fn ask(&mut self, op: Op) -> Vec<Effect> {
        let r = Request {
            version: PROTOCOL_VERSION,
            id: 9,
            op,
        };
        let mut view = View {
            services: &mut self.services,
            rings: &self.rings,
            journal: &self.journal,
            shutting_down: self.shutting_down,
            cx: cx(),
        };
        answer(r, self.conn, &mut view, &mut self.host)
    }

    fn id(&self, name: &str) -> ServiceId {
        self.services.find(name).unwrap()
    }
}

use contract::control::BootPhase;

fn end(message: &str) -> Effect {
    Effect::Reply(Reply::End {
        message: message.into(),
    })
}

fn error(message: &str) -> Effect {
    Effect::Reply(Reply::Error {
        message: message.into(),
    })
}

#[test]
fn ps_lists_every_service_with_what_it_waits_for_and_its_last_lines() {
    let mut w = World::new();
    let out = w.ask(Op::Ps);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1], end(""));
    let Effect::Reply(Reply::Ps { services }) = &out[0] else {
        panic!("{out:?}")
    };
    let names: Vec<_> = services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["web", "db", "worker", "crashy"]);
    let [web, db, worker, crashy] = &services[..] else {
        panic!()
    };
    assert_eq!(
        (web.state, web.pid, web.ready),
        (ServiceState::Ready, Some(42), true)
    );
    assert_eq!((db.state, db.ready), (ServiceState::Running, false));
    assert_eq!(db.readiness, "notify");
    assert_eq!(worker.state, ServiceState::Waiting);
    assert_eq!(worker.waiting_for, ["db"]);
    assert_eq!(crashy.state, ServiceState::Failed);
    assert_eq!(crashy.last_exit, Some(ExitStatus::Code(1)));
    assert_eq!(crashy.reason, "exit code 1; restart policy Never");
    assert_eq!(
        crashy.last_lines,
        (3..8)
            .map(|i| format!("crashy line {i}"))
            .collect::<Vec<_>>()
    );
    assert!(
        web.last_lines.is_empty(),
        "only a failed service shows its lines"
    );
}

#[test]
fn another_protocol_version_is_refused() {
    let mut w = World::new();
    let mut view = View {
        services: &mut w.services,
        rings: &w.rings,
        journal: &w.journal,
        shutting_down: false,
        cx: cx(),
    };
    let r = Request {
        version: 2,
        id: 1,
        op: Op::Shutdown,
    };
    let out = answer(r, w.conn, &mut view, &mut w.host);
    assert_eq!(
        out,
        [error(
            "protocol version 2 is not supported (this hull-init speaks 1)"
        )]
    );
}

#[test]
fn logs_of_any_container_with_tail_and_follow() {
    let mut w = World::new();
    let log = |line: &str, time: f64| {
        Effect::Reply(Reply::Log(LogLine {
            name: "format".into(),
            time,
            line: line.into(),
        }))
    };
    // An onboot container has logs too, though it is no service.
    let logs = |name: &str, follow, tail| Op::Logs {
        name: name.into(),
        follow,
        tail,
    };
    assert_eq!(
        w.ask(logs("format", false, None)),
        [log("formatted /dev/vda", 1.5), end("")]
    );
    let out = w.ask(logs("crashy", false, Some(2)));
    assert_eq!(out.len(), 3);
    assert_eq!(
        out[1],
        Effect::Reply(Reply::Log(LogLine {
            name: "crashy".into(),
            time: 7.0,
            line: "crashy line 7".into()
        }))
    );
    // A service that printed nothing yet: no lines, and following works.
    assert_eq!(
        w.ask(logs("web", true, None)),
        [Effect::Follow(Follow::Logs {
            id: 9,
            name: "web".into()
        })]
    );
    assert_eq!(
        w.ask(logs("nosuch", false, None)),
        [error("no container named \"nosuch\"")]
    );
}

#[test]
fn events_are_replayed_then_followed() {
    let mut w = World::new();
    let out = w.ask(Op::Events { follow: false });
    assert_eq!(out.len(), 2);
    assert!(
        matches!(&out[0], Effect::Reply(Reply::Event(e)) if e.name == "web" && e.state == ServiceState::Ready)
    );
    assert_eq!(out[1], end(""));
    let out = w.ask(Op::Events { follow: true });
    assert_eq!(out.last(), Some(&Effect::Follow(Follow::Events { id: 9 })));
}

#[test]
fn stop_start_and_restart_become_transitions() {
    let mut w = World::new();
    let web = w.id("web");
    let out = w.ask(Op::Stop { name: "web".into() });
    assert_eq!(
        out,
        [
            Effect::Service(
                web,
                vec![
                    Action::Say("stopping web with SIGTERM".into()),
                    Action::Signal(SignalNumber::TERM),
                    Action::Changed {
                        state: ServiceState::Stopping,
                        detail: "SIGTERM".into()
                    },
                ]
            ),
            end("web stopping"),
        ]
    );
    assert_eq!(
        w.ask(Op::Start { name: "web".into() }),
        [error("web is already running")]
    );
    let crashy = w.id("crashy");
    assert_eq!(
        w.ask(Op::Restart {
            name: "crashy".into()
        }),
        [
            Effect::Service(
                crashy,
                vec![
                    Action::Changed {
                        state: ServiceState::Waiting,
                        detail: "restart requested".into()
                    },
                    Action::StartEligible,
                ]
            ),
            end("crashy restarting"),
        ]
    );
    assert_eq!(
        w.ask(Op::Start {
            name: "nosuch".into()
        }),
        [error("no service named \"nosuch\"")]
    );
}

#[test]
fn nothing_starts_while_shutting_down() {
    let mut w = World::new();
    w.shutting_down = true;
    for op in [
        Op::Start {
            name: "crashy".into(),
        },
        Op::Restart { name: "web".into() },
    ] {
        assert_eq!(w.ask(op), [error("shutting down")]);
    }
    assert_eq!(
        w.services.get(w.id("crashy")).unwrap().state(),
        ServiceState::Failed
    );
    // A stop is still fine.
    assert_eq!(
        w.ask(Op::Stop { name: "web".into() }).last(),
        Some(&end("web stopping"))
    );
}

#[test]
fn kill_checks_the_signal_and_the_process_then_asks_the_host() {
    let mut w = World::new();
    let kill = |name: &str, signal| Op::Kill {
        name: name.into(),
        signal,
    };
    assert_eq!(w.ask(kill("web", 0)), [error("0 is not a signal")]);
    assert_eq!(w.ask(kill("crashy", 10)), [error("crashy is not running")]);
    assert!(w.host.signals.is_empty());
    assert_eq!(w.ask(kill("web", 10)), [end("sent SIGUSR1 to web")]);
    assert_eq!(w.ask(kill("web", 65)), [error("65 is not a signal")]);
    // Real-time signals too.
    assert_eq!(w.ask(kill("web", 36)), [end("sent SIGRTMIN+2 to web")]);
    let sig = |n| SignalNumber::new(n).unwrap();
    assert_eq!(
        w.host.signals,
        [(w.id("web"), sig(10)), (w.id("web"), sig(36))]
    );
    w.host.signal_error = Some("sending SIGUSR1 to container web: ESRCH".into());
    assert_eq!(
        w.ask(kill("web", 10)),
        [error("sending SIGUSR1 to container web: ESRCH")]
    );
}

#[test]
fn exec_is_checked_then_started_by_the_host() {
    let mut w = World::new();
    let exec = |name: &str, args: &[&str]| Op::Exec {
        name: name.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        tty: true,
        size: Some((24, 80)),
    };
    assert_eq!(w.ask(exec("web", &[])), [error("no command given")]);
    assert_eq!(
        w.ask(exec("crashy", &["sh"])),
        [error("crashy is not running")]
    );
    assert_eq!(
        w.ask(exec("nosuch", &["sh"])),
        [error("no service named \"nosuch\"")]
    );
    assert!(w.host.execs.is_empty());
    // Started: its output, exit and end come later, from the session.
    assert!(w.ask(exec("web", &["sh", "-c", "id"])).is_empty());
    assert_eq!(
        w.host.execs,
        [(
            w.conn,
            9,
            ExecRequest {
                name: "web".into(),
                args: vec!["sh".into(), "-c".into(), "id".into()],
                tty: true,
                size: Some((24, 80)),
            }
        )]
    );
    w.host.exec_error = Some("openpty: ENOSPC".into());
    assert_eq!(w.ask(exec("web", &["sh"])), [error("openpty: ENOSPC")]);
    assert_eq!(
        w.ask(Op::Stdin {
            data: b"x".to_vec(),
            eof: false
        }),
        [error("no exec session with this id")]
    );
}

#[test]
fn shutdown_and_reboot_are_said_answered_and_done() {
    let mut w = World::new();
    assert_eq!(
        w.ask(Op::Shutdown),
        [
            Effect::Say("powering off (asked through the control API)".into()),
            end("powering off"),
            Effect::Shutdown(ShutdownKind::Poweroff),
        ]
    );
    assert_eq!(
        w.ask(Op::Reboot).last(),
        Some(&Effect::Shutdown(ShutdownKind::Reboot))
    );
}

#[test]
fn dmesg_boot_time_and_inspect() {
    let mut w = World::new();
    assert_eq!(
        w.ask(Op::Dmesg),
        [
            Effect::Reply(Reply::Dmesg {
                lines: vec!["[    0.000000] Linux version 6.1".into()]
            }),
            end("")
        ]
    );
    let out = w.ask(Op::BootTime);
    assert!(
        matches!(&out[0], Effect::Reply(Reply::BootTime { phases }) if phases.len() == 1 && phases[0].name == "kernel")
    );
    let out = w.ask(Op::Inspect { name: "web".into() });
    assert!(
        matches!(&out[0], Effect::Reply(Reply::Inspect(i)) if i.name == "web" && i.pid == Some(42) && i.cgroup == "/c/web")
    );
    assert_eq!(out[1], end(""));
    assert_eq!(
        w.ask(Op::Inspect {
            name: "format".into()
        }),
        [error("no service named \"format\"")]
    );
}
