//! Writing to the console without letting it stall PID 1.
//!
//! A serial console takes about 11 KB/s; a service flooding its output
//! would block PID 1 in `write(2)` and freeze supervision. So the console fd
//! is made non-blocking: container lines that do not fit are dropped (and
//! counted, and the count reported once there is room again), while hull's
//! own messages wait a bounded time for room.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};

/// Container lines dropped since the last report.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Makes stdout non-blocking (PID 1's stdout is the console).
pub(crate) fn make_nonblocking() {
    let fd = std::io::stdout().as_raw_fd();
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        let _ = fcntl(fd, FcntlArg::F_SETFL(flags));
    }
}

/// Writes all of `data`, waiting up to `patience` in total for room.
/// Returns false if some of it could not be written.
fn write_all(data: &[u8], patience: Duration) -> bool {
    let mut rest = data;
    let deadline = std::time::Instant::now() + patience;
    while !rest.is_empty() {
        match raw_write(rest) {
            Ok(0) => return false,
            Ok(n) => rest = rest.get(n..).unwrap_or_default(),
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return false;
                }
                let stdout = std::io::stdout();
                let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLOUT)];
                let ms = left.as_millis().min(u16::MAX as u128) as u16;
                let _ = nix::poll::poll(&mut fds, PollTimeout::from(ms));
            }
            Err(_) => return false,
        }
    }
    true
}

/// Straight to fd 1: std's line buffer would keep (and later replay) what a
/// full console refused.
fn raw_write(data: &[u8]) -> Result<usize, Errno> {
    nix::unistd::write(std::io::stdout().as_fd(), data)
}

/// A message of hull itself (`hull: LINE`): waits up to a second for room.
/// Use it through [`crate::say!`].
pub fn say(line: &str) {
    report_dropped();
    let mut text = String::with_capacity(line.len() + 7);
    text.push_str("hull: ");
    text.push_str(line);
    text.push('\n');
    write_all(text.as_bytes(), Duration::from_secs(1));
}

/// A line of container output: dropped if the console is full.
pub(crate) fn container_line(name: &str, line: &str) {
    report_dropped();
    let text = format!("{name} | {line}\n");
    // A line is written whole or not at all as far as the count goes; a
    // partial write is finished with a short wait so lines never interleave.
    match raw_write(text.as_bytes()) {
        Ok(n) if n == text.len() => {}
        Ok(n) => {
            write_all(
                text.as_bytes().get(n..).unwrap_or_default(),
                Duration::from_millis(200),
            );
        }
        Err(_) => {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn report_dropped() {
    let n = DROPPED.swap(0, Ordering::Relaxed);
    if n > 0 {
        let text = format!("hull: console full: {n} lines of container output not shown (all are in /var/log and `hullctl logs`)\n");
        if !write_all(text.as_bytes(), Duration::ZERO) {
            DROPPED.fetch_add(n, Ordering::Relaxed);
        }
    }
}
