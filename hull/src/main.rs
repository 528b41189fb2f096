//! `hull`: builds minimal, immutable, container-native Linux appliances from
//! YAML and boots them. Thin: each verb lives in `cmd/`, the work in the
//! library modules and crates beside it.

mod cache;
mod check;
mod cmd;
mod config;
mod image_map;
mod images;
mod ocispec;
mod pkg;
mod yaml_load;

use clap::{Parser, Subcommand};

/// Bad usage or bad input: printed as one line, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

#[derive(Parser)]
#[command(
    name = "hull",
    version,
    about = "Build and run minimal, immutable Linux appliances from YAML"
)]
struct Cli {
    /// The image cache (default: $HULL_CACHE, else $XDG_CACHE_HOME/hull, else ~/.cache/hull).
    #[arg(long, global = true, value_name = "DIR")]
    cache: Option<std::path::PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build bootable outputs from YAML files.
    Build(cmd::build::BuildArgs),
    /// Check YAML files without building (offline): every error, each as FILE:LINE:COL.
    Validate(cmd::validate::ValidateArgs),
    /// Run a built image.
    #[command(subcommand)]
    Run(RunCmd),
    /// Build and inspect packages.
    #[command(subcommand)]
    Pkg(cmd::pkg::PkgCmd),
    /// The image cache: list, pull, push, import, export, verify, clean.
    #[command(subcommand)]
    Cache(cmd::cache::CacheCmd),
    /// Inspect and control a running VM's services (hullctl from the host).
    Ctl(cmd::ctl::CtlArgs),
}

#[derive(Subcommand)]
enum RunCmd {
    /// Boot a kernel+initrd output in QEMU (TCG when KVM is not usable).
    Qemu(cmd::run_qemu::RunQemuArgs),
}

/// SOURCE_DATE_EPOCH when set (reproducible builds), else 0.
pub fn source_date_epoch() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let cli = Cli::parse();
    if let Some(dir) = &cli.cache {
        // Every command finds the cache through Cache::default_root();
        // still single-threaded here.
        std::env::set_var("HULL_CACHE", dir);
    }
    let result = match cli.cmd {
        Cmd::Build(a) => cmd::build::run(a).map(|_| 0),
        Cmd::Validate(a) => cmd::validate::run(a).map(|_| 0),
        Cmd::Run(RunCmd::Qemu(a)) => cmd::run_qemu::run(a),
        Cmd::Pkg(c) => cmd::pkg::run(c).map(|_| 0),
        Cmd::Cache(c) => cmd::cache::run(c),
        Cmd::Ctl(a) => cmd::ctl::run(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // Mistakes in the input files: one `FILE:LINE:COL: message` per line.
            if let Some(errs) = e.downcast_ref::<config::ConfigErrors>() {
                eprintln!("{errs}");
                std::process::exit(2);
            }
            let code = if e.downcast_ref::<UsageError>().is_some() {
                2
            } else {
                1
            };
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("hull: {}", chain.join(": "));
            std::process::exit(code);
        }
    }
}
