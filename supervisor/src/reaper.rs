//! The guest's one reaper: the only `waitpid` outside libcontainer's own
//! synchronous waits. It collects every exited child and routes its status
//! by pid: to the oneshot container being waited for, an exec session, or a
//! service; anything else is an orphan re-parented to PID 1, collected and
//! forgotten.

use contract::control::ExitStatus;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::event_loop::Token;
use crate::exec::Execs;
use crate::table::{ServiceId, ServiceTable};
use crate::Supervisor;

/// Whose child exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Oneshot,
    Exec(Token),
    Service(ServiceId),
    Orphan,
}

/// Finds the owner of `pid`.
pub fn owner(pid: Pid, oneshot: Option<Pid>, execs: &Execs, services: &ServiceTable) -> Owner {
    if oneshot == Some(pid) {
        return Owner::Oneshot;
    }
    if let Some(t) = execs.by_pid(pid) {
        return Owner::Exec(t);
    }
    services.by_pid(pid).map_or(Owner::Orphan, Owner::Service)
}

/// How a process ended, from a wait status (`None`: it did not end).
pub fn exit_of(status: WaitStatus) -> Option<(Pid, ExitStatus)> {
    match status {
        WaitStatus::Exited(pid, code) => Some((pid, ExitStatus::Code(code))),
        WaitStatus::Signaled(pid, sig, _) => Some((pid, ExitStatus::Signal(sig as i32))),
        _ => None,
    }
}

impl Supervisor {
    /// Collects every exited child and routes its status.
    pub(crate) fn reap(&mut self) {
        loop {
            let (pid, exit) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(status) => match exit_of(status) {
                    Some(x) => x,
                    None => continue,
                },
            };
            let oneshot = self.oneshot.map(|(p, _)| p);
            match owner(pid, oneshot, &self.execs, &self.services) {
                Owner::Oneshot => {
                    if let Some((_, slot)) = &mut self.oneshot {
                        *slot = Some(exit);
                    }
                }
                Owner::Exec(t) => self.execs.exited(t, exit),
                Owner::Service(id) => self.service_exited(id, exit),
                Owner::Orphan => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{Ctx, Service};
    use contract::RuntimeJson;
    use nix::sys::signal::Signal;
    use std::time::Instant;

    #[test]
    fn each_status_goes_to_its_owner() {
        let mut services = ServiceTable::default();
        let web = services.push(Service::new(
            "web".into(),
            "/b".into(),
            RuntimeJson::default(),
            "/c".into(),
        ));
        let cx = Ctx {
            now: Instant::now(),
            jitter: |d| d,
            stopping_all: false,
        };
        let s = services.get_mut(web).unwrap();
        s.start();
        s.spawned(Pid::from_raw(42), &cx);
        let execs = Execs::default();
        let p = Pid::from_raw;
        assert_eq!(owner(p(7), Some(p(7)), &execs, &services), Owner::Oneshot);
        assert_eq!(
            owner(p(42), Some(p(7)), &execs, &services),
            Owner::Service(web)
        );
        assert_eq!(owner(p(43), None, &execs, &services), Owner::Orphan);
    }

    #[test]
    fn exits_and_signals_are_told_apart() {
        let p = Pid::from_raw(5);
        assert_eq!(
            exit_of(WaitStatus::Exited(p, 3)),
            Some((p, ExitStatus::Code(3)))
        );
        assert_eq!(
            exit_of(WaitStatus::Signaled(p, Signal::SIGKILL, false)),
            Some((p, ExitStatus::Signal(9)))
        );
        assert_eq!(exit_of(WaitStatus::StillAlive), None);
    }
}
