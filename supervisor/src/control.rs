//! The transport of the control API: the Unix socket `/run/hull/control.sock`
//! (root only) and the virtio-serial port `org.hull.control`, both served
//! non-blocking from PID 1's poll loop (no threads: PID 1 forks containers).
//! One [`Conn`] per client; `clients.rs` holds them all, `api.rs` decides
//! what the requests mean.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};

use contract::control::{Request, Response, MAX_REQUEST, VIRTIO_PORT_NAME};

/// A client that reads slower than we write (a stalled `logs -f`) is dropped
/// past this much pending output, so it cannot make PID 1 grow.
const MAX_PENDING: usize = 4 * 1024 * 1024;

pub enum Io {
    Socket(UnixStream),
    /// The virtio-serial port: one long-lived "connection" whose host side
    /// comes and goes.
    Port(File),
}

impl Io {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Io::Socket(s) => s.read(buf),
            Io::Port(f) => f.read(buf),
        }
    }
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Io::Socket(s) => s.write(buf),
            Io::Port(f) => f.write(buf),
        }
    }
    pub fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Io::Socket(s) => s.as_fd(),
            Io::Port(f) => f.as_fd(),
        }
    }
}

/// A stream a client asked to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follow {
    Logs { id: u64, name: String },
    Events { id: u64 },
}

pub struct Conn {
    pub io: Io,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    pub follows: Vec<Follow>,
    pub closed: bool,
    /// For the port: the host side is not connected (reads give EOF and
    /// poll gives POLLHUP until it is), so it is polled only now and then.
    pub idle: bool,
}

/// What a connection gave us when it became readable.
pub enum Incoming {
    Request(Request),
    /// A line that is not a valid request: answered with an error, and
    /// nothing else happens.
    Malformed {
        id: u64,
        message: String,
    },
}

impl Conn {
    pub fn new(io: Io) -> Self {
        Conn {
            io,
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            follows: Vec::new(),
            closed: false,
            idle: false,
        }
    }

    pub fn is_port(&self) -> bool {
        matches!(self.io, Io::Port(_))
    }

    pub fn wants_write(&self) -> bool {
        !self.outbuf.is_empty()
    }

    /// The host side of the port went away: forget its streams and any
    /// unfinished request. Pending output stays: the port refuses writes
    /// (EAGAIN) until a host connects again, and a new client skips lines
    /// that are not for its ids.
    pub fn host_gone(&mut self) {
        self.inbuf.clear();
        self.follows.clear();
        self.idle = true;
    }

    /// Reads what is there and returns the complete request lines, and
    /// whether the port's host side went away (its streams are then
    /// forgotten, *before* the returned requests are handled: a new host
    /// may have connected and sent a request in the meantime, and the
    /// kernel can report its data and the previous host's hangup together).
    pub fn read_requests(&mut self) -> (Vec<Incoming>, bool) {
        let mut buf = [0u8; 4096];
        let mut hup = false;
        loop {
            match self.io.read(&mut buf) {
                Ok(0) => {
                    hup = true;
                    break;
                }
                Ok(n) => self
                    .inbuf
                    .extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    hup = true;
                    break;
                }
            }
        }
        let mut out = Vec::new();
        while let Some(pos) = self.inbuf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.inbuf.drain(..=pos).collect();
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            out.push(parse(line));
        }
        if self.inbuf.len() > MAX_REQUEST {
            self.inbuf.clear();
            out.push(Incoming::Malformed {
                id: 0,
                message: format!("request longer than {MAX_REQUEST} bytes"),
            });
        }
        if hup {
            if self.is_port() {
                self.host_gone();
            } else {
                self.closed = true;
            }
        }
        (out, hup)
    }

    pub fn send(&mut self, response: &Response) {
        if self.closed {
            return;
        }
        if let Ok(mut line) = serde_json::to_vec(response) {
            line.push(b'\n');
            self.outbuf.extend_from_slice(&line);
        }
        self.flush();
        if self.outbuf.len() > MAX_PENDING {
            self.outbuf.clear();
            if self.is_port() {
                self.host_gone();
            } else {
                self.closed = true;
            }
        }
    }

    pub fn flush(&mut self) {
        while !self.outbuf.is_empty() {
            match self.io.write(&self.outbuf) {
                Ok(0) => break,
                Ok(n) => {
                    self.outbuf.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    if self.is_port() {
                        self.host_gone();
                    } else {
                        self.closed = true;
                    }
                    break;
                }
            }
        }
    }
}

