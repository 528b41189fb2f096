//! `hull run qemu`: boots a `kernel+initrd` output in QEMU.

use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct RunQemuArgs {
    /// Guest architecture: x86_64 (amd64) or aarch64 (arm64).
    #[arg(long, default_value = "x86_64")]
    pub arch: String,
    /// Memory in MiB.
    #[arg(long, default_value_t = 1024)]
    pub mem: u32,
    /// Virtual CPUs.
    #[arg(long, default_value_t = 1)]
    pub cpus: u32,
    /// Directory for the QMP socket (default PREFIX-state).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// For CI: wait (up to SECONDS) until every service is up, press the power
    /// button, and exit 0 only if the guest came up and powered off by itself.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "300")]
    pub until_ready: Option<u64>,
    /// Forward a host port to the guest: [ADDRESS:]HOST:GUEST[/udp]; the
    /// address defaults to 127.0.0.1 (repeatable).
    #[arg(long, value_name = "[ADDR:]HOST:GUEST[/udp]")]
    pub publish: Vec<String>,
    /// Attach a disk (virtio, /dev/vda first), created blank when missing:
    /// FILE[,size=S] with S such as 512M or 4G, default 1G (repeatable).
    #[arg(long, value_name = "FILE[,size=S]")]
    pub disk: Vec<String>,
    /// The output prefix given to `hull build` (DIR/NAME).
    pub prefix: PathBuf,
}

pub fn run(args: RunQemuArgs) -> anyhow::Result<i32> {
    // Every mistake in the arguments is found before anything starts (and
    // before a --disk is created).
    let arch = crate::parse_arch(&args.arch)?;
    let mut cfg = qemu::VmConfig::from_prefix(&args.prefix, arch)?;
    cfg.mem_mib = args.mem;
    cfg.cpus = args.cpus;
    for p in &args.publish {
        cfg.publish.push(p.parse()?);
    }
    let disks = args
        .disk
        .iter()
        .map(|d| d.parse())
        .collect::<Result<Vec<qemu::Disk>, _>>()?;
    for disk in disks {
        disk.ensure()?;
        cfg.disks.push(disk);
    }
    if let Some(s) = args.state {
        cfg.state_dir = s;
    }
    let opts = qemu::RunOptions {
        until_ready: args.until_ready.map(Duration::from_secs),
    };
    Ok(qemu::run(&cfg, opts)?)
}
