//! Carries out what the services' transitions ask for ([`Action`]s):
//! creating containers, signalling and killing them, cleaning up after
//! them, publishing state changes, starting services in dependency order
//! and printing the ready marker. The only file where a service's life
//! meets system calls.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Instant;

use contract::control::{ExitStatus, ServiceState};
use contract::{ContainerRef, RestartPolicy, RuntimeJson, READY_MARKER};
use runtime::{Running, SignalNumber};

use crate::service::{self, Action, Ctx, Service};
use crate::table::{Next, ServiceId};
use crate::{console, readiness, uptime, Supervisor, SupervisorError};

/// The system side of one service.
#[derive(Default)]
pub struct Handles {
    /// Its container, while it runs.
    pub running: Option<Running>,
    /// Its sd_notify socket (readiness `notify`), while it runs.
    pub notify: Option<UnixDatagram>,
}

/// `linux.cgroupsPath` of a bundle's config.json.
fn cgroup_of(bundle: &Path) -> String {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok())
        .and_then(|v| {
            v.pointer("/linux/cgroupsPath")
                .and_then(|p| p.as_str())
                .map(String::from)
        })
        .unwrap_or_default()
}

impl Supervisor {
    /// What the services' transitions need to know now.
    pub(crate) fn cx(&self) -> Ctx {
        Ctx {
            now: Instant::now(),
            jitter: service::jitter,
            stopping_all: self.stopping_all,
        }
    }

    /// Adds a service of the image; one whose `runtime.json` cannot be read
    /// is failed at once.
    pub(crate) fn add_service(&mut self, c: &ContainerRef) {
        let bundle = PathBuf::from(&c.bundle);
        let (rt, reason) = match runtime::load_runtime_json(&bundle) {
            Ok(rt) => (rt, None),
            Err(e) => (
                RuntimeJson {
                    restart: RestartPolicy::Never,
                    ..RuntimeJson::default()
                },
                Some(report::chain(&e)),
            ),
        };
        let cgroup = cgroup_of(&bundle);
        self.output.set_console(&c.name, rt.console_log);
        let mut s = Service::new(c.name.clone(), bundle, rt, cgroup);
        let actions = reason.map(|r| s.cannot_load(r)).unwrap_or_default();
        let id = self.services.push(s);
        self.handles.insert(id, Handles::default());
        self.apply(id, actions);
    }

