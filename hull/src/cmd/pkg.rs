//! `hull pkg build` and `hull pkg show-tag`.

use std::path::PathBuf;

use crate::cache::Cache;
use crate::pkg::{normalize_arch, Package};
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
        dir: PathBuf,
    },
    /// Print the tag the package would be built with.
    ShowTag { dir: PathBuf },
}

pub fn run(cmd: PkgCmd) -> anyhow::Result<()> {
    match cmd {
        PkgCmd::ShowTag { dir } => {
            let p = Package::load(&dir).map_err(|e| UsageError(e.to_string()))?;
            println!("{}", p.name(&p.tag()?));
        }
        PkgCmd::Build { arch, force, dir } => {
            let p = Package::load(&dir).map_err(|e| UsageError(e.to_string()))?;
            let arches: Vec<String> = if arch.is_empty() {
                p.yml.arches.clone()
            } else {
                arch
            };
            let arches = if arches.is_empty() {
                vec!["x86_64".to_string()]
            } else {
                arches
            };
            let cache = Cache::open(Cache::default_root())?;
            for a in arches {
                let a =
                    normalize_arch(&a).ok_or_else(|| UsageError(format!("unknown arch {a:?}")))?;
                let name = p.name(&p.tag()?);
                let had = cache.lookup(&name, a)?.is_some();
                p.build(&cache, a, force)?;
                if had && !force {
                    println!("{name} ({a}) is up to date in the cache");
                } else {
                    println!("{name} ({a}) built");
                }
            }
        }
    }
    Ok(())
}
