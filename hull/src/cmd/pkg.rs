//! `hull pkg build`, `hull pkg show-tag`, `hull pkg lock` and `hull pkg push`
//! (through the registry client of `hull-store`).

use std::path::PathBuf;

use crate::cache::Cache;
use crate::pkg::{normalize_arch, BuildOptions, Package, PkgError};
use crate::UsageError;

#[derive(clap::Subcommand)]
pub enum PkgCmd {
    /// Build a package folder into the cache (nothing happens if its tag is cached).
    Build {
        /// Target architecture (repeatable; default: every arch the package lists).
        #[arg(long)]
        arch: Vec<String>,
        /// Build even if the cache already has this tag.
        #[arg(long)]
        force: bool,
        /// Fail instead of updating build.lock when the archive serves other versions.
        #[arg(long)]
        locked: bool,
        dir: PathBuf,
    },
    /// Print the tag the package would be built with.
    ShowTag { dir: PathBuf },
    /// Resolve the package's Debian sources as the archive serves them now and
    /// rewrite its build.lock.
    Lock {
        /// Architecture (repeatable; default: every arch the package lists).
        #[arg(long)]
        arch: Vec<String>,
        dir: PathBuf,
    },
    /// Build the package (if needed) for its arches and push it to a registry:
    /// every arch goes up under one tag (an image index when there are several).
    Push {
        /// Architecture (repeatable; default: every arch the package lists).
        #[arg(long)]
        arch: Vec<String>,
        /// Where to push (default: ORG/IMAGE:TAG, on Docker Hub as LinuxKit's).
        #[arg(long)]
        to: Option<String>,
        /// Fail instead of updating build.lock when the archive serves other versions.
        #[arg(long)]
        locked: bool,
        /// Send REGISTRY's images to URL instead (repeatable), e.g.
        /// docker.io=http://127.0.0.1:5000. Loopback registries speak plain HTTP.
        #[arg(long = "mirror", value_name = "REGISTRY=URL")]
        mirrors: Vec<String>,
        dir: PathBuf,
    },
}

/// The arches asked for, else the package's, else x86_64; normalised.
fn arches(p: &Package, asked: Vec<String>) -> Result<Vec<&'static str>, UsageError> {
    let list = if !asked.is_empty() {
        asked
    } else if !p.yml.arches.is_empty() {
        p.yml.arches.clone()
    } else {
        vec!["x86_64".to_string()]
    };
    list.iter()
        .map(|a| normalize_arch(a).ok_or_else(|| UsageError(format!("unknown arch {a:?}"))))
        .collect()
}

/// Exit code 2 when the package is at fault, 1 when the operation failed.
fn usage_if_bad_input(e: PkgError) -> anyhow::Error {
    if e.is_bad_input() {
        UsageError(e.to_string()).into()
    } else {
        e.into()
    }
}

pub fn run(cmd: PkgCmd) -> anyhow::Result<()> {
    match cmd {
        PkgCmd::ShowTag { dir } => {
            let p = Package::load(&dir).map_err(|e| UsageError(e.to_string()))?;
            println!("{}", p.name(&p.tag()?));
        }
        PkgCmd::Build {
            arch,
            force,
            locked,
            dir,
        } => {
            let p = Package::load(&dir).map_err(|e| UsageError(e.to_string()))?;
            let cache = Cache::open(Cache::default_root())?;
            let opts = BuildOptions { force, locked };
            for a in arches(&p, arch)? {
                let b = p.build_with(&cache, a, &opts).map_err(usage_if_bad_input)?;
                if b.fresh {
                    println!("{} ({a}) built: {}", b.name, b.digest);
                } else {
                    println!(
                        "{} ({a}) is up to date in the cache, nothing to do: {}",
                        b.name, b.digest
                    );
                }
            }
        }
        PkgCmd::Lock { arch, dir } => {
            let p = Package::load(&dir).map_err(|e| UsageError(e.to_string()))?;
            let cache = Cache::open(Cache::default_root())?;
            let arches = arches(&p, arch)?;
            let changes = p.lock(&cache, &arches).map_err(usage_if_bad_input)?;
            if changes.is_empty() {
                println!("{}: build.lock is up to date", p.dir.display());
            } else {
                for c in &changes {
                    println!("{c}");
                }
                println!("{}: build.lock rewritten", p.dir.display());
            }
        }
        PkgCmd::Push {
            arch,
            to,
            locked,
            mirrors,
            dir,
        } => {
            let p = Package::load(&dir).map_err(|e| UsageError(e.to_string()))?;
            let cache = Cache::open(Cache::default_root())?;
            let opts = BuildOptions {
                force: false,
                locked,
            };
            let mut name = None;
            for a in arches(&p, arch)? {
                let b = p.build_with(&cache, a, &opts).map_err(usage_if_bad_input)?;
                name = Some(b.name);
            }
            // Every arch has the same tag: the lock covers them all.
            let name = name.ok_or_else(|| UsageError("no arch to push".into()))?;
            let dest = to.unwrap_or_else(|| name.clone());
            let images = crate::images::Images::new(&crate::images::PullArgs {
                pull: false,
                mirrors,
            })?;
            let digest =
                images
                    .registry()
                    .push(&cache, &name, &dest)
                    .map_err(|e| -> anyhow::Error {
                        if e.is_bad_input() {
                            UsageError(e.to_string()).into()
                        } else {
                            e.into()
                        }
                    })?;
            println!("pushed {name} to {dest} ({digest})");
        }
    }
    Ok(())
}
