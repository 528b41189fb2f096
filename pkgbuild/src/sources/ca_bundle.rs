//! The CA bundle a `debian` source with `ca-bundle: PATH` writes: what
//! `update-ca-certificates` would write, computed at build time so that the
//! image needs no maintainer script and the bundle is the same every build.

use fstree::{Entry, Kind, Tree};

use crate::{Package, PkgError};

/// Writes the bundle of the certificates in `tree` to `to`.
pub fn add(pkg: &Package, to: &str, tree: &mut Tree) -> Result<(), PkgError> {
    let bundle = ca_bundle(tree);
    if bundle.is_empty() {
        return Err(PkgError::Build {
            package: pkg.yml.image.clone(),
            message: "ca-bundle: no usr/share/ca-certificates/**/*.crt in the package".into(),
        });
    }
    tree.insert(to, Entry::file(bundle, 0o644))
        .map_err(|source| PkgError::Tree {
            package: pkg.yml.image.clone(),
            source,
        })
}

/// The concatenation of every certificate under usr/share/ca-certificates,
/// in path order, each ending with a newline: what update-ca-certificates
/// writes to /etc/ssl/certs/ca-certificates.crt with Debian's default
/// configuration (every certificate enabled).
fn ca_bundle(tree: &Tree) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, e) in tree.iter() {
        let p = path.to_string_lossy();
        if p.starts_with("usr/share/ca-certificates/") && p.ends_with(".crt") {
            if let Kind::File(data) = &e.kind {
                out.extend_from_slice(data);
                if !data.ends_with(b"\n") {
                    out.push(b'\n');
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_in_path_order_each_ending_with_a_newline() {
        let mut t = Tree::new();
        t.insert(
            "usr/share/ca-certificates/b/2.crt",
            Entry::file(b"B".to_vec(), 0o644),
        )
        .unwrap();
        t.insert(
            "usr/share/ca-certificates/a/1.crt",
            Entry::file(b"A\n".to_vec(), 0o644),
        )
        .unwrap();
        t.insert(
            "usr/share/ca-certificates/a/README",
            Entry::file(b"no".to_vec(), 0o644),
        )
        .unwrap();
        assert_eq!(ca_bundle(&t), b"A\nB\n");
    }
}
