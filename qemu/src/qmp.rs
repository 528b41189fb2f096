use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::error::QemuError;

/// How long one QMP reply may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A minimal QMP client: greeting, `qmp_capabilities`, then one command at a
/// time. Asynchronous events received while waiting for a reply are kept in
/// [`Qmp::events`].
#[derive(Debug)]
pub struct Qmp {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// Events (`{"event": ...}`) seen so far, oldest first.
    pub events: Vec<Value>,
}

impl Qmp {
    /// Connects to QEMU's QMP socket, retrying until `timeout` (QEMU creates
    /// the socket a moment after it starts), and negotiates capabilities.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Qmp, QemuError> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(source) if Instant::now() >= deadline => {
                    return Err(QemuError::QmpConnect {
                        path: path.to_path_buf(),
                        timeout,
                        source,
                    })
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let io = |source| QemuError::QmpIo {
            path: path.to_path_buf(),
            source,
        };
        stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(io)?;
        let writer = stream.try_clone().map_err(io)?;
        let mut qmp = Qmp {
            path: path.to_path_buf(),
            reader: BufReader::new(stream),
            writer,
            events: Vec::new(),
        };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            return Err(qmp.protocol(format!("expected a greeting, got {greeting}")));
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    /// Presses the power button (ACPI on x86_64 and on arm64 with UEFI).
    pub fn powerdown(&mut self) -> Result<(), QemuError> {
        self.execute("system_powerdown", None).map(drop)
    }

    /// Stops QEMU at once, as if the plug was pulled. QEMU may close the
    /// socket before it answers; that counts as success.
    pub fn quit(&mut self) -> Result<(), QemuError> {
        match self.execute("quit", None) {
            Ok(_) => Ok(()),
            Err(QemuError::QmpIo { source, .. })
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `query-status`: the run state, e.g. `"running"`, `"shutdown"`.
    pub fn query_status(&mut self) -> Result<String, QemuError> {
        let r = self.execute("query-status", None)?;
        r.get("status")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| self.protocol(format!("query-status returned {r}")))
    }

    /// Runs one command and returns its `return` value.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QemuError> {
        let mut msg = json!({ "execute": command });
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let mut line = msg.to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .map_err(|source| QemuError::QmpIo {
                path: self.path.clone(),
                source,
            })?;
        loop {
            let m = self.read_message()?;
            if let Some(r) = m.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = m.get("error") {
                let field = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
                return Err(QemuError::QmpCommand {
                    command: command.to_string(),
                    class: field("class"),
                    desc: field("desc"),
                });
            }
            if m.get("event").is_some() {
                self.events.push(m);
                continue;
            }
            return Err(self.protocol(format!("unexpected reply {m}")));
        }
    }

    fn read_message(&mut self) -> Result<Value, QemuError> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|source| QemuError::QmpIo {
                path: self.path.clone(),
                source,
            })?;
        if n == 0 {
            return Err(QemuError::QmpIo {
                path: self.path.clone(),
                source: std::io::ErrorKind::UnexpectedEof.into(),
            });
        }
        serde_json::from_str(&line).map_err(|e| self.protocol(format!("{e}: {}", line.trim())))
    }

    fn protocol(&self, message: String) -> QemuError {
        QemuError::QmpProtocol {
            path: self.path.clone(),
            message,
        }
    }
}
