//! Every client of the control API at once: the listening socket, the
//! virtio-serial ports, and the open connections under their tokens, with
//! what they follow (`logs -f`, `events -f`).

use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use contract::control::{Event, Reply, Response};
use nix::poll::PollFlags;

use crate::control::{self, Conn, Follow, Incoming, Io};
use crate::event_loop::{PollSet, Registry, Src, Token};

/// How often an idle control port (no host connected) is looked at, in case
/// its SIGIO was missed.
const PORT_RECHECK: Duration = Duration::from_secs(2);

pub struct Clients {
    listener: Option<UnixListener>,
    /// The control ports opened so far (by name).
    ports: Vec<String>,
    conns: Registry<Conn>,
    /// When idle ports are polled again.
    port_recheck: Instant,
}

impl Default for Clients {
    fn default() -> Self {
        Clients {
            listener: None,
            ports: Vec::new(),
            conns: Registry::default(),
            port_recheck: Instant::now(),
        }
    }
}

impl Clients {
    /// Binds the control socket.
    pub fn listen(&mut self, path: &str) -> std::io::Result<()> {
        self.listener = Some(control::listen(path)?);
        Ok(())
    }

    /// Accepts every pending client of the socket.
    pub fn accept_all(&mut self) {
        let Some(l) = &self.listener else { return };
        while let Ok((s, _)) = l.accept() {
            if s.set_nonblocking(true).is_err() {
                continue;
            }
            self.conns.insert(Conn::new(Io::Socket(s)));
        }
    }

    /// Opens the control ports that appeared since the last look.
    pub fn open_ports(&mut self) {
        for f in control::open_ports(&mut self.ports) {
            self.conns.insert(Conn::new(Io::Port(f)));
        }
    }

    pub fn has_ports(&self) -> bool {
        !self.ports.is_empty()
    }

    /// Adds the listener and the connections to a poll; an idle port only
    /// when it is time to look at it again.
    pub fn poll_on<'a>(&'a self, set: &mut PollSet<'a>, now: Instant) {
        if let Some(l) = &self.listener {
            set.add(Src::Listener, l.as_fd(), PollFlags::POLLIN);
        }
        for (t, c) in self.conns.iter() {
            if c.idle && now < self.port_recheck {
                continue;
            }
            let mut ev = PollFlags::POLLIN;
            if c.wants_write() {
                ev |= PollFlags::POLLOUT;
            }
            set.add(Src::Conn(t), c.io.fd(), ev);
        }
    }

    /// When an idle port is to be looked at again, if there is one.
    pub fn recheck_at(&self) -> Option<Instant> {
        self.conns
            .iter()
            .any(|(_, c)| c.idle)
            .then_some(self.port_recheck)
    }

    /// Idle ports are polled again once their recheck is due.
    pub fn tick(&mut self, now: Instant) {
        if self.conns.iter().any(|(_, c)| c.idle) && now >= self.port_recheck {
            for (_, c) in self.conns.iter_mut() {
                c.idle = false;
            }
            self.port_recheck = now + PORT_RECHECK;
        }
    }

    /// The host side of a port connected or left (SIGIO): look now.
    pub fn port_activity(&mut self) {
        self.port_recheck = Instant::now();
    }

    /// Reads what connection `t` sent: its complete requests, and whether
    /// it (or the port's host side) went away.
    pub fn read(&mut self, t: Token, ev: PollFlags) -> (Vec<Incoming>, bool) {
        let Some(c) = self.conns.get_mut(t) else {
            return (Vec::new(), false);
        };
        if ev.contains(PollFlags::POLLOUT) {
            c.flush();
        }
        if ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            c.read_requests()
        } else {
            (Vec::new(), false)
        }
    }

    pub fn send(&mut self, t: Token, id: u64, reply: Reply) {
        if let Some(c) = self.conns.get_mut(t) {
            c.send(&Response { id, reply });
        }
    }

    pub fn follow(&mut self, t: Token, f: Follow) {
        if let Some(c) = self.conns.get_mut(t) {
            c.follows.push(f);
        }
    }

    /// Sends a state change to every client following events.
    pub fn broadcast_event(&mut self, ev: &Event) {
        for (_, c) in self.conns.iter_mut() {
            let ids: Vec<u64> = c
                .follows
                .iter()
                .filter_map(|f| match f {
                    Follow::Events { id } => Some(*id),
                    _ => None,
                })
                .collect();
            for id in ids {
                c.send(&Response {
                    id,
                    reply: Reply::Event(ev.clone()),
                });
            }
        }
    }

    /// The (connection, request id) pairs following the output of `owner`.
    pub fn log_followers(&self, owner: &str) -> Vec<(Token, u64)> {
        self.conns
            .iter()
            .flat_map(|(t, c)| {
                c.follows.iter().filter_map(move |f| match f {
                    Follow::Logs { id, name } if name == owner => Some((t, *id)),
                    _ => None,
                })
            })
            .collect()
    }

    /// Forgets the connections that were closed.
    pub fn drop_closed(&mut self) {
        self.conns.retain(|c| !c.closed);
    }

    /// Writes what can be written of every connection's pending output.
    pub fn flush_all(&mut self) {
        for (_, c) in self.conns.iter_mut() {
            c.flush();
        }
    }
}