    /// Carries out the actions of one of service `id`'s transitions, in order.
    pub(crate) fn apply(&mut self, id: ServiceId, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Say(message) => console::say(&message),
                Action::Changed { state, detail } => self.publish(id, state, detail),
                Action::Spawn => self.spawn(id),
                Action::Signal(sig) => {
                    if let Some(r) = self.running(id) {
                        let _ = r.signal(sig);
                    }
                }
                Action::Kill => self.kill(id),
                Action::Cleanup => self.cleanup(id),
                Action::StartEligible => self.start_eligible(),
                Action::Announce => self.maybe_announce(),
            }
        }
    }

    fn running(&self, id: ServiceId) -> Option<&Running> {
        self.handles.get(&id).and_then(|h| h.running.as_ref())
    }

    /// Records a state change and sends it to the clients following events.
    fn publish(&mut self, id: ServiceId, state: ServiceState, detail: String) {
        let Some(s) = self.services.get(id) else {
            return;
        };
        let ev = self.journal.record(s.name(), state, detail);
        self.clients.broadcast_event(&ev);
    }

    /// Creates and starts service `id`'s container, with its notify socket
    /// when its readiness is `notify`, and records the start as a boot phase.
    fn spawn(&mut self, id: ServiceId) {
        let Some(s) = self.services.get(id) else {
            return;
        };
        let t0 = uptime();
        let phase = s.start_phase();
        let (name, bundle, rt) = (
            s.name().to_string(),
            s.bundle().to_path_buf(),
            s.runtime().clone(),
        );
        // The bundle binds the socket's folder and sets NOTIFY_SOCKET (the
        // build wrote both); the socket itself is made anew for each start.
        let mut notify_err = None;
        if s.uses_notify() {
            match readiness::notify_socket(&name) {
                Ok(sock) => {
                    if let Some(h) = self.handles.get_mut(&id) {
                        h.notify = Some(sock);
                    }
                }
                Err(source) => {
                    notify_err = Some(SupervisorError::Notify {
                        name: name.clone(),
                        source,
                    })
                }
            }
        }
        let result = match notify_err {
            Some(e) => Err(e),
            None => runtime::prepare(&rt)
                .map_err(SupervisorError::from)
                .and_then(|_| self.start_container(&name, &name, &bundle)),
        };
        self.journal.phase(phase, t0, uptime() - t0);
        let cx = self.cx();
        let actions = match result {
            Ok(running) => {
                let pid = running.pid;
                if let Some(h) = self.handles.get_mut(&id) {
                    h.running = Some(running);
                }
                self.services
                    .get_mut(id)
                    .map(|s| s.spawned(pid, &cx))
                    .unwrap_or_default()
            }
            Err(e) => {
                let reason = report::chain(&e);
                self.services
                    .get_mut(id)
                    .map(|s| s.spawn_failed(reason, &cx))
                    .unwrap_or_default()
            }
        };
        self.apply(id, actions);
    }

    /// Creates the output pipe and starts the container with it.
    pub(crate) fn start_container(
        &mut self,
        id: &str,
        name: &str,
        bundle: &Path,
    ) -> Result<Running, SupervisorError> {
        let stdio = self
            .output
            .open(name)
            .map_err(|errno| SupervisorError::Pipe {
                name: name.to_string(),
                errno,
            })?;
        Ok(self.runtime.start(id, bundle, stdio)?)
    }

    /// SIGKILL to the whole cgroup (so nothing the service forked survives),
    /// or to its main process if that fails.
    fn kill(&mut self, id: ServiceId) {
        let (Some(s), Some(r)) = (self.services.get(id), self.running(id)) else {
            return;
        };
        if !runtime::kill_cgroup(s.cgroup()) {
            let _ = r.signal(SignalNumber::KILL);
        }
    }

    /// The process was reaped (or never started): whatever the service
    /// forked dies with it, and its container and notify socket go.
    fn cleanup(&mut self, id: ServiceId) {
        let Some(h) = self.handles.get_mut(&id) else {
            return;
        };
        h.notify = None;
        let Some(r) = h.running.take() else {
            return;
        };
        let Some(s) = self.services.get(id) else {
            return;
        };
        runtime::kill_cgroup(s.cgroup());
        if let Err(e) = r.delete() {
            say!("cleaning up {}: {}", s.name(), report::chain(&e));
        }
    }

    /// Service `id`'s readiness check passed.
    pub(crate) fn service_ready(&mut self, id: ServiceId) {
        let actions = self
            .services
            .get_mut(id)
            .map(Service::ready)
            .unwrap_or_default();
        self.apply(id, actions);
    }

    /// Service `id`'s main process exited (the reaper says how).
    pub(crate) fn service_exited(&mut self, id: ServiceId, exit: ExitStatus) {
        let cx = self.cx();
        let actions = self
            .services
            .get_mut(id)
            .map(|s| s.exited(Some(exit), &cx))
            .unwrap_or_default();
        self.apply(id, actions);
    }

    /// Starts every waiting service whose dependencies are ready, one after
    /// another (a service without a readiness check is ready as soon as it
    /// runs, so its dependants start in the same pass).
    pub(crate) fn start_eligible(&mut self) {
        // A service ready during the pass asks for another; this one goes on.
        if self.stopping_all || self.starting {
            return;
        }
        self.starting = true;
        while let Some(next) = self.services.next_to_start() {
            let (id, actions) = match next {
                Next::Start(id) => (id, self.services.get_mut(id).map(Service::start)),
                Next::UnknownDependency(id, dep) => (
                    id,
                    self.services
                        .get_mut(id)
                        .map(|s| s.unknown_dependency(&dep)),
                ),
            };
            // Every id the table gives is in it; anything else would loop.
            let Some(actions) = actions else { break };
            self.apply(id, actions);
        }
        self.starting = false;
        self.maybe_announce();
    }

    /// Prints the ready marker once no service is left to be started (each
    /// was started, failed, or waits for one that failed).
    pub(crate) fn maybe_announce(&mut self) {
        if self.journal.announced() || !self.services.settled() {
            return;
        }
        self.journal.announce();
        let now = uptime();
        self.journal.phase("all services started".into(), now, 0.0);
        // The marker is a contract with `hull run qemu --until-ready` and the VM tests.
        say!(
            "{} ({} services) at {now:.3}s since kernel start",
            READY_MARKER.trim_start_matches("hull: "),
            self.services.len(),
        );
    }
}
