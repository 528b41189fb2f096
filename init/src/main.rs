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

mod modules;
mod mounts;
mod move_root;
mod sys;

use std::io::Write;

use spec::ImageJson;
use supervisor::{error_chain, Options, ShutdownKind, Supervisor};

/// The argument stage 1 passes when it re-executes itself in the real root.
const STAGE2_ARG: &str = "--stage2";

pub(crate) fn say(msg: std::fmt::Arguments) {
    let _ = writeln!(std::io::stdout().lock(), "hull: {msg}");
}

#[macro_export]
macro_rules! say {
    ($($t:tt)*) => { $crate::say(format_args!($($t)*)) };
}

/// Kernel command-line switches read by hull-init.
pub(crate) struct Cmdline {
    pub console_log: bool,
    pub on_panic: ShutdownKind,
}

impl Cmdline {
    fn read() -> Self {
        let text = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        let mut c = Cmdline {
            console_log: true,
            on_panic: ShutdownKind::Poweroff,
        };
        for word in text.split_whitespace() {
            match word {
                w if w == spec::CMDLINE_QUIET_CONTAINERS => c.console_log = false,
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
    if nix::unistd::getpid().as_raw() != 1 {
        let _ = writeln!(
            std::io::stderr(),
            "hull-init: must run as PID 1 (it is the init of a hull image)"
        );
        std::process::exit(2);
    }
    let stage2 = args.get(1).is_some_and(|a| a == STAGE2_ARG);
    let outcome =
        std::panic::catch_unwind(move || if stage2 { stage2_main() } else { stage1_main() });
    let kind = match outcome {
        Ok(Ok(kind)) => kind,
        Ok(Err(msg)) => {
            say!("fatal: {msg}");
            Cmdline::read().on_panic
        }
        Err(_) => {
            say!("fatal: hull-init panicked (a bug; please report the lines above)");
            Cmdline::read().on_panic
        }
    };
    finish(kind)
}

fn stage1_main() -> Result<ShutdownKind, String> {
    mounts::early().map_err(|e| format!("early mounts: {e}"))?;
    say!("stage 1 at {:.3}s since kernel start", supervisor::uptime());
    modules::load_all();
    move_root::into_tmpfs().map_err(|e| format!("making the root filesystem: {e}"))?;
    // exec only returns on failure.
    Err(format!(
        "re-executing in the new root: {}",
        sys::exec_self_stage2(STAGE2_ARG)
    ))
}

fn stage2_main() -> Result<ShutdownKind, String> {
    mounts::scratch().map_err(|e| format!("mounting /run, /tmp, /var: {e}"))?;
    let cmdline = Cmdline::read();
    let image: ImageJson = std::fs::read(spec::IMAGE_JSON_PATH)
        .map_err(|e| format!("reading {}: {e}", spec::IMAGE_JSON_PATH))
        .and_then(|d| {
            serde_json::from_slice(&d)
                .map_err(|e| format!("parsing {}: {e}", spec::IMAGE_JSON_PATH))
        })?;
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
    })
    .map_err(|e| error_chain(&e))?;
    Ok(sup.run(&image))
}

/// The last steps of every path out of PID 1: sync, unmount, reboot(2).
/// Never returns.
fn finish(kind: ShutdownKind) -> ! {
    nix::unistd::sync();
    mounts::unmount_writable();
    nix::unistd::sync();
    let _ = writeln!(
        std::io::stdout().lock(),
        "{} ({kind:?})",
        spec::SHUTDOWN_MARKER
    );
    let _ = std::io::stdout().flush();
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
