//! `files:` sources: a folder of the package copied into the image, owned
//! by root whoever owns the checkout.

use std::path::PathBuf;

use fstree::{Entry, Tree};

use crate::{Package, PkgError};

/// Copies the package's `folder` into `tree` at `to` (default `/`).
pub fn add(pkg: &Package, folder: &str, to: Option<&str>, tree: &mut Tree) -> Result<(), PkgError> {
    let from = pkg.dir.join(folder);
    let mut files = fstree::tree_from_dir(&from).map_err(|source| PkgError::Files {
        package: pkg.yml.image.clone(),
        dir: from.clone(),
        source,
    })?;
    normalize_ownership(&mut files);
    tree.merge(&files, to.unwrap_or("/"))
        .map_err(|source| PkgError::Tree {
            package: pkg.yml.image.clone(),
            source,
        })
}

/// Files from a package folder belong to root in the image.
fn normalize_ownership(tree: &mut Tree) {
    let paths: Vec<(PathBuf, Entry)> = tree
        .iter()
        .map(|(p, e)| {
            (
                p.clone(),
                Entry {
                    uid: 0,
                    gid: 0,
                    ..e.clone()
                },
            )
        })
        .collect();
    for (p, e) in paths {
        let _ = tree.insert(p, e);
    }
}
