//! What control requests mean. [`answer`] takes one request and returns,
//! in order, what follows from it ([`Effect`]s: replies, services'
//! transitions, a shutdown); what needs the system (signals, the kernel
//! log, a container's spec, exec processes) it asks of a [`Host`]. So the
//! whole API is unit-tested with a fake host and a plain service table
//! (`api/tests.rs`); `serve.rs` connects it to the clients and the system.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use contract::control::{
    Inspect, LogLine, Op, Reply, Request, ServiceState, ServiceStatus, PROTOCOL_VERSION,
};
use runtime::SignalNumber;

use crate::control::Follow;
use crate::event_loop::Token;
use crate::exec::ExecRequest;
use crate::journal::Journal;
use crate::logs::Ring;
use crate::service::{Action, Ctx, Service};
use crate::table::{ServiceId, ServiceTable};
use crate::ShutdownKind;

/// Lines shown in a failed service's status.
const LAST_LINES: usize = 5;

/// What follows from a request, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A response to the request.
    Reply(Reply),
    /// The connection follows a stream from now on (`logs -f`, `events -f`).
    Follow(Follow),
    /// A service's transition, to carry out.
    Service(ServiceId, Vec<Action>),
    /// Print `hull: MESSAGE` on the console.
    Say(String),
    Shutdown(ShutdownKind),
}

/// What the API reads and changes.
pub struct View<'a> {
    pub services: &'a mut ServiceTable,
    pub rings: &'a BTreeMap<String, Ring>,
    pub journal: &'a Journal,
    /// Services are being stopped, or a shutdown was asked for: no starts.
    pub shutting_down: bool,
    pub cx: Ctx,
}

/// What the API needs from the system.
pub trait Host {
    /// Sends `sig` to the main process of service `id`; the error as the user sees it.
    fn signal(&mut self, id: ServiceId, sig: SignalNumber) -> Result<(), String>;
    /// The kernel's log, formatted as `dmesg` does.
    fn dmesg(&mut self) -> Vec<String>;
    /// What `hullctl inspect` shows of `s`.
    fn inspect(&mut self, s: &Service) -> Inspect;
    /// Starts an exec process for request `id` of connection `conn`.
    fn exec(&mut self, conn: Token, id: u64, req: ExecRequest) -> Result<(), String>;
    /// Input for the exec process of request `id` of connection `conn`.
    fn stdin(&mut self, conn: Token, id: u64, data: &[u8], eof: bool) -> Result<(), String>;
}

fn end(message: impl Into<String>) -> Effect {
    Effect::Reply(Reply::End {
        message: message.into(),
    })
}

fn error(message: impl Into<String>) -> Effect {
    Effect::Reply(Reply::Error {
        message: message.into(),
    })
}

fn find(v: &View, name: &str) -> Result<ServiceId, Effect> {
    v.services
        .find(name)
        .ok_or_else(|| error(format!("no service named {name:?}")))
}

