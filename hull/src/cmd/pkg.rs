//! `hull pkg build`, `hull pkg show-tag`, `hull pkg lock` and `hull pkg push`:
//! packages are `hull-pkg`'s, pushes go through the registry client of
//! `hull-store`.

use std::path::PathBuf;

use contract::Arch;
use pkgbuild::{BuildOptions, Package};
use report::BadInput;
use store::Cache;

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

/// How hull builds packages, for `hull pkg` and for `@pkg:` references of
/// `hull build`: files dated SOURCE_DATE_EPOCH, progress lines on stderr.
pub fn build_options(force: bool, locked: bool) -> BuildOptions {
    BuildOptions {
        force,
        locked,
        mtime: crate::source_date_epoch(),
        progress: Some(crate::say),
    }
}

/// The arches asked for, else the package's, else x86_64.
fn arches(p: &Package, asked: &[String]) -> Result<Vec<Arch>, BadInput> {
    if asked.is_empty() {
        return Ok(p.default_arches());
    }
    asked.iter().map(|a| crate::parse_arch(a)).collect()
}

pub fn run(cmd: PkgCmd) -> anyhow::Result<()> {
    match cmd {
        PkgCmd::ShowTag { dir } => {
            let p = Package::load(&dir)?;
            println!("{}", p.name(&p.tag()?));
        }
        PkgCmd::Build {
            arch,
            force,
            locked,
            dir,
        } => {
            let p = Package::load(&dir)?;
            let cache = Cache::open(Cache::default_root())?;
            let opts = build_options(force, locked);
            for a in arches(&p, &arch)? {
                let b = p.build(&cache, a, &opts)?;
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
            let p = Package::load(&dir)?;
            let cache = Cache::open(Cache::default_root())?;
            let arches = arches(&p, &arch)?;
            let changes = p.lock(&cache, &arches, &build_options(false, false))?;
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
            let p = Package::load(&dir)?;
            let cache = Cache::open(Cache::default_root())?;
            let opts = build_options(false, locked);
            let mut name = None;
            for a in arches(&p, &arch)? {
                name = Some(p.build(&cache, a, &opts)?.name);
            }
            // Every arch has the same tag: the lock covers them all.
            let name = name.ok_or_else(|| BadInput::new("no arch to push"))?;
            let dest = to.unwrap_or_else(|| name.clone());
            let digest = super::cache::registry(&mirrors, false)?.push(&cache, &name, &dest)?;
            println!("pushed {name} to {dest} ({digest})");
        }
    }
    Ok(())
}
