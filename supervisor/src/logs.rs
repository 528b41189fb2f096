//! Container output: one pipe per container (stdout and stderr share it, so
//! their order is kept), read by the event loop, split into lines and copied
//! to the console as `NAME | line` and to `/var/log/NAME.log`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;

/// Longest line kept whole; a longer one is cut (a flood must not grow memory).
const MAX_LINE: usize = 16 * 1024;

pub struct LogStream {
    pub owner: String,
    fd: OwnedFd,
    partial: Vec<u8>,
    console: bool,
    file: Option<File>,
}

pub enum ReadOutcome {
    More,
    Eof,
}

impl LogStream {
    pub fn new(owner: &str, fd: OwnedFd, console: bool) -> Self {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(format!("/var/log/{owner}.log"))
            .ok();
        LogStream {
            owner: owner.to_string(),
            fd,
            partial: Vec::new(),
            console,
            file,
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads what is available (the fd is non-blocking) and emits whole lines.
    pub fn read_available(&mut self) -> ReadOutcome {
        let mut buf = [0u8; 8192];
        loop {
            match nix::unistd::read(self.fd.as_raw_fd(), &mut buf) {
                Ok(0) => {
                    if !self.partial.is_empty() {
                        let line = std::mem::take(&mut self.partial);
                        self.emit(&line);
                    }
                    return ReadOutcome::Eof;
                }
                Ok(n) => self.push(&buf[..n]),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return ReadOutcome::More,
                Err(_) => return ReadOutcome::Eof,
            }
        }
    }

    fn push(&mut self, mut data: &[u8]) {
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&data[..pos]);
            let line = std::mem::take(&mut self.partial);
            self.emit(&line);
            data = &data[pos + 1..];
        }
        self.partial.extend_from_slice(data);
        if self.partial.len() > MAX_LINE {
            let line = std::mem::take(&mut self.partial);
            self.emit(&line);
        }
    }

    fn emit(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        if self.console {
            // A console that fails to take a line must not stop the supervisor.
            let _ = writeln!(std::io::stdout().lock(), "{} | {}", self.owner, text);
        }
        if let Some(f) = &mut self.file {
            let _ = writeln!(f, "{text}");
        }
    }
}
