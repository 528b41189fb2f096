//! The services together: what depends on what. Which service starts next,
//! which may stop at shutdown, when every service is settled (the ready
//! marker). Plain data, unit-tested.

use contract::control::ServiceState;
use nix::unistd::Pid;

use crate::service::Service;

/// A service's place in the table; services are never removed, so it stays valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId(usize);

/// What to do with the next waiting service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Its dependencies are ready: start it.
    Start(ServiceId),
    /// It depends on something that is no service: it never starts.
    UnknownDependency(ServiceId, String),
}

/// Every service of the image, in the order of `image.json`.
#[derive(Default)]
pub struct ServiceTable {
    services: Vec<Service>,
}

impl ServiceTable {
    pub fn push(&mut self, s: Service) -> ServiceId {
        self.services.push(s);
        ServiceId(self.services.len() - 1)
    }

    pub fn get(&self, id: ServiceId) -> Option<&Service> {
        self.services.get(id.0)
    }

    pub fn get_mut(&mut self, id: ServiceId) -> Option<&mut Service> {
        self.services.get_mut(id.0)
    }

    pub fn find(&self, name: &str) -> Option<ServiceId> {
        self.services
            .iter()
            .position(|s| s.name() == name)
            .map(ServiceId)
    }

    /// The service whose main process is `pid`.
    pub fn by_pid(&self, pid: Pid) -> Option<ServiceId> {
        self.services
            .iter()
            .position(|s| s.pid() == Some(pid))
            .map(ServiceId)
    }

