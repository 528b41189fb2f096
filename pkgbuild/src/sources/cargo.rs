//! `cargo:` sources: a binary of this workspace built for the target arch
//! (static musl), in a target dir of its own.

use std::fs;
use std::process::Command;

use contract::Arch;
use fstree::{Entry, Tree};

use crate::tag::cargo_bin;
use crate::{CargoSource, Package, PkgError};

/// Builds the binary `c` names and puts it at `c.to` in `tree`.
pub fn add(pkg: &Package, c: &CargoSource, arch: Arch, tree: &mut Tree) -> Result<(), PkgError> {
    let ws = pkg.workspace().ok_or_else(|| PkgError::Build {
        package: pkg.yml.image.clone(),
        message: "a cargo source needs the package folder inside a cargo workspace".into(),
    })?;
    let triple = arch.rust_target();
    // A target dir of its own, so a nested build never waits on (or
    // invalidates) the build of hull that is running it.
    let target_dir = ws.join("target/pkg");
    let status = Command::new(cargo_bin())
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            triple,
            "-p",
            &c.package,
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .current_dir(&ws)
        .status()
        .map_err(|source| PkgError::Io {
            path: ws.clone(),
            source,
        })?;
    if !status.success() {
        return Err(PkgError::Build {
            package: pkg.yml.image.clone(),
            message: format!(
                "cargo build of {} for {triple} failed (is the target installed? rustup target add {triple})",
                c.package
            ),
        });
    }
    let bin = target_dir
        .join(triple)
        .join("release")
        .join(c.bin.as_deref().unwrap_or(&c.package));
    let data = fs::read(&bin).map_err(|source| PkgError::Io {
        path: bin.clone(),
        source,
    })?;
    tree.insert(&c.to, Entry::file(data, 0o755))
        .map_err(|source| PkgError::Tree {
            package: pkg.yml.image.clone(),
            source,
        })
}
