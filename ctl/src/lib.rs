//! The control client, shared by `hullctl` (the guest's `hull-init` called
//! by that name, talking to `/run/hull/control.sock`) and `hull ctl --vm
//! STATE_DIR` (the host, talking to the virtio-serial port through QEMU's
//! socket in the VM's state directory). Both speak the protocol of
//! [`contract::control`] over a Unix stream socket, so they share everything:
//! the subcommands, the client loop, and how answers are printed.
//!
//! Single-threaded (poll) so that it can live in the guest's static binary
//! next to PID 1's code without pulling in a runtime.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use contract::control::{
    BootPhase, Event, ExitStatus, Op, Reply, Request, Response, ServiceStatus, PROTOCOL_VERSION,
};
use nix::poll::{PollFd, PollFlags, PollTimeout};

/// How long a one-shot request may take before the client gives up.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// The subcommands of `hullctl` and `hull ctl`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum CtlCommand {
    /// Every service: state, pid, restarts, uptime, last exit, readiness.
    Ps {
        #[arg(long)]
        json: bool,
    },
    /// A service's OCI spec, runtime actions, cgroup and namespaces (JSON).
    Inspect { name: String },
    /// A container's output (the last 1000 lines are kept in memory).
    Logs {
        /// Keep printing new lines.
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines.
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
        /// Prefix each line with its time (seconds since boot).
        #[arg(short = 't', long)]
        timestamps: bool,
        name: String,
    },
    /// Runs a command inside a service's namespaces and cgroup.
    Exec {
        /// Give the command a pseudo-terminal.
        #[arg(short, long)]
        tty: bool,
        name: String,
        #[arg(last = true, required = true, value_name = "CMD")]
        cmd: Vec<String>,
    },
    /// Starts a stopped or failed service (resets its start limit).
    Start { name: String },
    /// Stops a service (stop signal, grace period, SIGKILL); it stays stopped.
    Stop { name: String },
    /// Stops a service and starts it again.
    Restart { name: String },
    /// Sends a signal to a service's main process.
    Kill {
        /// Name (TERM, SIGKILL, ...) or number.
        #[arg(short, long, default_value = "TERM")]
        signal: String,
        name: String,
    },
    /// The kernel's messages.
    Dmesg,
    /// Service state changes.
    Events {
        #[arg(short, long)]
        follow: bool,
        #[arg(long)]
        json: bool,
    },
    /// Each boot phase and container start with its duration.
    BootTime {
        #[arg(long)]
        json: bool,
    },
    /// Powers the machine off cleanly.
    Shutdown,
    /// Reboots the machine cleanly.
    Reboot,
}

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("cannot reach hull-init at {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to hull-init: {0}")]
    Io(#[from] std::io::Error),
    #[error("hull-init closed the connection before answering")]
    Closed,
    #[error("no answer from hull-init within {0:?}")]
    Timeout(Duration),
    /// The request was refused; the message is hull-init's.
    #[error("{0}")]
    Refused(String),
    /// Bad input on the command line (exit code 2).
    #[error("{0}")]
    Usage(String),
}

