//! The way out: onshutdown containers, then every service stopped in
//! reverse dependency order, within a deadline.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use contract::ImageJson;

use crate::{ShutdownKind, Supervisor};

/// A shutdown never takes longer than this, whatever the grace periods say.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);
/// How long after the deadline (and the SIGKILL to everything) the last
/// exits are waited for.
const AFTER_DEADLINE: Duration = Duration::from_secs(2);

impl Supervisor {
    /// The first request wins (a second power button press changes nothing).
    pub(crate) fn request_shutdown(&mut self, kind: ShutdownKind) {
        if self.shutdown.is_none() {
            self.shutdown = Some(kind);
        }
    }

    /// onshutdown containers, then the services in reverse dependency order
    /// (a service is signalled once every service depending on it has
    /// stopped): stop signal, grace period, SIGKILL to its cgroup; bounded by
    /// [`SHUTDOWN_DEADLINE`] in all.
    pub(crate) fn stop_everything(&mut self, image: &ImageJson) {
        let deadline = Instant::now() + SHUTDOWN_DEADLINE;
        self.stopping_all = true;
        say!("shutting down");
        for c in &image.onshutdown {
            if let Err(e) = self.run_oneshot(c, Some(deadline)) {
                say!("onshutdown {} could not run: {}", c.name, report::chain(&e));
            }
        }
        let ids = self.services.ids();
        for &id in &ids {
            if let Some(s) = self.services.get_mut(id) {
                s.cancel_restart();
            }
        }
        self.execs.kill_all();
        let mut signalled = BTreeSet::new();
        loop {
            let now = Instant::now();
            let mut left = false;
            for &id in ids.iter().rev() {
                if !self.services.get(id).is_some_and(|s| s.is_running()) {
                    continue;
                }
                left = true;
                let cx = self.cx();
                let actions = if signalled.contains(&id) {
                    self.services.get_mut(id).map(|s| s.kill_if_due(now))
                } else if !self.services.dependants_running(id) {
                    signalled.insert(id);
                    self.services.get_mut(id).map(|s| s.stop_by(deadline, &cx))
                } else {
                    None
                };
                self.apply(id, actions.unwrap_or_default());
            }
            if !left || now >= deadline + AFTER_DEADLINE {
                break;
            }
            if now >= deadline {
                for &id in &ids {
                    let actions = self.services.get_mut(id).map(|s| s.kill());
                    self.apply(id, actions.unwrap_or_default());
                }
            }
            self.pump(Duration::from_millis(100));
        }
        self.output.drain(&mut self.clients);
        self.clients.flush_all();
    }
}