    pub fn ids(&self) -> Vec<ServiceId> {
        (0..self.services.len()).map(ServiceId).collect()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (ServiceId, &Service)> {
        self.services
            .iter()
            .enumerate()
            .map(|(i, s)| (ServiceId(i), s))
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    fn ready(&self, name: &str) -> Option<bool> {
        self.find(name)
            .and_then(|id| self.get(id))
            .map(Service::is_ready)
    }

    /// The first waiting service (in table order) that can be acted on: all
    /// its dependencies are ready, or one of them is unknown. Starting them
    /// one at a time this way gives the order `image.json` lists them in,
    /// as far as their dependencies allow.
    pub fn next_to_start(&self) -> Option<Next> {
        for (id, s) in self.iter() {
            if !s.is_waiting() {
                continue;
            }
            let mut blocked = false;
            let mut unknown = None;
            for d in s.depends() {
                match self.ready(d) {
                    Some(true) => {}
                    Some(false) => blocked = true,
                    None => unknown = Some(d.clone()),
                }
            }
            if let Some(d) = unknown {
                return Some(Next::UnknownDependency(id, d));
            }
            if !blocked {
                return Some(Next::Start(id));
            }
        }
        None
    }

    /// No service is left to be started: each was started, failed, or waits
    /// for one that failed.
    pub fn settled(&self) -> bool {
        let failed = |name: &str| {
            self.find(name)
                .and_then(|id| self.get(id))
                .is_some_and(|d| d.state() == ServiceState::Failed)
        };
        self.services.iter().all(|s| {
            s.started_once()
                || s.state() == ServiceState::Failed
                || s.depends().iter().any(|d| failed(d))
        })
    }

    /// The dependencies of `s` that are not ready (or not services).
    pub fn waiting_for(&self, s: &Service) -> Vec<String> {
        s.depends()
            .iter()
            .filter(|d| self.ready(d) != Some(true))
            .cloned()
            .collect()
    }

    /// Whether a running service depends on `id` (at shutdown, `id` is
    /// stopped only once they have stopped).
    pub fn dependants_running(&self, id: ServiceId) -> bool {
        let Some(name) = self.get(id).map(Service::name) else {
            return false;
        };
        self.services
            .iter()
            .any(|d| d.is_running() && d.depends().iter().any(|x| x == name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{Action, Ctx};
    use contract::RuntimeJson;
    use std::time::{Duration, Instant};

    fn cx() -> Ctx {
        Ctx {
            now: Instant::now(),
            jitter: |d| d,
            stopping_all: false,
        }
    }

    fn svc(name: &str, depends: &[&str]) -> Service {
        let rt = RuntimeJson {
            depends: depends.iter().map(|d| d.to_string()).collect(),
            ..RuntimeJson::default()
        };
        Service::new(name.into(), "/b".into(), rt, "/c".into())
    }

    /// Starts (and, having no readiness check, readies) the service.
    fn run(t: &mut ServiceTable, id: ServiceId, pid: i32) {
        let s = t.get_mut(id).unwrap();
        s.start();
        s.spawned(Pid::from_raw(pid), &cx());
    }

    /// Drives the table the way the supervisor does: the next eligible
    /// service is started, until none is left; returns the names in order.
    fn start_all(t: &mut ServiceTable) -> Vec<String> {
        let mut order = Vec::new();
        let mut pid = 100;
        while let Some(next) = t.next_to_start() {
            match next {
                Next::Start(id) => {
                    pid += 1;
                    run(t, id, pid);
                    order.push(t.get(id).unwrap().name().to_string());
                }
                Next::UnknownDependency(id, d) => {
                    t.get_mut(id).unwrap().unknown_dependency(&d);
                }
            }
        }
        order
    }

    #[test]
    fn services_start_after_their_dependencies_in_table_order() {
        let mut t = ServiceTable::default();
        t.push(svc("web", &["db", "cache"]));
        t.push(svc("db", &[]));
        t.push(svc("worker", &["db"]));
        t.push(svc("cache", &[]));
        assert_eq!(start_all(&mut t), ["db", "worker", "cache", "web"]);
        assert!(t.settled());
    }

    #[test]
    fn a_service_waits_until_its_dependency_is_ready() {
        let mut t = ServiceTable::default();
        let rt = RuntimeJson {
            readiness: Some(contract::Readiness {
                check: contract::ReadinessCheck::Notify,
                timeout_ms: 1000,
            }),
            ..RuntimeJson::default()
        };
        let db = t.push(Service::new("db".into(), "/b".into(), rt, "/c".into()));
        let web = t.push(svc("web", &["db"]));
        assert_eq!(t.next_to_start(), Some(Next::Start(db)));
        run(&mut t, db, 10);
        // Running, not ready: web waits for it, and the boot is not settled.
        assert_eq!(t.next_to_start(), None);
        assert_eq!(t.waiting_for(t.get(web).unwrap()), ["db"]);
        assert!(!t.settled());
        let actions = t.get_mut(db).unwrap().ready();
        assert!(actions.contains(&Action::StartEligible));
        assert_eq!(t.next_to_start(), Some(Next::Start(web)));
        assert!(t.waiting_for(t.get(web).unwrap()).is_empty());
    }

    #[test]
    fn an_unknown_dependency_fails_the_service_and_settles_it() {
        let mut t = ServiceTable::default();
        let web = t.push(svc("web", &["nosuch"]));
        let after = t.push(svc("after", &["web"]));
        assert_eq!(
            t.next_to_start(),
            Some(Next::UnknownDependency(web, "nosuch".into()))
        );
        assert!(start_all(&mut t).is_empty());
        assert_eq!(t.get(web).unwrap().state(), ServiceState::Failed);
        // `after` never starts, but waits for a failed service: settled.
        assert_eq!(t.get(after).unwrap().state(), ServiceState::Waiting);
        assert!(t.settled());
    }

    #[test]
    fn a_stopped_service_is_not_started_again() {
        let mut t = ServiceTable::default();
        let a = t.push(svc("a", &[]));
        run(&mut t, a, 5);
        let s = t.get_mut(a).unwrap();
        s.request_stop(&cx());
        s.exited(Some(contract::control::ExitStatus::Code(0)), &cx());
        assert_eq!(s.state(), ServiceState::Exited);
        assert_eq!(t.next_to_start(), None);
    }

    #[test]
    fn at_shutdown_a_service_waits_for_its_running_dependants() {
        let mut t = ServiceTable::default();
        let db = t.push(svc("db", &[]));
        let web = t.push(svc("web", &["db"]));
        start_all(&mut t);
        assert!(t.dependants_running(db));
        assert!(!t.dependants_running(web));
        let now = Instant::now();
        let s = t.get_mut(web).unwrap();
        s.stop_by(now + Duration::from_secs(1), &cx());
        assert!(t.dependants_running(db), "web is stopping, not gone");
        let s = t.get_mut(web).unwrap();
        s.exited(Some(contract::control::ExitStatus::Code(0)), &cx());
        assert!(!t.dependants_running(db));
        assert_eq!(t.by_pid(Pid::from_raw(101)), Some(db));
        assert_eq!(t.by_pid(Pid::from_raw(102)), None);
    }
}
