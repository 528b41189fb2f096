//! The kernel layout of a `debian` source with `kernel: true`, as LinuxKit's
//! kernel images have it: `/kernel` (the `vmlinuz`), `/config`, and
//! `/kernel.tar` holding `lib/modules`.

use fstree::{Entry, Kind, Tree};

use crate::{Package, PkgError};

/// Lays the unpacked kernel package out in `tree`.
pub fn layout(pkg: &Package, unpacked: &Tree, mtime: u64, tree: &mut Tree) -> Result<(), PkgError> {
    let terr = |source| PkgError::Tree {
        package: pkg.yml.image.clone(),
        source,
    };
    let find = |prefix: &str| {
        unpacked
            .iter()
            .find(|(p, e)| {
                p.to_string_lossy().starts_with(prefix) && matches!(e.kind, Kind::File(_))
            })
            .map(|(_, e)| e.clone())
    };
    let kernel = find("boot/vmlinuz-").ok_or_else(|| PkgError::Build {
        package: pkg.yml.image.clone(),
        message: "no boot/vmlinuz-* in the kernel package".into(),
    })?;
    tree.insert(
        "kernel",
        Entry {
            mode: 0o644,
            ..kernel
        },
    )
    .map_err(terr)?;
    if let Some(config) = find("boot/config-") {
        tree.insert("config", config).map_err(terr)?;
    }
    let mut modules = Tree::new();
    modules
        .merge(&unpacked.subtree("lib/modules"), "lib/modules")
        .map_err(terr)?;
    let tar = modules.write_tar(Vec::new(), mtime).map_err(terr)?;
    tree.insert("kernel.tar", Entry::file(tar, 0o644))
        .map_err(terr)?;
    Ok(())
}
