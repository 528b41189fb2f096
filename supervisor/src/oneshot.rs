//! onboot and onshutdown containers: each runs to completion, one after
//! another, while the event loop keeps serving everything else.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use contract::control::ExitStatus;
use contract::{ContainerRef, ImageJson};
use runtime::SignalNumber;

use crate::{uptime, ShutdownKind, Supervisor, SupervisorError};

impl Supervisor {
    /// Runs the onboot containers in order. A failure is reported with its
    /// exit code and the boot goes on, unless the container is `required`
    /// (then the machine powers off).
    pub(crate) fn run_onboot(&mut self, image: &ImageJson) {
        for c in &image.onboot {
            if self.shutdown.is_some() {
                break;
            }
            let t0 = uptime();
            let result = self.run_oneshot(c, None);
            self.journal
                .phase(format!("onboot {}", c.name), t0, uptime() - t0);
            match result {
                Ok(ExitStatus::Code(0)) => say!("onboot {} done", c.name),
                Ok(exit) => {
                    let required = runtime::load_runtime_json(Path::new(&c.bundle))
                        .map(|r| r.required)
                        .unwrap_or(false);
                    if required {
                        say!(
                            "onboot {} failed with {exit}; it is required, powering off",
                            c.name
                        );
                        self.shutdown = Some(ShutdownKind::Poweroff);
                    } else {
                        say!("onboot {} failed with {exit}; boot continues", c.name);
                    }
                }
                Err(e) => say!(
                    "onboot {} could not run: {}; boot continues",
                    c.name,
                    report::chain(&e)
                ),
            }
        }
    }

    /// Runs one onboot/onshutdown container to completion (killed at
    /// `deadline`, if given).
    pub(crate) fn run_oneshot(
        &mut self,
        c: &ContainerRef,
        deadline: Option<Instant>,
    ) -> Result<ExitStatus, SupervisorError> {
        let bundle = PathBuf::from(&c.bundle);
        let rt = runtime::load_runtime_json(&bundle)?;
        runtime::prepare(&rt)?;
        self.output.set_console(&c.name, rt.console_log);
        let id = format!("oneshot-{}", c.name);
        let started = Instant::now();
        let running = self.start_container(&id, &c.name, &bundle)?;
        self.oneshot = Some((running.pid, None));
        let mut killed = false;
        let exit = loop {
            if let Some((_, Some(exit))) = self.oneshot {
                break exit;
            }
            if !killed && deadline.is_some_and(|d| Instant::now() >= d) {
                say!("{} did not finish in time; killing it", c.name);
                let _ = running.signal(SignalNumber::KILL);
                killed = true;
            }
            self.pump(Duration::from_millis(500));
        };
        self.oneshot = None;
        self.output.drain(&mut self.clients);
        say!(
            "{} exited with {exit} after {:.3}s",
            c.name,
            started.elapsed().as_secs_f64()
        );
        if let Err(e) = running.delete() {
            say!("cleaning up {}: {}", c.name, report::chain(&e));
        }
        Ok(exit)
    }
}
