//! What can go wrong building a package, one variant per step. A mistake in
//! the package itself (no build.yml, a bad key, an arch it is not built for,
//! a Debian name the archive does not have) carries a [`BadInput`] marker,
//! here or in the Debian error it wraps: `hull` exits with 2 for those.

use std::path::PathBuf;

use contract::Arch;
use report::BadInput;

use crate::lock::{LockError, LOCK_FILE};

#[derive(Debug, thiserror::Error)]
pub enum PkgError {
    #[error("{dir}: no build.yml here; a package is a folder with a build.yml")]
    NotAPackage {
        dir: PathBuf,
        #[source]
        input: BadInput,
    },
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Yaml(#[from] YamlError),
    #[error("package {package} is not built for {arch} (its arches: {arches})")]
    Arch {
        package: String,
        arch: Arch,
        arches: String,
        #[source]
        input: BadInput,
    },
    #[error("Debian source of {package}")]
    Debian {
        package: String,
        #[source]
        source: Box<debian::DebianError>,
    },
    #[error("{package}: files from {dir}")]
    Files {
        package: String,
        dir: PathBuf,
        #[source]
        source: fstree::TreeError,
    },
    #[error("{package}: cargo metadata of {workspace}")]
    CargoMetadata {
        package: String,
        workspace: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{package}: {message}")]
    Build { package: String, message: String },
    #[error(transparent)]
    Store(#[from] store::CacheError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{package} ({arch}): {LOCK_FILE} is out of date and --locked forbids changing it: {}", changes.join("; "))]
    Locked {
        package: String,
        arch: Arch,
        changes: Vec<String>,
    },
    #[error("package {package}")]
    Tree {
        package: String,
        #[source]
        source: fstree::TreeError,
    },
}

/// A mistake in a `build.yml`, at its position.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct YamlError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    /// Empty: marks the error as bad input (exit code 2).
    #[source]
    pub(crate) input: BadInput,
}
