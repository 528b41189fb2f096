//! The event loop: every file descriptor PID 1 waits on, polled together,
//! and the timers.
//!
//! Each source (a container's output pipe, a control connection, an exec
//! session, a power button) lives in a [`Registry`] under a [`Token`] handed
//! out once and never reused, so a token taken before `poll(2)` still names
//! the same source after others were removed while handling its neighbours.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use contract::ReadinessCheck;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::table::ServiceId;
use crate::{power_button, readiness, ShutdownKind, Supervisor};

/// How often file and TCP readiness checks are tried.
pub const READINESS_POLL: Duration = Duration::from_millis(100);
/// The longest a poll waits when nothing is due.
const IDLE_WAIT: Duration = Duration::from_secs(60);
/// How often devices are looked for while some are still missing.
const DEVICE_RESCAN: Duration = Duration::from_millis(500);

/// The name of one source in a [`Registry`]: valid until that source is
/// removed, never given to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(u64);

/// Sources of one kind, each under its own [`Token`], iterated in the
/// order they were added. A few dozen at most, so a vector kept in token
/// order (tokens only grow) and searched by halves; it is also much less
/// code in PID 1's binary than a map per kind.
#[derive(Debug)]
pub struct Registry<T> {
    next: u64,
    items: Vec<(Token, T)>,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry {
            next: 1,
            items: Vec::new(),
        }
    }
}

impl<T> Registry<T> {
    pub fn insert(&mut self, item: T) -> Token {
        let token = Token(self.next);
        self.next += 1;
        self.items.push((token, item));
        token
    }

    fn position(&self, token: Token) -> Option<usize> {
        self.items.binary_search_by_key(&token, |(t, _)| *t).ok()
    }

    pub fn remove(&mut self, token: Token) -> Option<T> {
        self.position(token).map(|i| self.items.remove(i).1)
    }

    pub fn get(&self, token: Token) -> Option<&T> {
        self.position(token)
            .and_then(|i| self.items.get(i))
            .map(|(_, item)| item)
    }

    pub fn get_mut(&mut self, token: Token) -> Option<&mut T> {
        self.position(token)
            .and_then(|i| self.items.get_mut(i))
            .map(|(_, item)| item)
    }

    pub fn iter(&self) -> impl Iterator<Item = (Token, &T)> {
        self.items.iter().map(|(t, item)| (*t, item))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Token, &mut T)> {
        self.items.iter_mut().map(|(t, item)| (*t, item))
    }

    pub fn tokens(&self) -> Vec<Token> {
        self.items.iter().map(|(t, _)| *t).collect()
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.items.retain(|(_, item)| keep(item));
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// What a polled file descriptor belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Src {
    Signals,
    Button(Token),
    Stream(Token),
    Listener,
    Conn(Token),
    Notify(ServiceId),
    Exec(Token),
}

/// The descriptors of one `poll(2)`, each with its source.
#[derive(Default)]
pub struct PollSet<'a> {
    fds: Vec<PollFd<'a>>,
    srcs: Vec<Src>,
}

impl<'a> PollSet<'a> {
    pub fn add(&mut self, src: Src, fd: BorrowedFd<'a>, events: PollFlags) {
        self.fds.push(PollFd::new(fd, events));
        self.srcs.push(src);
    }

    /// Waits up to `timeout` and returns the sources that have something,
    /// in the order they were added.
    pub fn wait(mut self, timeout: Duration) -> Vec<(Src, PollFlags)> {
        let ms = u16::try_from(timeout.as_millis().min(60_000)).unwrap_or(u16::MAX);
        if nix::poll::poll(&mut self.fds, PollTimeout::from(ms)).is_err() {
            return Vec::new();
        }
        self.srcs
            .into_iter()
            .zip(
                self.fds
                    .iter()
                    .map(|f| f.revents().unwrap_or(PollFlags::empty())),
            )
            .filter(|(_, ev)| !ev.is_empty())
            .collect()
    }
}

impl Supervisor {
    /// Waits up to `timeout` for something to happen and handles it.
    pub(crate) fn pump(&mut self, timeout: Duration) {
        let now = Instant::now();
        let ready = {
            let mut set = PollSet::default();
            set.add(Src::Signals, self.signals.as_fd(), PollFlags::POLLIN);
            for (t, (_, b)) in self.buttons.iter() {
                set.add(Src::Button(t), b.as_fd(), PollFlags::POLLIN);
            }
            self.output.poll_on(&mut set);
            self.clients.poll_on(&mut set, now);
            for (id, h) in &self.handles {
                if let Some(n) = &h.notify {
                    set.add(Src::Notify(*id), n.as_fd(), PollFlags::POLLIN);
                }
            }
            self.execs.poll_on(&mut set);
            set.wait(timeout)
        };
        for (src, ev) in ready {
            self.dispatch(src, ev);
        }
        self.execs.finish(&mut self.clients);
        self.clients.drop_closed();
        if Instant::now() < self.scan_until {
            self.scan_devices();
        }
    }

