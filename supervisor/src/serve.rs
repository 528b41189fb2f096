//! Serves the control API: requests read from a connection go through
//! [`api::answer`], and what follows from them is carried out; [`SysHost`]
//! is the API's [`Host`] on the real system.

use std::collections::BTreeMap;
use std::path::PathBuf;

use contract::control::{Inspect, Reply};
use nix::poll::PollFlags;
use runtime::{Runtime, SignalNumber};

use crate::api::{self, Effect, Host, View};
use crate::control::Incoming;
use crate::event_loop::Token;
use crate::exec::{ExecRequest, Execs};
use crate::service::Service;
use crate::supervise::Handles;
use crate::table::ServiceId;
use crate::{kmsg, Supervisor};

/// The system side of the API: signals through the runtime, exec sessions,
/// the kernel log, what inspect reads from files.
pub struct SysHost<'a> {
    pub runtime: &'a Runtime,
    pub execs: &'a mut Execs,
    pub handles: &'a BTreeMap<ServiceId, Handles>,
}

impl Host for SysHost<'_> {
    fn signal(&mut self, id: ServiceId, sig: SignalNumber) -> Result<(), String> {
        match self.handles.get(&id).and_then(|h| h.running.as_ref()) {
            Some(r) => r.signal(sig).map_err(|e| report::chain(&e)),
            None => Err("not running".into()),
        }
    }

    fn dmesg(&mut self) -> Vec<String> {
        kmsg::read_all()
    }

    fn inspect(&mut self, s: &Service) -> Inspect {
        let read_json = |p: PathBuf| -> serde_json::Value {
            std::fs::read(&p)
                .ok()
                .and_then(|d| serde_json::from_slice(&d).ok())
                .unwrap_or(serde_json::Value::Null)
        };
        // The spec as the runtime got it: the bundle's, as the build wrote it.
        let spec = read_json(s.bundle().join("config.json"));
        let pid = s.pid().map(nix::unistd::Pid::as_raw);
        let mut namespaces = Vec::new();
        if let Some(pid) = pid {
            for kind in ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"] {
                if let Ok(t) = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")) {
                    namespaces.push((kind.to_string(), t.display().to_string()));
                }
            }
        }
        Inspect {
            name: s.name().to_string(),
            bundle: s.bundle().display().to_string(),
            spec,
            runtime: serde_json::to_value(s.runtime()).unwrap_or_default(),
            cgroup: s.cgroup().to_string(),
            cgroup_pids: runtime::cgroup_pids(s.cgroup()),
            namespaces,
            pid,
        }
    }

    fn exec(&mut self, conn: Token, id: u64, req: ExecRequest) -> Result<(), String> {
        self.execs.start(self.runtime, conn, id, req)
    }

    fn stdin(&mut self, conn: Token, id: u64, data: &[u8], eof: bool) -> Result<(), String> {
        self.execs.stdin(conn, id, data, eof)
    }
}

impl Supervisor {
    /// Connection `t` can be read or written.
    pub(crate) fn handle_conn(&mut self, t: Token, ev: PollFlags) {
        let (incoming, hup) = self.clients.read(t, ev);
        if hup {
            // The client (or the port's host side) is gone: so are its execs.
            self.execs.detach(t);
        }
        for inc in incoming {
            match inc {
                Incoming::Request(r) => {
                    let id = r.id;
                    let cx = self.cx();
                    let mut view = View {
                        services: &mut self.services,
                        rings: self.output.rings(),
                        journal: &self.journal,
                        shutting_down: self.stopping_all || self.shutdown.is_some(),
                        cx,
                    };
                    let mut host = SysHost {
                        runtime: &self.runtime,
                        execs: &mut self.execs,
                        handles: &self.handles,
                    };
                    let effects = api::answer(r, t, &mut view, &mut host);
                    self.carry_out(t, id, effects);
                }
                Incoming::Malformed { id, message } => {
                    self.clients.send(t, id, Reply::Error { message })
                }
            }
        }
    }

    fn carry_out(&mut self, t: Token, id: u64, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Reply(reply) => self.clients.send(t, id, reply),
                Effect::Follow(f) => self.clients.follow(t, f),
                Effect::Service(sid, actions) => self.apply(sid, actions),
                Effect::Say(message) => crate::console::say(&message),
                Effect::Shutdown(kind) => self.request_shutdown(kind),
            }
        }
    }
}