impl CtlError {
    /// 2 for bad input, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            CtlError::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// A signal given by name (`TERM`, `SIGTERM`, `term`) or number.
pub fn parse_signal(s: &str) -> Result<i32, CtlError> {
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n)
            .map(|_| n)
            .map_err(|_| CtlError::Usage(format!("{n} is not a signal number")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| CtlError::Usage(format!("unknown signal {s:?}")))
}

/// A connection to hull-init.
pub struct Client {
    sock: UnixStream,
    path: PathBuf,
    inbuf: Vec<u8>,
    next_id: u64,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, CtlError> {
        let sock = UnixStream::connect(path).map_err(|source| CtlError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        // Ids differ between clients, so that a client on the shared
        // virtio-serial port can skip a predecessor's leftovers.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ ((std::process::id() as u64) << 40);
        Ok(Client {
            sock,
            path: path.to_path_buf(),
            inbuf: Vec::new(),
            next_id: seed & 0x001f_ffff_ffff_ffff, // exact in a JSON double
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends a request; returns its id.
    pub fn send(&mut self, op: Op) -> Result<u64, CtlError> {
        self.next_id += 1;
        self.send_with_id(self.next_id, op)?;
        Ok(self.next_id)
    }

    fn send_with_id(&mut self, id: u64, op: Op) -> Result<(), CtlError> {
        let mut line = serde_json::to_vec(&Request {
            version: PROTOCOL_VERSION,
            id,
            op,
        })
        .map_err(|e| CtlError::Io(e.into()))?;
        line.push(b'\n');
        self.sock.write_all(&line)?;
        Ok(())
    }

    /// The next response to request `id`, waiting up to `timeout` (forever
    /// with `None`). Lines for other ids are skipped.
    pub fn next(&mut self, id: u64, timeout: Option<Duration>) -> Result<Reply, CtlError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            while let Some(pos) = self.inbuf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.inbuf.drain(..=pos).collect();
                if let Ok(r) = serde_json::from_slice::<Response>(&line) {
                    if r.id == id {
                        return Ok(r.reply);
                    }
                }
            }
            let wait = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(CtlError::Timeout(timeout.unwrap_or_default()));
                    }
                    left
                }
                None => Duration::from_secs(3600),
            };
            let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
            let ms = wait.as_millis().min(60_000) as u16;
            match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(CtlError::Io(e.into())),
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> Result<(), CtlError> {
        let mut buf = [0u8; 16 * 1024];
        let n = self.sock.read(&mut buf)?;
        if n == 0 {
            return Err(CtlError::Closed);
        }
        self.inbuf.extend_from_slice(&buf[..n]);
        Ok(())
    }

