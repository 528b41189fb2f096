//! The control protocol between `hullctl` / `hull ctl` and the supervisor in
//! PID 1 (documented for users in `docs/hullctl.md`).
//!
//! Transport: a byte stream, either the Unix socket [`CONTROL_SOCKET`] in the
//! guest or the virtio-serial port named [`VIRTIO_PORT_NAME`] (reached from
//! the host through the socket QEMU listens on in the VM's state directory).
//! Framing: one JSON object per line, both ways. A client sends a
//! [`Request`]; the server answers with one or more [`Response`] lines
//! carrying the same `id`, the last of which is [`Reply::End`] or
//! [`Reply::Error`]. Streams (`logs -f`, `events -f`, `exec`) stay open until
//! the client closes the connection (or, for `exec`, the process exits).
//! A client ignores lines whose `id` is not its own: a virtio-serial port has
//! no connections, so a previous client's tail may still be in flight.

use serde::{Deserialize, Serialize};

/// The version a client puts in every request; the server refuses others.
pub const PROTOCOL_VERSION: u32 = 1;
/// The control socket in the guest (root only: mode 0600).
pub const CONTROL_SOCKET: &str = "/run/hull/control.sock";
/// The name of the virtio-serial port the guest serves the protocol on too.
pub const VIRTIO_PORT_NAME: &str = "org.hull.control";
/// The file in a VM's state directory (next to `qmp.sock`) where QEMU
/// listens for the host side of that port.
pub const HOST_CONTROL_SOCKET: &str = "control.sock";
/// Where a service with `readiness: notify` finds its notify socket
/// (`$NOTIFY_SOCKET`), inside its own mount namespace.
pub const NOTIFY_SOCKET_IN_CONTAINER: &str = "/dev/hull-notify/notify.sock";
/// The guest folder of a service's notify socket: the supervisor makes the
/// socket there before each start, the build binds the folder at that of
/// [`NOTIFY_SOCKET_IN_CONTAINER`].
pub fn notify_dir(service: &str) -> String {
    format!("/run/hull/notify/{service}")
}
/// The longest request line a server accepts.
pub const MAX_REQUEST: usize = 64 * 1024;

/// One request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub version: u32,
    /// Chosen by the client; every response to this request carries it.
    pub id: u64,
    #[serde(flatten)]
    pub op: Op,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    /// Every service's status: one [`Reply::Ps`].
    Ps,
    /// One container's OCI spec, runtime.json, cgroup and namespaces.
    Inspect {
        name: String,
    },
    /// The buffered lines of a container's output, then (with `follow`) new ones.
    Logs {
        name: String,
        #[serde(default)]
        follow: bool,
        /// Only the last N buffered lines.
        #[serde(default)]
        tail: Option<usize>,
    },
    /// Runs a process in a service's namespaces and cgroup; its output
    /// comes back as [`Reply::Output`], then [`Reply::Exit`].
    Exec {
        name: String,
        args: Vec<String>,
        /// Give the process a pseudo-terminal (stdout and stderr merge).
        #[serde(default)]
        tty: bool,
        /// Terminal size (rows, columns) when `tty`.
        #[serde(default)]
        size: Option<(u16, u16)>,
    },
    /// Input for the process of the `exec` request with this id; `eof`
    /// closes its stdin.
    Stdin {
        #[serde(default, with = "base64_bytes")]
        data: Vec<u8>,
        #[serde(default)]
        eof: bool,
    },
    Start {
        name: String,
    },
    Stop {
        name: String,
    },
    Restart {
        name: String,
    },
    /// Sends `signal` (a number) to the service's main process.
    Kill {
        name: String,
        signal: i32,
    },
    /// The kernel's message buffer.
    Dmesg,
    /// Past state changes, then (with `follow`) new ones.
    Events {
        #[serde(default)]
        follow: bool,
    },
    /// Each boot phase and container start with its duration.
    BootTime,
    Shutdown,
    Reboot,
}

/// One response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub id: u64,
    #[serde(flatten)]
    pub reply: Reply,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reply {
    /// The request failed; nothing was changed. Ends the request.
    Error {
        message: String,
    },
    /// The request is complete. `message` says what was done, if anything.
    End {
        #[serde(default)]
        message: String,
    },
    Ps {
        services: Vec<ServiceStatus>,
    },
    Inspect(Box<Inspect>),
    Log(LogLine),
    Event(Event),
    Dmesg {
        lines: Vec<String>,
    },
    BootTime {
        phases: Vec<BootPhase>,
    },
    /// Output of an `exec` process.
    Output {
        #[serde(with = "base64_bytes")]
        data: Vec<u8>,
    },
    /// The `exec` process ended; followed by [`Reply::End`].
    Exit {
        status: ExitStatus,
    },
}

