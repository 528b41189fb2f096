//! What happened so far, for `hullctl events` and `hullctl boot-time`: the
//! last state changes of the services and the phases of the boot.

use std::collections::VecDeque;

use contract::control::{BootPhase, Event, ServiceState};

use crate::uptime;

/// State changes kept for `hullctl events`.
const EVENTS_KEPT: usize = 1000;

pub struct Journal {
    events: VecDeque<Event>,
    boot: Vec<BootPhase>,
    /// The ready marker was printed.
    announced: bool,
}

impl Journal {
    /// Starts with the phases before the supervisor (kernel, stage 1, ...).
    pub fn new(boot: Vec<BootPhase>) -> Self {
        Journal {
            events: VecDeque::new(),
            boot,
            announced: false,
        }
    }

    /// Records a state change of service `name`, now; returns it.
    pub fn record(&mut self, name: &str, state: ServiceState, detail: String) -> Event {
        let ev = Event {
            time: uptime(),
            name: name.to_string(),
            state,
            detail,
        };
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(ev.clone());
        ev
    }

    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter()
    }

    /// Records a phase of the boot (or a container start).
    pub fn phase(&mut self, name: String, start: f64, duration: f64) {
        self.boot.push(BootPhase {
            name,
            start,
            duration,
        });
    }

    pub fn boot(&self) -> &[BootPhase] {
        &self.boot
    }

    /// True the first time only: the ready marker is printed once.
    pub fn announce(&mut self) -> bool {
        !std::mem::replace(&mut self.announced, true)
    }

    pub fn announced(&self) -> bool {
        self.announced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_bounded_and_kept_in_order() {
        let mut j = Journal::new(Vec::new());
        for i in 0..EVENTS_KEPT + 3 {
            j.record(&format!("s{i}"), ServiceState::Running, String::new());
        }
        let names: Vec<_> = j.events().map(|e| e.name.as_str()).collect();
        assert_eq!(names.len(), EVENTS_KEPT);
        assert_eq!(names[0], "s3");
        assert!(j.announce());
        assert!(!j.announce(), "announced once");
    }
}