    /// Sends `op` and collects replies up to the end of the request.
    pub fn call(&mut self, op: Op) -> Result<Vec<Reply>, CtlError> {
        let id = self.send(op)?;
        let mut out = Vec::new();
        loop {
            match self.next(id, Some(ANSWER_TIMEOUT))? {
                Reply::End { message } => {
                    if !message.is_empty() {
                        out.push(Reply::End { message });
                    }
                    return Ok(out);
                }
                Reply::Error { message } => return Err(CtlError::Refused(message)),
                r => out.push(r),
            }
        }
    }
}

/// Runs one subcommand against the control socket at `path`, printing to
/// stdout; returns the exit code (for `exec`, the command's).
pub fn run(path: &Path, cmd: CtlCommand) -> Result<i32, CtlError> {
    // Bad input is reported as such before anything is asked.
    if let CtlCommand::Kill { signal, .. } = &cmd {
        parse_signal(signal)?;
    }
    let mut c = Client::connect(path)?;
    let mut out = std::io::stdout().lock();
    match cmd {
        CtlCommand::Ps { json } => {
            let services: Vec<ServiceStatus> = c
                .call(Op::Ps)?
                .into_iter()
                .find_map(|r| match r {
                    Reply::Ps { services } => Some(services),
                    _ => None,
                })
                .unwrap_or_default();
            if json {
                writeln!(out, "{}", pretty(&services))?;
            } else {
                write!(out, "{}", ps_table(&services))?;
            }
        }
        CtlCommand::Inspect { name } => {
            for r in c.call(Op::Inspect { name })? {
                if let Reply::Inspect(i) = r {
                    writeln!(out, "{}", pretty(&i))?;
                }
            }
        }
        CtlCommand::Logs {
            follow,
            tail,
            timestamps,
            name,
        } => {
            let id = c.send(Op::Logs { name, follow, tail })?;
            let timeout = (!follow).then_some(ANSWER_TIMEOUT);
            loop {
                match c.next(id, timeout)? {
                    Reply::Log(l) => {
                        if timestamps {
                            writeln!(out, "{:10.3} {}", l.time, l.line)?;
                        } else {
                            writeln!(out, "{}", l.line)?;
                        }
                        if follow {
                            out.flush()?;
                        }
                    }
                    Reply::Error { message } => return Err(CtlError::Refused(message)),
                    Reply::End { .. } => break,
                    _ => {}
                }
            }
        }
        CtlCommand::Events { follow, json } => {
            let id = c.send(Op::Events { follow })?;
            let timeout = (!follow).then_some(ANSWER_TIMEOUT);
            loop {
                match c.next(id, timeout)? {
                    Reply::Event(e) => {
                        if json {
                            writeln!(out, "{}", serde_json::to_string(&e).unwrap_or_default())?;
                        } else {
                            writeln!(out, "{}", event_line(&e))?;
                        }
                        if follow {
                            out.flush()?;
                        }
                    }
                    Reply::Error { message } => return Err(CtlError::Refused(message)),
                    Reply::End { .. } => break,
                    _ => {}
                }
            }
        }
        CtlCommand::Exec { tty, name, cmd } => {
            drop(out);
            return exec(&mut c, name, cmd, tty);
        }
        CtlCommand::Start { name } => done(&mut out, c.call(Op::Start { name })?)?,
        CtlCommand::Stop { name } => done(&mut out, c.call(Op::Stop { name })?)?,
        CtlCommand::Restart { name } => done(&mut out, c.call(Op::Restart { name })?)?,
        CtlCommand::Kill { signal, name } => {
            let signal = parse_signal(&signal)?;
            done(&mut out, c.call(Op::Kill { name, signal })?)?
        }
        CtlCommand::Dmesg => {
            for r in c.call(Op::Dmesg)? {
                if let Reply::Dmesg { lines } = r {
                    for l in lines {
                        writeln!(out, "{l}")?;
                    }
                }
            }
        }
        CtlCommand::BootTime { json } => {
            for r in c.call(Op::BootTime)? {
                if let Reply::BootTime { phases } = r {
                    if json {
                        writeln!(out, "{}", pretty(&phases))?;
                    } else {
                        write!(out, "{}", boot_table(&phases))?;
                    }
                }
            }
        }
        CtlCommand::Shutdown => done(&mut out, c.call(Op::Shutdown)?)?,
        CtlCommand::Reboot => done(&mut out, c.call(Op::Reboot)?)?,
    }
    Ok(0)
}

fn pretty<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn done(out: &mut impl Write, replies: Vec<Reply>) -> Result<(), CtlError> {
    for r in replies {
        if let Reply::End { message } = r {
            writeln!(out, "{message}")?;
        }
    }
    Ok(())
}

fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{}.{}s", s, (ms % 1000) / 100),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

/// The `hullctl ps` table; a failed service gets its reason and last lines.
pub fn ps_table(services: &[ServiceStatus]) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "STATE".into(),
        "PID".into(),
        "RESTARTS".into(),
        "UPTIME".into(),
        "LAST EXIT".into(),
        "READINESS".into(),
    ]];
    for s in services {
        let mut state = s.state.as_str().to_string();
        if let Some(d) = s.restart_delay_ms {
            state.push_str(&format!(" ({})", duration(d)));
        }
        if !s.waiting_for.is_empty() {
            state.push_str(&format!(" (for {})", s.waiting_for.join(",")));
        }
        rows.push([
            s.name.clone(),
            state,
            s.pid.map_or("-".into(), |p| p.to_string()),
            s.restarts.to_string(),
            s.uptime_ms.map_or("-".into(), duration),
            s.last_exit.map_or("-".into(), |e| e.to_string()),
            format!("{}{}", s.readiness, if s.ready { " (ready)" } else { "" }),
        ]);
    }
    let mut widths = [0usize; 7];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    for s in services {
        if !s.reason.is_empty() {
            out.push_str(&format!("{}: {}\n", s.name, s.reason));
        }
        for l in &s.last_lines {
            out.push_str(&format!("{} | {l}\n", s.name));
        }
    }
    out
}

fn event_line(e: &Event) -> String {
    format!(
        "{:10.3} {} {}{}",
        e.time,
        e.name,
        e.state.as_str(),
        if e.detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", e.detail)
        }
    )
}

/// The `hullctl boot-time` table.
pub fn boot_table(phases: &[BootPhase]) -> String {
    let mut out = String::from("     START  DURATION  PHASE\n");
    for p in phases {
        out.push_str(&format!(
            "{:9.3}s {:8.3}s  {}\n",
            p.start, p.duration, p.name
        ));
    }
    out
}

