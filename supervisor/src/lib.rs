//! Guest library: the service table and the event loop of PID 1.
//!
//! `hull-init` hands it the resolved image (`/etc/hull/image.json`) once the
//! root is mounted; it runs the onboot containers one after another, starts
//! the services in dependency order (a service waits until those it
//! `depends` on are ready), supervises them (restart with growing delays, a
//! start limit), keeps their output (console, `/var/log`, an in-memory ring),
//! answers the control API (`hullctl`, `hull ctl`) and, on a shutdown
//! request, stops everything in reverse dependency order before returning
//! what the kernel should be asked to do.
//!
//! Two rules shape this crate (DESIGN.md, "Known hazards"):
//! - **One reaper.** `reaper.rs` holds the only `waitpid` of the guest
//!   outside libcontainer's own synchronous waits; each status goes to its
//!   owner by pid (a service, an onboot container, an `exec` process), and
//!   orphans re-parented to PID 1 are simply collected.
//! - **No threads.** Everything runs on one thread around `poll(2)`, the
//!   control server included, so libcontainer's forks are safe.
//!
//! The parts, each in its file:
//! - `service.rs` (with `service/lifecycle.rs`): one service's state and its
//!   transitions (start, ready, exit, stop, restart), which return
//!   [`service::Action`]s instead of making system calls; `table.rs`: the
//!   services together (dependency order, the ready marker's condition).
//! - `supervise.rs`: carries those actions out (creates containers, sends
//!   signals, records events).
//! - `event_loop.rs`: poll sources under stable tokens, timers;
//!   `signals.rs`: what each signal to PID 1 means; `reaper.rs`.
//! - `oneshot.rs` (onboot and onshutdown containers), `shutdown.rs`.
//! - `output.rs` (with `logs.rs`, `console.rs`): container output fan-out.
//! - `api.rs`: what control requests mean; `clients.rs` and `control.rs`:
//!   its transport; `exec.rs`: `hullctl exec` sessions.

// PID 1 must never panic (tests may: see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

/// Prints `hull: MESSAGE` on the console (see [`console::say`]): the one
/// way the guest's own code talks to the user.
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => { $crate::console::say(&::std::format!($($t)*)) };
}

mod api;
mod clients;
pub mod console;
mod control;
mod event_loop;
mod exec;
mod journal;
mod kmsg;
mod logs;
mod oneshot;
mod output;
mod power_button;
mod readiness;
mod reaper;
mod serve;
mod service;
mod shutdown;
mod signals;
mod supervise;
mod table;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use contract::control::{BootPhase, ExitStatus, CONTROL_SOCKET};
use contract::ImageJson;
use nix::sys::signalfd::SignalFd;
use nix::unistd::Pid;
use runtime::Runtime;

use clients::Clients;
use event_loop::Registry;
use exec::Execs;
use journal::Journal;
use output::Output;
use supervise::Handles;
use table::{ServiceId, ServiceTable};

/// What PID 1 asks the kernel for once everything has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownKind {
    Poweroff,
    Reboot,
    Halt,
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("setting up signal handling")]
    Signals(#[source] nix::Error),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    #[error("creating the output pipe of {name}")]
    Pipe {
        name: String,
        #[source]
        errno: nix::Error,
    },
    #[error("creating the notify socket of {name}")]
    Notify {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

pub struct Options {
    /// Copy container output to the console (`hull.console=off` turns it off).
    pub console_log: bool,
    /// Where libcontainer keeps its state.
    pub state_root: PathBuf,
    /// The boot phases before the supervisor (kernel, stage 1, ...), for `boot-time`.
    pub boot_phases: Vec<BootPhase>,
}

/// How long to keep looking for a power button and the control port after boot.
const DEVICE_SCAN: Duration = Duration::from_secs(20);

/// PID 1's supervisor: the parts above, and what they share.
pub struct Supervisor {
    runtime: Runtime,
    signals: SignalFd,
    services: ServiceTable,
    /// The system side of each service: its container and notify socket.
    handles: BTreeMap<ServiceId, Handles>,
    output: Output,
    clients: Clients,
    execs: Execs,
    journal: Journal,
    buttons: Registry<(String, File)>,
    scan_until: Instant,
    /// The onboot/onshutdown container being waited for, and its exit once reaped.
    oneshot: Option<(Pid, Option<ExitStatus>)>,
    shutdown: Option<ShutdownKind>,
    /// Services are being stopped for good: no restarts, no new starts.
    stopping_all: bool,
    /// Services are being started in dependency order right now (see
    /// [`Supervisor::start_eligible`]).
    starting: bool,
}

/// Seconds since the kernel started (CLOCK_BOOTTIME), for boot timing.
pub fn uptime() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
        .unwrap_or(0.0)
}

impl Supervisor {
    /// Blocks the signals PID 1 handles and reads them through a signalfd
    /// (see `signals.rs`).
    pub fn new(opts: Options) -> Result<Self, SupervisorError> {
        let signals = signals::signalfd().map_err(SupervisorError::Signals)?;
        console::make_nonblocking();
        Ok(Supervisor {
            runtime: Runtime::new(opts.state_root)?,
            signals,
            services: ServiceTable::default(),
            handles: BTreeMap::new(),
            output: Output::new(opts.console_log),
            clients: Clients::default(),
            execs: Execs::default(),
            journal: Journal::new(opts.boot_phases),
            buttons: Registry::default(),
            scan_until: Instant::now() + DEVICE_SCAN,
            oneshot: None,
            shutdown: None,
            stopping_all: false,
            starting: false,
        })
    }

    /// Runs the whole life of the image and returns what to ask the kernel for.
    pub fn run(mut self, image: &ImageJson) -> ShutdownKind {
        if let Err(e) = self.clients.listen(CONTROL_SOCKET) {
            say!("control socket {CONTROL_SOCKET}: {e}; hullctl will not work");
        }
        self.scan_devices();
        self.run_onboot(image);
        if self.shutdown.is_none() {
            for c in &image.services {
                self.add_service(c);
            }
            self.start_eligible();
        }
        while self.shutdown.is_none() {
            let timeout = self.next_timer();
            self.pump(timeout);
            self.tick();
        }
        let kind = self.shutdown.unwrap_or(ShutdownKind::Poweroff);
        self.stop_everything(image);
        kind
    }
}
