//! `hull-init`: the guest's PID 1.
//!
//! Stage 1 runs as `/init` in the initramfs: it mounts /dev, /proc and /sys,
//! loads the kernel modules the build chose, moves the initramfs content into
//! a tmpfs that becomes the real root (containers must be able to
//! `pivot_root`, which the initramfs forbids), makes it read-only and
//! re-executes itself there as stage 2. Stage 2 mounts the writable scratch
//! filesystems and hands over to `hull-supervisor`, which runs the containers;
//! when it returns, stage 2 syncs, unmounts and asks the kernel to power off
//! or reboot.
//!
//! PID 1 must never exit: the kernel panics if it does. Every error on the
//! way is printed on the console and then handled by `hull.panic=` (poweroff
//! by default, or reboot), and a Rust panic is caught and handled the same way.

// PID 1 must never panic (tests may: see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod hullctl;
mod modules;
mod mounts;
mod move_root;
mod sys;

use std::io::Write;

use contract::ImageJson;
use supervisor::{say, Options, ShutdownKind, Supervisor, SupervisorError};

/// The argument stage 1 passes when it re-executes itself in the real root.
const STAGE2_ARG: &str = "--stage2";

/// A step of PID 1 that failed: the boot cannot go on.
#[derive(Debug, thiserror::Error)]
enum InitError {
    #[error("early mounts")]
    EarlyMounts(#[source] mounts::MountError),
    #[error("making the root filesystem")]
    Root(#[source] move_root::RootError),
    #[error("re-executing in the new root")]
    Reexec(#[source] nix::Error),
    #[error("mounting /run, /tmp, /var")]
    Scratch(#[source] mounts::MountError),
    #[error("reading {}", contract::IMAGE_JSON_PATH)]
    ReadImage(#[source] std::io::Error),
    #[error("parsing {}", contract::IMAGE_JSON_PATH)]
    ParseImage(#[source] serde_json::Error),
    #[error("starting the supervisor")]
    Supervisor(#[source] SupervisorError),
}

/// Kernel command-line switches read by hull-init.
pub(crate) struct Cmdline {
    pub console_log: bool,
    pub on_panic: ShutdownKind,
}

impl Cmdline {
    fn read() -> Self {
        Cmdline::parse(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default())
    }

    fn parse(text: &str) -> Self {
        let mut c = Cmdline {
            console_log: true,
            on_panic: ShutdownKind::Poweroff,
        };
        for word in text.split_whitespace() {
            match word {
                w if w == contract::CMDLINE_QUIET_CONTAINERS => c.console_log = false,
                "hull.panic=reboot" => c.on_panic = ShutdownKind::Reboot,
                "hull.panic=halt" => c.on_panic = ShutdownKind::Halt,
                _ => {}
            }
        }
        c
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // The same binary is the control client when called by that exact name
    // (the image has /usr/bin/hullctl -> /sbin/hull-init).
    let argv0 = args.first().map(String::as_str).unwrap_or("");
    if std::path::Path::new(argv0).file_name() == Some(std::ffi::OsStr::new("hullctl")) {
        std::process::exit(hullctl::main());
    }
    if std::path::Path::new(argv0).file_name() == Some(std::ffi::OsStr::new(runtime::DEV_BIND_HOOK))
    {
        std::process::exit(runtime::dev_bind_hook(args.get(1..).unwrap_or_default()));
    }
    if nix::unistd::getpid().as_raw() != 1 {
        let _ = writeln!(
            std::io::stderr(),
            "hull-init: must run as PID 1 (it is the init of a hull image)"
        );
        std::process::exit(2);
    }
    let stage2 = args.get(1).is_some_and(|a| a == STAGE2_ARG);
    // Stage 1 hands its timings to stage 2 as arguments (nothing is mounted
    // that both could share).
    let times: Vec<f64> = args.iter().skip(2).filter_map(|a| a.parse().ok()).collect();
    let outcome = std::panic::catch_unwind(move || {
        if stage2 {
            stage2_main(&times)
        } else {
            stage1_main()
        }
    });
    let kind = match outcome {
        Ok(Ok(kind)) => kind,
        Ok(Err(e)) => {
            say!("fatal: {}", report::chain(&e));
            Cmdline::read().on_panic
        }
        Err(_) => {
            say!("fatal: hull-init panicked (a bug; please report the lines above)");
            Cmdline::read().on_panic
        }
    };
    finish(kind)
}

fn stage1_main() -> Result<ShutdownKind, InitError> {
    mounts::early().map_err(InitError::EarlyMounts)?;
    let t_stage1 = supervisor::uptime();
    say!("stage 1 at {t_stage1:.3}s since kernel start");
    modules::load_all();
    let t_modules = supervisor::uptime();
    move_root::into_tmpfs().map_err(InitError::Root)?;
    let t_root = supervisor::uptime();
    let times = [t_stage1, t_modules, t_root].map(|t| format!("{t:.6}"));
    // exec only returns on failure.
    Err(InitError::Reexec(sys::exec_self_stage2(STAGE2_ARG, &times)))
}

/// The phases before the supervisor, for `hullctl boot-time`.
fn early_phases(times: &[f64], t_stage2: f64, t_ready: f64) -> Vec<contract::control::BootPhase> {
    let phase = |name: &str, start: f64, end: f64| contract::control::BootPhase {
        name: name.into(),
        start,
        duration: end - start,
    };
    match times {
        [t1, t_mod, t_root, ..] => vec![
            phase("kernel", 0.0, *t1),
            phase("stage 1: load kernel modules", *t1, *t_mod),
            phase("stage 1: read-only root", *t_mod, *t_root),
            phase("stage 2: mounts, hostname, network", t_stage2, t_ready),
        ],
        _ => vec![phase("kernel and stage 1", 0.0, t_stage2)],
    }
}

fn stage2_main(times: &[f64]) -> Result<ShutdownKind, InitError> {
    let t_stage2 = supervisor::uptime();
    mounts::scratch().map_err(InitError::Scratch)?;
    let cmdline = Cmdline::read();
    let data = std::fs::read(contract::IMAGE_JSON_PATH).map_err(InitError::ReadImage)?;
    let image: ImageJson = serde_json::from_slice(&data).map_err(InitError::ParseImage)?;
    sys::set_hostname(&image.name);
    if let Err(e) = sys::loopback_up() {
        say!("bringing up lo: {e}");
    }
    // Ctrl-Alt-Del becomes SIGINT to PID 1 (a clean reboot) instead of an instant reset.
    let _ = nix::sys::reboot::set_cad_enabled(false);
    say!(
        "root is read-only; starting {} onboot, {} services at {:.3}s",
        image.onboot.len(),
        image.services.len(),
        supervisor::uptime()
    );
    let sup = Supervisor::new(Options {
        console_log: cmdline.console_log,
        state_root: "/run/hull/containers".into(),
        boot_phases: early_phases(times, t_stage2, supervisor::uptime()),
    })
    .map_err(InitError::Supervisor)?;
    Ok(sup.run(&image))
}

/// The last steps of every path out of PID 1: sync, unmount, reboot(2).
/// Never returns.
fn finish(kind: ShutdownKind) -> ! {
    nix::unistd::sync();
    mounts::unmount_writable();
    nix::unistd::sync();
    say!(
        "{} ({kind:?})",
        contract::SHUTDOWN_MARKER.trim_start_matches("hull: ")
    );
    let how = match kind {
        ShutdownKind::Poweroff => nix::sys::reboot::RebootMode::RB_POWER_OFF,
        ShutdownKind::Reboot => nix::sys::reboot::RebootMode::RB_AUTOBOOT,
        ShutdownKind::Halt => nix::sys::reboot::RebootMode::RB_HALT_SYSTEM,
    };
    let _ = nix::sys::reboot::reboot(how);
    // reboot(2) does not return on success; if it failed, PID 1 must still not exit.
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_switches() {
        let c = Cmdline::parse("console=ttyS0 hull.console=off hull.panic=reboot quiet");
        assert!(!c.console_log);
        assert_eq!(c.on_panic, ShutdownKind::Reboot);
        let c = Cmdline::parse("hull.panic=halt");
        assert!(c.console_log);
        assert_eq!(c.on_panic, ShutdownKind::Halt);
        let c = Cmdline::parse("");
        assert_eq!(c.on_panic, ShutdownKind::Poweroff, "the default");
    }

    #[test]
    fn boot_phases_from_stage_one_timings() {
        let p = early_phases(&[1.5, 1.9, 2.4], 2.5, 2.7);
        let names: Vec<_> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "kernel",
                "stage 1: load kernel modules",
                "stage 1: read-only root",
                "stage 2: mounts, hostname, network"
            ]
        );
        assert!((p[1].duration - 0.4).abs() < 1e-9);
        // Without stage 1's timings (an odd argument list): one phase.
        let p = early_phases(&[], 2.5, 2.7);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].name, "kernel and stage 1");
    }

    #[test]
    fn a_fatal_error_is_one_line_with_each_cause() {
        let e = InitError::Scratch(mounts::MountError::new("tmpfs", "/run", nix::Error::EPERM));
        assert_eq!(
            report::chain(&e),
            "mounting /run, /tmp, /var: mount tmpfs on /run: EPERM: Operation not permitted"
        );
        let e = InitError::Root(move_root::RootError::Chdir("/", nix::Error::ENOENT));
        assert_eq!(
            report::chain(&e),
            "making the root filesystem: chdir /: ENOENT: No such file or directory"
        );
    }
}