/// A service's lifecycle state, as `hullctl ps` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceState {
    /// Not started yet: a dependency is not ready.
    Waiting,
    /// Being created.
    Starting,
    /// Its process runs; not yet ready (it has a readiness check).
    Running,
    /// Running and ready (or running without a readiness check).
    Ready,
    /// Stop signal sent, waiting for the process to exit.
    Stopping,
    /// Ended and not restarted (its policy, or a `stop`).
    Exited,
    /// Gave up: the start limit was reached, the readiness check timed out,
    /// or it could not be created.
    Failed,
    /// Waiting out the delay before the next restart.
    BackingOff,
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Waiting => "waiting",
            ServiceState::Starting => "starting",
            ServiceState::Running => "running",
            ServiceState::Ready => "ready",
            ServiceState::Stopping => "stopping",
            ServiceState::Exited => "exited",
            ServiceState::Failed => "failed",
            ServiceState::BackingOff => "backing-off",
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

/// One line of `hullctl ps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub state: ServiceState,
    pub pid: Option<i32>,
    /// Starts after the first one since boot (or since the last `start`/`restart`).
    pub restarts: u32,
    /// Time since the current process started, in milliseconds.
    pub uptime_ms: Option<u64>,
    pub last_exit: Option<ExitStatus>,
    /// The readiness check (`notify`, `file:PATH`, `tcp:PORT`), or `started`.
    pub readiness: String,
    pub ready: bool,
    /// Dependencies not ready yet (state `waiting`).
    #[serde(default)]
    pub waiting_for: Vec<String>,
    /// The delay before the next start (state `backing-off`), in milliseconds.
    pub restart_delay_ms: Option<u64>,
    /// Why the service is failed, and its last output lines.
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub last_lines: Vec<String>,
}

/// `hullctl inspect NAME`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inspect {
    pub name: String,
    pub bundle: String,
    /// The OCI runtime spec (`config.json`) as the runtime got it.
    pub spec: serde_json::Value,
    /// `runtime.json`: pre-start actions and supervision policy.
    pub runtime: serde_json::Value,
    /// The cgroup (relative to /sys/fs/cgroup) and the pids in it.
    pub cgroup: String,
    pub cgroup_pids: Vec<i32>,
    /// Namespace kind -> `/proc/PID/ns/KIND` link target (e.g. `pid:[4026532]`).
    pub namespaces: Vec<(String, String)>,
    pub pid: Option<i32>,
}

/// One line of a container's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub name: String,
    /// Seconds since boot (CLOCK_BOOTTIME) when PID 1 read the line.
    pub time: f64,
    pub line: String,
}

/// A service state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Seconds since boot.
    pub time: f64,
    pub name: String,
    pub state: ServiceState,
    #[serde(default)]
    pub detail: String,
}

/// One step of the boot, for `hullctl boot-time`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootPhase {
    pub name: String,
    /// Seconds since the kernel started.
    pub start: f64,
    pub duration: f64,
}

/// Bytes as a base64 string: exec I/O is binary, and JSON strings are not.
mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_format() {
        let r = Request {
            version: PROTOCOL_VERSION,
            id: 7,
            op: Op::Kill {
                name: "web".into(),
                signal: 9,
            },
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"version":1,"id":7,"op":"kill","name":"web","signal":9}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), r);
        let ps: Request = serde_json::from_str(r#"{"version":1,"id":1,"op":"ps"}"#).unwrap();
        assert_eq!(ps.op, Op::Ps);
    }

    #[test]
    fn bytes_travel_as_base64() {
        let r = Response {
            id: 3,
            reply: Reply::Output {
                data: vec![0, 255, b'\n'],
            },
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(text, r#"{"id":3,"kind":"output","data":"AP8K"}"#);
        assert_eq!(serde_json::from_str::<Response>(&text).unwrap(), r);
    }

    #[test]
    fn malformed_requests_are_refused() {
        for bad in [
            r#"{"version":1,"id":1,"op":"fly"}"#,
            r#"{"version":1,"op":"ps"}"#,
            r#"{"version":1,"id":1,"op":"kill","name":"x"}"#,
            "not json",
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }
}