fn parse(line: &[u8]) -> Incoming {
    match serde_json::from_slice::<Request>(line) {
        Ok(r) => Incoming::Request(r),
        Err(e) => {
            // Answer with the client's id when the line has one, so that a
            // client matching ids still sees the error.
            let id = serde_json::from_slice::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("id").and_then(serde_json::Value::as_u64))
                .unwrap_or(0);
            Incoming::Malformed {
                id,
                message: format!("malformed request: {e}"),
            }
        }
    }
}

/// Binds the control socket, reachable by root only.
pub fn listen(path: &str) -> std::io::Result<UnixListener> {
    let _ = fs::remove_file(path);
    let l = UnixListener::bind(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Opens the virtio-serial ports named [`VIRTIO_PORT_NAME`] or
/// `VIRTIO_PORT_NAME.N` (one per concurrent host client: a port has no
/// connections of its own) that are not in `known`, found through
/// /sys/class/virtio-ports/*/name (there is no udev to make by-name links).
/// Each port raises SIGIO when its host side connects or goes away.
pub fn open_ports(known: &mut Vec<String>) -> Vec<File> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir("/sys/class/virtio-ports") else {
        return out;
    };
    for e in dir.flatten() {
        let name = fs::read_to_string(e.path().join("name")).unwrap_or_default();
        let name = name.trim();
        let ours = name == VIRTIO_PORT_NAME
            || name
                .strip_prefix(VIRTIO_PORT_NAME)
                .and_then(|r| r.strip_prefix('.'))
                .is_some_and(|n| n.parse::<u32>().is_ok());
        if !ours || known.iter().any(|k| k == name) {
            continue;
        }
        let dev = format!("/dev/{}", e.file_name().to_string_lossy());
        let Ok(f) = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
            .open(&dev)
        else {
            continue;
        };
        let fd = f.as_raw_fd();
        // SAFETY: F_SETOWN and F_SETFL on a file descriptor we own; the
        // arguments are plain integers.
        unsafe {
            nix::libc::fcntl(fd, nix::libc::F_SETOWN, nix::libc::getpid());
            let flags = nix::libc::fcntl(fd, nix::libc::F_GETFL);
            nix::libc::fcntl(fd, nix::libc::F_SETFL, flags | nix::libc::O_ASYNC);
        }
        known.push(name.to_string());
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::control::{Op, Reply};

    #[test]
    fn requests_are_read_by_line_and_garbage_gets_an_error() {
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut c = Conn::new(Io::Socket(a));
        b.write_all(b"{\"version\":1,\"id\":4,\"op\":\"ps\"}\n{\"id\":9,\"op\":\"nope\"}\nhalf")
            .unwrap();
        let (got, hup) = c.read_requests();
        assert!(!hup);
        assert_eq!(got.len(), 2);
        assert!(matches!(&got[0], Incoming::Request(r) if r.id == 4 && r.op == Op::Ps));
        assert!(matches!(&got[1], Incoming::Malformed { id: 9, .. }));
        c.send(&Response {
            id: 4,
            reply: Reply::End {
                message: "ok".into(),
            },
        });
        let mut buf = [0u8; 128];
        let n = b.read(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b"{\"id\":4,\"kind\":\"end\",\"message\":\"ok\"}\n"
        );
        drop(b);
        c.read_requests();
        assert!(c.closed);
    }
}
