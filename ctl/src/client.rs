//! The connection to hull-init: requests out, the replies for each request
//! in, lines for other requests skipped.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use contract::control::{Op, Reply, Request, Response, PROTOCOL_VERSION};
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::{CtlError, ANSWER_TIMEOUT};

/// A connection to hull-init.
pub struct Client {
    pub(crate) sock: UnixStream,
    path: PathBuf,
    pub(crate) inbuf: Vec<u8>,
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

    pub(crate) fn send_with_id(&mut self, id: u64, op: Op) -> Result<(), CtlError> {
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

    pub(crate) fn fill(&mut self) -> Result<(), CtlError> {
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