/// The line of `hullctl ps` of service `s`.
pub fn status(v: &View, s: &Service) -> ServiceStatus {
    let waiting_for = if s.state() == ServiceState::Waiting {
        v.services.waiting_for(s)
    } else {
        Vec::new()
    };
    let last_lines = if matches!(s.state(), ServiceState::Failed | ServiceState::BackingOff) {
        v.rings
            .get(s.name())
            .map(|r| r.tail(Some(LAST_LINES)).map(|(_, l)| l.clone()).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    s.status(v.cx.now, waiting_for, last_lines)
}

/// The effects of request `r`, received on connection `conn`.
pub fn answer(r: Request, conn: Token, v: &mut View, host: &mut dyn Host) -> Vec<Effect> {
    if r.version != PROTOCOL_VERSION {
        return vec![error(format!(
            "protocol version {} is not supported (this hull-init speaks {PROTOCOL_VERSION})",
            r.version
        ))];
    }
    let id = r.id;
    let result = match r.op {
        Op::Ps => {
            let services = v.services.iter().map(|(_, s)| status(v, s)).collect();
            Ok(vec![Effect::Reply(Reply::Ps { services }), end("")])
        }
        Op::Inspect { name } => find(v, &name).map(|sid| match v.services.get(sid) {
            Some(s) => vec![
                Effect::Reply(Reply::Inspect(Box::new(host.inspect(s)))),
                end(""),
            ],
            None => vec![error(format!("no service named {name:?}"))],
        }),
        Op::Logs { name, follow, tail } => Ok(logs(v, id, name, follow, tail)),
        Op::Events { follow } => {
            let mut out: Vec<Effect> = v
                .journal
                .events()
                .map(|e| Effect::Reply(Reply::Event(e.clone())))
                .collect();
            out.push(if follow {
                Effect::Follow(Follow::Events { id })
            } else {
                end("")
            });
            Ok(out)
        }
        Op::Dmesg => Ok(vec![
            Effect::Reply(Reply::Dmesg {
                lines: host.dmesg(),
            }),
            end(""),
        ]),
        Op::BootTime => Ok(vec![
            Effect::Reply(Reply::BootTime {
                phases: v.journal.boot().to_vec(),
            }),
            end(""),
        ]),
        Op::Shutdown | Op::Reboot => {
            let (kind, what) = if r.op == Op::Shutdown {
                (ShutdownKind::Poweroff, "powering off")
            } else {
                (ShutdownKind::Reboot, "rebooting")
            };
            Ok(vec![
                Effect::Say(format!("{what} (asked through the control API)")),
                end(what),
                Effect::Shutdown(kind),
            ])
        }
        Op::Start { name } => start(v, &name),
        Op::Stop { name } => find(v, &name).map(|sid| {
            let cx = v.cx;
            let actions = v
                .services
                .get_mut(sid)
                .map(|s| s.request_stop(&cx))
                .unwrap_or_default();
            vec![
                Effect::Service(sid, actions),
                end(format!("{name} stopping")),
            ]
        }),
        Op::Restart { name } => find(v, &name).and_then(|sid| {
            if v.shutting_down {
                return Err(error("shutting down"));
            }
            let cx = v.cx;
            let actions = v
                .services
                .get_mut(sid)
                .map(|s| s.request_restart(&cx))
                .unwrap_or_default();
            Ok(vec![
                Effect::Service(sid, actions),
                end(format!("{name} restarting")),
            ])
        }),
        Op::Kill { name, signal } => find(v, &name).and_then(|sid| {
            let Some(sig) = SignalNumber::new(signal) else {
                return Err(error(format!("{signal} is not a signal")));
            };
            if !v.services.get(sid).is_some_and(Service::is_running) {
                return Err(error(format!("{name} is not running")));
            }
            Ok(vec![match host.signal(sid, sig) {
                Ok(()) => end(format!("sent {sig} to {name}")),
                Err(e) => error(e),
            }])
        }),
        Op::Exec {
            name,
            args,
            tty,
            size,
        } => find(v, &name).and_then(|sid| {
            if !v.services.get(sid).is_some_and(Service::is_running) {
                return Err(error(format!("{name} is not running")));
            }
            if args.is_empty() {
                return Err(error("no command given"));
            }
            let req = ExecRequest {
                name,
                args,
                tty,
                size,
            };
            // Its output, exit status and end come later.
            host.exec(conn, id, req).map(|()| Vec::new()).map_err(error)
        }),
        Op::Stdin { data, eof } => host
            .stdin(conn, id, &data, eof)
            .map(|()| Vec::new())
            .map_err(error),
    };
    result.unwrap_or_else(|e| vec![e])
}

fn logs(v: &View, id: u64, name: String, follow: bool, tail: Option<usize>) -> Vec<Effect> {
    let ring = v.rings.get(&name);
    if ring.is_none() && v.services.find(&name).is_none() {
        return vec![error(format!("no container named {name:?}"))];
    }
    let mut out: Vec<Effect> = ring
        .map(|r| {
            r.tail(tail)
                .map(|(t, l)| {
                    Effect::Reply(Reply::Log(LogLine {
                        name: name.clone(),
                        time: *t,
                        line: l.clone(),
                    }))
                })
                .collect()
        })
        .unwrap_or_default();
    out.push(if follow {
        Effect::Follow(Follow::Logs { id, name })
    } else {
        end("")
    });
    out
}

fn start(v: &mut View, name: &str) -> Result<Vec<Effect>, Effect> {
    let sid = find(v, name)?;
    if v.shutting_down {
        return Err(error("shutting down"));
    }
    let Some(s) = v.services.get_mut(sid) else {
        return Err(error(format!("no service named {name:?}")));
    };
    let actions = s.request_start().map_err(error)?;
    Ok(vec![
        Effect::Service(sid, actions),
        end(format!("{name} started")),
    ])
}
