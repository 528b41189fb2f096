//! What can go wrong talking to a Debian archive, one variant per step.
//! Messages say what failed; the cause is the `#[source]` (printed by
//! `report::chain`). The variants that are the package definition's mistake
//! (a name the archive does not have, a dependency nothing provides) carry a
//! [`BadInput`] marker, so that `hull` exits with 2 for them.

use std::io;
use std::path::PathBuf;

use contract::Arch;
use fstree::TreeError;
use report::BadInput;

use crate::SignatureError;

/// Everything that can go wrong, one variant per step.
#[derive(Debug, thiserror::Error)]
pub enum DebianError {
    #[error("GET {url}")]
    Http {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("reading the body of {url}")]
    Download {
        url: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "refusing an index that cannot be verified (allow-unsigned: true in build.yml accepts it)"
    )]
    Signature {
        #[source]
        source: SignatureError,
    },
    #[error("parsing Release file {url}: {reason}")]
    ParseRelease { url: String, reason: String },
    #[error("the Release file {release} does not list {path}")]
    NotInRelease { release: String, path: String },
    #[error("checksum mismatch for {what}: expected sha256 {expected} ({expected_size} bytes), got {actual} ({actual_size} bytes)")]
    Checksum {
        what: String,
        expected: String,
        expected_size: u64,
        actual: String,
        actual_size: u64,
    },
    #[error("decompressing {path}")]
    Decompress {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parsing {source_name}, package {package:?}: {reason}")]
    ParsePackages {
        source_name: String,
        package: String,
        reason: String,
    },
    #[error("the index is not loaded: call Archive::load_index first")]
    IndexNotLoaded,
    #[error("no package {name:?} in suite {suite} for {}", .arch.debian())]
    NoSuchPackage {
        name: String,
        suite: String,
        arch: Arch,
        /// Empty: marks the error as bad input (exit code 2).
        #[source]
        input: BadInput,
    },
    #[error(
        "{package} depends on {dependency}, which nothing in suite {suite} for {} provides",
        .arch.debian()
    )]
    Unsatisfiable {
        package: String,
        dependency: String,
        suite: String,
        arch: Arch,
        /// Empty: marks the error as bad input (exit code 2).
        #[source]
        input: BadInput,
    },
    #[error("refusing package {package}: {reason}")]
    BadIndexEntry { package: String, reason: String },
    #[error("{path} is not a valid .deb: {reason}")]
    BadDeb { path: PathBuf, reason: String },
    #[error("unpacking {path}")]
    Unpack {
        path: PathBuf,
        #[source]
        source: TreeError,
    },
}
