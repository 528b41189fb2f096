//! `hull`: builds minimal, immutable, container-native Linux appliances from
//! YAML and boots them. Thin: each verb lives in `cmd/`, the work in the
//! library crates (the description in `hull-config`, bundles and the root
//! in `hull-bundle`, packages in `hull-pkg`, references in `hull-resolve`,
//! the image store in `hull-store`, ...).
//!
//! Failures are printed in one place, [`main`], through `report::fail`: one
//! line, exit code 2 when anything in the error's chain is a
//! `report::BadInput`, else 1. Mistakes in YAML files are the exception:
//! every one of them, one `FILE:LINE:COL: message` per line, exit code 2.

mod cmd;

use std::io::IsTerminal;

use clap::{Parser, Subcommand};
use contract::Arch;
use report::BadInput;

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

/// Flags of every command that may pull.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PullArgs {
    /// Ask the registry for every registry image even when it is cached
    /// (only blobs the cache lacks are downloaded).
    #[arg(long)]
    pub pull: bool,
    /// Fetch images of REGISTRY from URL instead (repeatable), e.g.
    /// docker.io=http://127.0.0.1:5000. Loopback registries speak plain HTTP.
    #[arg(long = "mirror", value_name = "REGISTRY=URL")]
    pub mirrors: Vec<String>,
}

impl PullArgs {
    /// How the resolver treats references: progress bars on a terminal,
    /// a line per pull on stderr.
    pub fn options(&self) -> resolve::Options {
        resolve::Options {
            pull: self.pull,
            mirrors: self.mirrors.clone(),
            progress: std::io::stderr().is_terminal(),
            report: Some(say),
        }
    }
}

/// SOURCE_DATE_EPOCH when set (reproducible builds), else 0.
pub fn source_date_epoch() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// An `--arch` value: every spelling of the two arches; anything else is
/// bad input.
pub fn parse_arch(arch: &str) -> Result<Arch, BadInput> {
    arch.parse()
        .map_err(|e: contract::UnknownArch| BadInput::new(e.to_string()))
}

/// One line of progress or warning on stderr, as every hull line is.
pub fn say(line: &str) {
    eprintln!("hull: {line}");
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
    let code = match result {
        Ok(code) => code,
        // Mistakes in the input files: one `FILE:LINE:COL: message` per line.
        Err(e) => match e.downcast_ref::<config::ConfigErrors>() {
            Some(errs) => {
                eprintln!("{errs}");
                report::Exit::BadInput.code()
            }
            None => report::fail("hull", e.as_ref()),
        },
    };
    std::process::exit(code);
}
