//! Container output fan-out: each container's pipe (a [`LogStream`]) is
//! read by the event loop, and each line goes to the console (`NAME |
//! line`, unless turned off), to `/var/log/NAME.log`, to the container's
//! in-memory ring and to the clients following it (`logs -f`).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};

use contract::control::{LogLine, Reply};
use nix::fcntl::OFlag;
use nix::poll::PollFlags;
use runtime::Stdio;

use crate::clients::Clients;
use crate::event_loop::{PollSet, Registry, Src, Token};
use crate::logs::{LogFile, LogStream, ReadOutcome, Ring};
use crate::{console, uptime};

pub struct Output {
    streams: Registry<LogStream>,
    rings: BTreeMap<String, Ring>,
    files: BTreeMap<String, LogFile>,
    /// Whether each container's lines go to the console.
    console_names: BTreeMap<String, bool>,
    /// Copy container output to the console at all (`hull.console=off`).
    console_log: bool,
}

impl Output {
    pub fn new(console_log: bool) -> Self {
        Output {
            streams: Registry::default(),
            rings: BTreeMap::new(),
            files: BTreeMap::new(),
            console_names: BTreeMap::new(),
            console_log,
        }
    }

    /// Whether `name`'s lines go to the console (its `runtime.json` says).
    pub fn set_console(&mut self, name: &str, wanted: bool) {
        self.console_names
            .insert(name.to_string(), wanted && self.console_log);
    }

    /// The standard streams of a new container `name`: stdin from
    /// /dev/null, stdout and stderr into one pipe whose read end is added
    /// to the event loop (so their order is kept).
    pub fn open(&mut self, name: &str) -> nix::Result<Stdio> {
        let errno = |e: std::io::Error| nix::Error::from_raw(e.raw_os_error().unwrap_or(0));
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        set_nonblocking(&read)?;
        let write2: OwnedFd = write.try_clone().map_err(errno)?;
        let stdin = File::open("/dev/null").map(OwnedFd::from).map_err(errno)?;
        self.streams.insert(LogStream::new(name, read));
        self.files
            .entry(name.to_string())
            .or_insert_with(|| LogFile::open(name));
        // The caller's copies of the write end go to the container builder,
        // which closes them when it returns, so the pipe reaches EOF when the
        // container exits.
        Ok(Stdio {
            stdin,
            stdout: write,
            stderr: write2,
        })
    }

    pub fn poll_on<'a>(&'a self, set: &mut PollSet<'a>) {
        for (t, s) in self.streams.iter() {
            set.add(Src::Stream(t), s.fd(), PollFlags::POLLIN);
        }
    }

    /// Reads what stream `t` has and passes its lines on; forgets the stream at EOF.
    pub fn read(&mut self, t: Token, clients: &mut Clients) {
        let Some(stream) = self.streams.get_mut(t) else {
            return;
        };
        let mut lines = Vec::new();
        let outcome = stream.read_available(&mut lines);
        let owner = stream.owner.clone();
        self.emit(&owner, lines, clients);
        if let ReadOutcome::Eof = outcome {
            self.streams.remove(t);
        }
    }

    /// Reads what every stream has right now (before a oneshot container's
    /// exit is reported, and at shutdown).
    pub fn drain(&mut self, clients: &mut Clients) {
        for t in self.streams.tokens() {
            self.read(t, clients);
        }
    }

    /// The recent lines of each container, by name.
    pub fn rings(&self) -> &BTreeMap<String, Ring> {
        &self.rings
    }

    /// Sends lines of `owner` to the console, its log file, its ring and
    /// the clients following it.
    fn emit(&mut self, owner: &str, lines: Vec<String>, clients: &mut Clients) {
        if lines.is_empty() {
            return;
        }
        let console = self.console_names.get(owner).copied().unwrap_or(true) && self.console_log;
        let now = uptime();
        let followers = clients.log_followers(owner);
        let file = self
            .files
            .entry(owner.to_string())
            .or_insert_with(|| LogFile::open(owner));
        file.write_lines(&lines);
        let ring = self.rings.entry(owner.to_string()).or_default();
        for line in lines {
            if console {
                console::container_line(owner, &line);
            }
            for &(t, id) in &followers {
                clients.send(
                    t,
                    id,
                    Reply::Log(LogLine {
                        name: owner.to_string(),
                        time: now,
                        line: line.clone(),
                    }),
                );
            }
            ring.push(now, line);
        }
    }
}

/// Makes `fd` non-blocking: PID 1 never waits on a container's pipe.
pub fn set_nonblocking(fd: &OwnedFd) -> nix::Result<()> {
    let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
    nix::fcntl::fcntl(
        fd.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )?;
    Ok(())
}
