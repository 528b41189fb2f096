//! A Debian archive client for the host tool.
//!
//! [`Archive`] downloads a suite's `Release` and `Packages.xz` index (cached),
//! [`Archive::resolve`] computes a dependency closure, [`Archive::fetch`] downloads
//! and verifies a `.deb`, and [`unpack_deb`] puts its data into a
//! [`fstree::Tree`] without running any maintainer script.
//!
//! Trust: the suite's `InRelease` (or `Release` + `Release.gpg`) must carry a
//! good OpenPGP signature by a key of the archive keyring ([`Keyring::debian`]
//! unless told otherwise), every `Packages.xz` is checked against the SHA256 in
//! that signed `Release`, and every `.deb` against the SHA256 in `Packages`. An
//! index that cannot be verified is refused unless the caller allows it
//! explicitly ([`Archive::allow_unsigned`]).
//!
//! One job per file: [`archive`] (a suite: its signed index in
//! `archive/release.rs`, downloads in `archive/download.rs`, resolving and
//! fetching packages), [`deb`] (unpacking a `.deb`), `index` (the `Release`
//! and `Packages` parsers), `signature` (OpenPGP), `version` (Debian version
//! order), `error`. The architecture is [`contract::Arch`], spelled the
//! Debian way ([`Arch::debian`]). Its neighbour: `hull-pkg` builds the
//! `debian:` sources of packages with it.

pub mod archive;
pub mod deb;
mod error;
mod index;
mod signature;
mod version;

use std::time::Duration;

pub use archive::Archive;
pub use contract::Arch;
pub use deb::{unpack_deb, unpack_deb_skipped};
pub use error::DebianError;
pub use index::{parse_depends, DebPackage, Dep, DepGroup, Index};
pub use signature::{Keyring, SignatureError};
pub use version::compare_versions;

/// A progress callback: receives one human-readable line per step.
pub type Progress = Box<dyn Fn(&str) + Send + Sync>;

/// Cached index files older than this are downloaded again (unless refresh is forced).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
