//! Container output: one pipe per container (stdout and stderr share it, so
//! their order is kept), read by the event loop and split into lines; each
//! line goes to a bounded in-memory ring (for `hullctl logs` and a failed
//! service's status), to `/var/log/NAME.log` (rotated by size) and, unless
//! turned off, to the console as `NAME | line`.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;

/// Longest line kept whole; a longer one is cut (a flood must not grow memory).
const MAX_LINE: usize = 16 * 1024;
/// At most this much is read from one pipe per wakeup, so that one flooding
/// container cannot starve the others or the control socket.
const MAX_READ_PER_WAKEUP: usize = 64 * 1024;
/// Lines kept in memory per container.
pub const RING_LINES: usize = 1000;
/// `/var/log/NAME.log` is rotated to `NAME.log.1` past this size (one old
/// file is kept: /var is a tmpfs, that is RAM).
const ROTATE_AT: u64 = 1024 * 1024;

/// The read end of a container's output pipe.
pub struct LogStream {
    pub owner: String,
    fd: OwnedFd,
    partial: Vec<u8>,
}

pub enum ReadOutcome {
    More,
    Eof,
}

impl LogStream {
    pub fn new(owner: &str, fd: OwnedFd) -> Self {
        LogStream {
            owner: owner.to_string(),
            fd,
            partial: Vec::new(),
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads what is available (the fd is non-blocking) and appends whole
    /// lines to `lines`.
    pub fn read_available(&mut self, lines: &mut Vec<String>) -> ReadOutcome {
        let mut buf = [0u8; 8192];
        let mut total = 0;
        loop {
            if total >= MAX_READ_PER_WAKEUP {
                return ReadOutcome::More;
            }
            match nix::unistd::read(self.fd.as_raw_fd(), &mut buf) {
                Ok(0) => {
                    if !self.partial.is_empty() {
                        let line = std::mem::take(&mut self.partial);
                        lines.push(text(&line));
                    }
                    return ReadOutcome::Eof;
                }
                Ok(n) => {
                    total += n;
                    self.push(buf.get(..n).unwrap_or_default(), lines)
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return ReadOutcome::More,
                Err(_) => return ReadOutcome::Eof,
            }
        }
    }

    fn push(&mut self, data: &[u8], lines: &mut Vec<String>) {
        // Every segment after the first follows a newline, which ends the
        // line collected so far.
        let mut segments = data.split(|&b| b == b'\n');
        if let Some(first) = segments.next() {
            self.partial.extend_from_slice(first);
        }
        for segment in segments {
            let line = std::mem::take(&mut self.partial);
            lines.push(text(&line));
            self.partial.extend_from_slice(segment);
        }
        if self.partial.len() > MAX_LINE {
            let line = std::mem::take(&mut self.partial);
            lines.push(text(&line));
        }
    }
}

fn text(line: &[u8]) -> String {
    String::from_utf8_lossy(line)
        .trim_end_matches('\r')
        .to_string()
}

/// The recent lines of one container, with the time (seconds since boot)
/// each was read.
#[derive(Default)]
pub struct Ring {
    lines: VecDeque<(f64, String)>,
}

impl Ring {
    pub fn push(&mut self, time: f64, line: String) {
        if self.lines.len() == RING_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back((time, line));
    }

    /// The last `n` lines (all with `None`), oldest first.
    pub fn tail(&self, n: Option<usize>) -> impl Iterator<Item = &(f64, String)> {
        let skip = n.map_or(0, |n| self.lines.len().saturating_sub(n));
        self.lines.iter().skip(skip)
    }
}

/// `/var/log/NAME.log`, reopened across restarts of the container and
/// rotated by size.
pub struct LogFile {
    path: String,
    file: Option<File>,
    size: u64,
}

impl LogFile {
    pub fn open(name: &str) -> Self {
        let path = format!("/var/log/{name}.log");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .ok();
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        LogFile { path, file, size }
    }

    /// Appends `lines` with one write(2): a service logging thousands of
    /// lines a second must not cost PID 1 a system call per line.
    pub fn write_lines(&mut self, lines: &[String]) {
        if self.size >= ROTATE_AT {
            // A full /var loses log lines, never supervision: errors are ignored.
            let _ = std::fs::rename(&self.path, format!("{}.1", self.path));
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .ok();
            self.size = 0;
        }
        let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for l in lines {
            buf.extend_from_slice(l.as_bytes());
            buf.push(b'\n');
        }
        if let Some(f) = &mut self.file {
            if f.write_all(&buf).is_ok() {
                self.size += buf.len() as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_is_bounded_and_tails() {
        let mut r = Ring::default();
        for i in 0..RING_LINES + 5 {
            r.push(i as f64, format!("l{i}"));
        }
        let all: Vec<_> = r.tail(None).collect();
        assert_eq!(all.len(), RING_LINES);
        assert_eq!(all[0].1, "l5");
        let last: Vec<_> = r.tail(Some(2)).map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            last,
            [
                format!("l{}", RING_LINES + 3),
                format!("l{}", RING_LINES + 4)
            ]
        );
    }

    #[test]
    fn lines_are_split_and_long_ones_cut() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut s = LogStream::new("t", r);
        let mut lines = Vec::new();
        s.push(b"a\r\nb\npart", &mut lines);
        assert_eq!(lines, ["a", "b"]);
        s.push(&vec![b'x'; MAX_LINE + 1], &mut lines);
        assert_eq!(lines.len(), 3);
        assert!(lines[2].starts_with("partx"));
        drop(w);
    }
}