    fn dispatch(&mut self, src: Src, ev: PollFlags) {
        match src {
            Src::Signals => self.handle_signals(),
            Src::Button(t) => {
                let pressed = self
                    .buttons
                    .get_mut(t)
                    .is_some_and(|(_, f)| power_button::pressed(f));
                if pressed {
                    say!("power button pressed");
                    self.request_shutdown(ShutdownKind::Poweroff);
                }
            }
            Src::Stream(t) => self.output.read(t, &mut self.clients),
            Src::Listener => self.clients.accept_all(),
            Src::Conn(t) => self.handle_conn(t, ev),
            Src::Notify(id) => {
                let ready = self
                    .handles
                    .get(&id)
                    .and_then(|h| h.notify.as_ref())
                    .is_some_and(readiness::notified_ready);
                if ready {
                    self.service_ready(id);
                }
            }
            Src::Exec(t) => self.execs.pump(t, &mut self.clients),
        }
    }

    /// Power buttons and the control port appear asynchronously after their
    /// modules load, so they are looked for during the first seconds.
    pub(crate) fn scan_devices(&mut self) {
        if self.buttons.is_empty() {
            for b in power_button::open_power_buttons(&[]) {
                self.buttons.insert(b);
            }
        }
        self.clients.open_ports();
    }

    /// How long the next poll may wait: until the earliest timer.
    pub(crate) fn next_timer(&self) -> Duration {
        let now = Instant::now();
        let mut t = IDLE_WAIT;
        if now < self.scan_until && (self.buttons.is_empty() || !self.clients.has_ports()) {
            t = DEVICE_RESCAN;
        }
        if let Some(at) = self.clients.recheck_at() {
            t = t.min(at.saturating_duration_since(now));
        }
        for (_, s) in self.services.iter() {
            for at in s.timers().into_iter().flatten() {
                t = t.min(at.saturating_duration_since(now));
            }
            if s.probes_readiness() {
                t = t.min(READINESS_POLL);
            }
        }
        t
    }

    /// Timers: the idle control port, restarts due, readiness checks and
    /// timeouts, stop deadlines.
    pub(crate) fn tick(&mut self) {
        let now = Instant::now();
        self.clients.tick(now);
        for id in self.services.ids() {
            if self.shutdown.is_some() {
                return;
            }
            let cx = self.cx();
            let actions = match self.services.get_mut(id) {
                Some(s) => s.tick(&cx, probe),
                None => continue,
            };
            self.apply(id, actions);
        }
    }
}

/// Runs a file or TCP readiness check of the service whose process is `pid`.
fn probe(check: &ReadinessCheck, pid: nix::unistd::Pid) -> bool {
    match check {
        ReadinessCheck::File(p) => Path::new(p).exists(),
        ReadinessCheck::Tcp(port) => readiness::tcp_accepts(pid.as_raw(), *port),
        ReadinessCheck::Notify => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, OwnedFd};

    #[test]
    fn a_token_keeps_naming_its_item_after_others_are_removed() {
        let mut r = Registry::default();
        let a = r.insert("a");
        let b = r.insert("b");
        let c = r.insert("c");
        assert_eq!(r.remove(b), Some("b"));
        assert_eq!(r.get(a), Some(&"a"));
        assert_eq!(r.get(c), Some(&"c"));
        assert_eq!(r.get(b), None, "a removed token names nothing");
        // A new item never gets a token used before.
        let d = r.insert("d");
        assert!(d != a && d != b && d != c);
        assert_eq!(r.remove(b), None);
        let order: Vec<_> = r.iter().map(|(_, s)| *s).collect();
        assert_eq!(order, ["a", "c", "d"], "iterated in the order added");
        r.retain(|s| *s != "a");
        assert_eq!(r.get(c), Some(&"c"));
        assert_eq!(r.iter().count(), 2);
    }

    fn pipe() -> (OwnedFd, OwnedFd) {
        nix::unistd::pipe().unwrap()
    }

    #[test]
    fn poll_reports_the_token_of_the_ready_source_after_removals() {
        let mut streams: Registry<(OwnedFd, OwnedFd)> = Registry::default();
        let first = streams.insert(pipe());
        let second = streams.insert(pipe());
        let third = streams.insert(pipe());
        // The first goes away, as a stream at EOF does while the loop runs.
        streams.remove(first);
        let (_, w) = streams.get(third).unwrap();
        nix::unistd::write(w, b"x").unwrap();
        let ready = {
            let mut set = PollSet::default();
            for (t, (r, _)) in streams.iter() {
                set.add(Src::Stream(t), r.as_fd(), PollFlags::POLLIN);
            }
            set.wait(Duration::from_secs(5))
        };
        assert_eq!(ready.len(), 1, "{ready:?}");
        assert_eq!(ready[0].0, Src::Stream(third));
        // Removing another source does not change what the token names.
        streams.remove(second);
        let (r, _) = streams.get(third).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(nix::unistd::read(r.as_raw_fd(), &mut buf), Ok(1));
        assert_eq!(&buf, b"x");
    }

    #[test]
    fn an_idle_set_times_out_empty() {
        let (r, _w) = pipe();
        let mut set = PollSet::default();
        set.add(Src::Listener, r.as_fd(), PollFlags::POLLIN);
        assert!(set.wait(Duration::from_millis(10)).is_empty());
    }
}
