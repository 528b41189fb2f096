//! Packages: a folder with a `build.yml`, built into an image in the store
//! without Docker. Sources combine, in order, into one deterministic layer:
//! Debian packages for the target arch, binaries built from this workspace
//! (static musl), and files from the folder. The tag hashes everything the
//! build reads, so an unchanged package is never rebuilt.
//!
//! One job per file: [`definition`] reads `build.yml`, [`tag`] computes the
//! tag (and the git-dirty check), [`lock`] keeps `build.lock`, `build.rs`
//! runs a build, and [`sources`] holds one file per source kind (`debian`
//! with its kernel layout and CA bundle, `cargo`, `files`, busybox links).
//!
//! Its neighbours: the `hull` CLI (`hull pkg`, and `hull build` for
//! `@pkg:` references) calls [`Package::build`]; images land in `hull-store`;
//! Debian sources come through `hull-debian`. Nothing here reads the
//! environment or prints: the caller passes the timestamp and a function
//! for progress lines in [`BuildOptions`].

mod build;
pub mod definition;
mod error;
pub mod lock;
pub mod sources;
pub mod tag;

use std::fs;
use std::path::{Path, PathBuf};

pub use contract::Arch;
pub use definition::{BuildYml, CargoSource, Source};
pub use error::{PkgError, YamlError};
pub use lock::{LockFile, LockedDeb, LockedSource, LOCK_FILE};

/// A package: its folder (canonical) and its definition.
pub struct Package {
    pub dir: PathBuf,
    pub yml: BuildYml,
}

/// How to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Build even when the store has the tag.
    pub force: bool,
    /// Fail instead of updating `build.lock` when the archive moved on.
    pub locked: bool,
    /// The mtime of every file in the image (SOURCE_DATE_EPOCH).
    pub mtime: u64,
    /// Where progress and warnings go, one line each (none: nowhere).
    pub progress: Option<fn(&str)>,
}

impl BuildOptions {
    fn say(&self, line: &str) {
        if let Some(p) = self.progress {
            p(line);
        }
    }
}

/// The result of [`Package::build`].
#[derive(Debug, Clone)]
pub struct Built {
    pub name: String,
    /// The manifest digest in the store.
    pub digest: String,
    /// Built now (false: the store had it).
    pub fresh: bool,
}

impl Package {
    /// Reads `DIR/build.yml`; a mistake in it is reported with its position.
    pub fn load(dir: &Path) -> Result<Package, PkgError> {
        let yml = definition::read(dir)?;
        let dir = fs::canonicalize(dir).map_err(|source| PkgError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Package { dir, yml })
    }

    /// The image name for `tag`: `ORG/IMAGE:TAG`.
    pub fn name(&self, tag: &str) -> String {
        format!("{}/{}:{}", self.yml.org, self.yml.image, tag)
    }

    /// The arches to build when none is asked for: the package's, else x86_64.
    pub fn default_arches(&self) -> Vec<Arch> {
        if self.yml.arches.is_empty() {
            vec![Arch::X86_64]
        } else {
            self.yml.arches.clone()
        }
    }

    fn check_arch(&self, arch: Arch) -> Result<(), PkgError> {
        if self.yml.arches.is_empty() || self.yml.arches.contains(&arch) {
            Ok(())
        } else {
            Err(PkgError::Arch {
                package: self.yml.image.clone(),
                arch,
                arches: self
                    .yml
                    .arches
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                input: report::BadInput::marker(),
            })
        }
    }

    /// The workspace this package's `cargo` sources build from: the nearest
    /// ancestor whose Cargo.toml has a `[workspace]`.
    fn workspace(&self) -> Option<PathBuf> {
        self.dir
            .ancestors()
            .find(|d| {
                fs::read_to_string(d.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]"))
            })
            .map(Path::to_path_buf)
    }
}
