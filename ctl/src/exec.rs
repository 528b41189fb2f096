//! `exec`: a command in a service's namespaces, its output on stdout, our
//! stdin sent along, the terminal in raw mode with `-t`.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use contract::control::{ExitStatus, Op, Reply};
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::{Client, CtlError};

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

pub(crate) fn exec(
    c: &mut Client,
    name: String,
    args: Vec<String>,
    tty: bool,
) -> Result<i32, CtlError> {
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
