//! `hullctl exec` sessions: a process started in a running service's
//! namespaces, its output sent to the client that asked (a pty, or pipes),
//! its input taken from that client's `stdin` requests, its exit status
//! reported once the reaper has collected it and its last output is sent.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use contract::control::{ExitStatus, Reply};
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use runtime::{Runtime, Stdio};

use crate::clients::Clients;
use crate::event_loop::{PollSet, Registry, Src, Token};
use crate::output::set_nonblocking;

/// Read from an exec process per wakeup at most, so one cannot starve the others.
const MAX_READ_PER_WAKEUP: usize = 64 * 1024;

/// A process started by `hullctl exec`.
struct ExecSession {
    /// The connection that asked (none once it went away).
    conn: Option<Token>,
    /// The id of its `exec` request.
    id: u64,
    pid: Pid,
    /// Its output (a pty master, or the read end of a pipe).
    out: Option<OwnedFd>,
    /// Its input (the pty master again, or the write end of a pipe).
    input: Option<OwnedFd>,
    exit: Option<ExitStatus>,
}

/// What an `exec` request asks to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// The service whose container the process joins.
    pub name: String,
    pub args: Vec<String>,
    /// A pseudo-terminal (of `size`: rows, columns) instead of pipes.
    pub tty: bool,
    pub size: Option<(u16, u16)>,
}

#[derive(Default)]
pub struct Execs {
    sessions: Registry<ExecSession>,
}

impl Execs {
    /// Starts what `req` asks for in its running container, for request
    /// `id` of connection `conn`.
    pub fn start(
        &mut self,
        runtime: &Runtime,
        conn: Token,
        id: u64,
        req: ExecRequest,
    ) -> Result<(), String> {
        let ExecRequest {
            name,
            args,
            tty,
            size,
        } = req;
        let e = |what: &str, err: nix::Error| format!("{what}: {err}");
        let (stdio, out, input) = if tty {
            let ws = size.map(|(rows, cols)| nix::pty::Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            });
            let pty = nix::pty::openpty(ws.as_ref(), None).map_err(|x| e("openpty", x))?;
            let dup = |fd: &OwnedFd| fd.try_clone().map_err(|x| x.to_string());
            let stdio = Stdio {
                stdin: dup(&pty.slave)?,
                stdout: dup(&pty.slave)?,
                stderr: pty.slave,
            };
            let input = dup(&pty.master)?;
            (stdio, pty.master, input)
        } else {
            let (in_r, in_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|x| e("pipe", x))?;
            let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|x| e("pipe", x))?;
            let out_w2 = out_w.try_clone().map_err(|x| x.to_string())?;
            let stdio = Stdio {
                stdin: in_r,
                stdout: out_w,
                stderr: out_w2,
            };
            (stdio, out_r, in_w)
        };
        set_nonblocking(&out).map_err(|x| e("fcntl", x))?;
        set_nonblocking(&input).map_err(|x| e("fcntl", x))?;
        let pid = runtime
            .exec(&name, args, stdio, tty)
            .map_err(|x| report::chain(&x))?;
        self.sessions.insert(ExecSession {
            conn: Some(conn),
            id,
            pid,
            out: Some(out),
            input: Some(input),
            exit: None,
        });
        Ok(())
    }

    pub fn poll_on<'a>(&'a self, set: &mut PollSet<'a>) {
        for (t, e) in self.sessions.iter() {
            if let Some(o) = &e.out {
                set.add(Src::Exec(t), o.as_fd(), PollFlags::POLLIN);
            }
        }
    }

    /// Forwards what session `t`'s process wrote; at EOF its output is closed.
    pub fn pump(&mut self, t: Token, clients: &mut Clients) {
        if !self.forward(t, clients) {
            if let Some(e) = self.sessions.get_mut(t) {
                e.out = None;
            }
        }
    }

    /// Sends what the process wrote to its client; false at EOF.
    fn forward(&mut self, t: Token, clients: &mut Clients) -> bool {
        let Some(e) = self.sessions.get(t) else {
            return false;
        };
        let Some(fd) = &e.out else {
            return false;
        };
        let mut buf = vec![0u8; 16 * 1024];
        let mut alive = true;
        let mut data = Vec::new();
        loop {
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(0) => {
                    alive = false;
                    break;
                }
                Ok(n) => {
                    data.extend_from_slice(buf.get(..n).unwrap_or_default());
                    if data.len() >= MAX_READ_PER_WAKEUP {
                        break;
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => break,
                // EIO: a pty whose slave side is closed everywhere.
                Err(_) => {
                    alive = false;
                    break;
                }
            }
        }
        if !data.is_empty() {
            if let Some(conn) = e.conn {
                clients.send(conn, e.id, Reply::Output { data });
            }
        }
        alive
    }

    /// Reports the sessions whose process has exited (after their last output).
    pub fn finish(&mut self, clients: &mut Clients) {
        for t in self.sessions.tokens() {
            let Some(status) = self.sessions.get(t).and_then(|e| e.exit) else {
                continue;
            };
            // Whatever output is still buffered goes first.
            while self.forward(t, clients) && self.output_pending(t) {}
            let Some(e) = self.sessions.remove(t) else {
                continue;
            };
            if let Some(conn) = e.conn {
                clients.send(conn, e.id, Reply::Exit { status });
                clients.send(
                    conn,
                    e.id,
                    Reply::End {
                        message: String::new(),
                    },
                );
            }
        }
    }

    fn output_pending(&self, t: Token) -> bool {
        self.sessions
            .get(t)
            .and_then(|e| e.out.as_ref())
            .is_some_and(|fd| {
                let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                nix::poll::poll(&mut p, PollTimeout::ZERO).unwrap_or(0) > 0
            })
    }

    /// The session whose process is `pid` (for the reaper).
    pub fn by_pid(&self, pid: Pid) -> Option<Token> {
        self.sessions
            .iter()
            .find(|(_, e)| e.pid == pid)
            .map(|(t, _)| t)
    }

    /// The reaper collected session `t`'s process.
    pub fn exited(&mut self, t: Token, exit: ExitStatus) {
        if let Some(e) = self.sessions.get_mut(t) {
            e.exit = Some(exit);
        }
    }

    /// Connection `conn` went away: so do its processes.
    pub fn detach(&mut self, conn: Token) {
        for (_, e) in self.sessions.iter_mut() {
            if e.conn == Some(conn) {
                let _ = nix::sys::signal::kill(e.pid, Signal::SIGKILL);
                e.conn = None;
            }
        }
    }

    /// Shutdown: every exec process is killed.
    pub fn kill_all(&self) {
        for (_, e) in self.sessions.iter() {
            let _ = nix::sys::signal::kill(e.pid, Signal::SIGKILL);
        }
    }

    /// Input for the session of request `id` on `conn`; `eof` closes its stdin.
    pub fn stdin(&mut self, conn: Token, id: u64, data: &[u8], eof: bool) -> Result<(), String> {
        let Some((_, e)) = self
            .sessions
            .iter_mut()
            .find(|(_, e)| e.conn == Some(conn) && e.id == id)
        else {
            return Err("no exec session with this id".into());
        };
        if let Some(fd) = &e.input {
            // A process that does not read its input loses what does not
            // fit; PID 1 never waits for it.
            let _ = nix::unistd::write(fd, data);
        }
        if eof {
            e.input = None;
        }
        Ok(())
    }
}