/// Puts the local terminal in raw mode for `exec -t`, restored on drop.
struct RawMode(Option<nix::sys::termios::Termios>);

impl RawMode {
    fn enter() -> RawMode {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let Ok(orig) = tcgetattr(stdin.as_fd()) else {
            return RawMode(None);
        };
        let mut raw = orig.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        RawMode(Some(orig))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(orig) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin().as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                orig,
            );
        }
    }
}

fn exec(c: &mut Client, name: String, args: Vec<String>, tty: bool) -> Result<i32, CtlError> {
    let stdin = std::io::stdin();
    let interactive = nix::unistd::isatty(stdin.as_raw_fd()).unwrap_or(false);
    let size = if tty && interactive {
        let mut ws = nix::pty::Winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ fills the winsize struct we own.
        let r = unsafe { nix::libc::ioctl(stdin.as_raw_fd(), nix::libc::TIOCGWINSZ, &mut ws) };
        (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
    } else {
        None
    };
    let id = c.send(Op::Exec {
        name,
        args,
        tty,
        size,
    })?;
    let _raw = (tty && interactive).then(RawMode::enter);
    let mut stdout = std::io::stdout();
    let mut stdin_open = true;
    loop {
        // Answers already buffered first.
        if c.inbuf.contains(&b'\n') {
            match c.next(id, Some(Duration::ZERO)) {
                Ok(Reply::Output { data }) => {
                    stdout.write_all(&data)?;
                    stdout.flush()?;
                    continue;
                }
                Ok(Reply::Exit { status }) => {
                    return Ok(match status {
                        ExitStatus::Code(c) => c,
                        ExitStatus::Signal(s) => 128 + s,
                    })
                }
                Ok(Reply::Error { message }) => return Err(CtlError::Refused(message)),
                Ok(_) | Err(CtlError::Timeout(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        let mut fds = vec![PollFd::new(c.sock.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match nix::poll::poll(&mut fds, PollTimeout::from(1000u16)) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(CtlError::Io(e.into())),
        }
        let sock_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let stdin_ready = stdin_open && fds[1].revents().is_some_and(|r| !r.is_empty());
        drop(fds);
        if sock_ready {
            c.fill()?;
        }
        if stdin_ready {
            let mut buf = [0u8; 4096];
            let n = nix::unistd::read(stdin.as_raw_fd(), &mut buf).unwrap_or(0);
            let eof = n == 0;
            if eof {
                stdin_open = false;
            }
            c.send_with_id(
                id,
                Op::Stdin {
                    data: buf[..n].to_vec(),
                    eof,
                },
            )?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::control::ServiceState;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("sigkill").unwrap(), 9);
        assert_eq!(parse_signal("10").unwrap(), 10);
        let e = parse_signal("FLY").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.to_string(), "unknown signal \"FLY\"");
    }

    #[test]
    fn ps_table_shows_delay_and_last_lines_of_a_failed_service() {
        let s = ServiceStatus {
            name: "crashy".into(),
            state: ServiceState::Failed,
            pid: None,
            restarts: 5,
            uptime_ms: None,
            last_exit: Some(ExitStatus::Code(1)),
            readiness: "started".into(),
            ready: false,
            waiting_for: vec![],
            restart_delay_ms: None,
            reason: "start limit reached".into(),
            last_lines: vec!["boom".into()],
        };
        let t = ps_table(&[s]);
        assert!(t.starts_with("NAME "), "{t}");
        assert!(t.contains("crashy  failed"), "{t}");
        assert!(t.contains("exit code 1"), "{t}");
        assert!(
            t.contains("crashy: start limit reached\ncrashy | boom\n"),
            "{t}"
        );
    }

    #[test]
    fn a_missing_socket_is_a_clear_error() {
        let e = run(Path::new("/nonexistent/control.sock"), CtlCommand::Dmesg).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot reach hull-init at /nonexistent/control.sock: "),
            "{e}"
        );
    }
}
