//! `debian:` sources: the dependency closure of the named packages for the
//! target arch, from a signed index, recorded in `build.lock`; then each
//! `.deb` fetched, verified and unpacked (no maintainer scripts).

use std::path::PathBuf;

use contract::Arch;
use fstree::Tree;
use store::Cache;

use crate::lock::{LockedDeb, LockedSource};
use crate::{BuildOptions, Package, PkgError, Source};

const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
const DEFAULT_SUITE: &str = "bookworm";

/// One `debian` source resolved for one arch: the archive (index loaded and
/// verified), the package closure, and the same as a `build.lock` entry.
pub struct Resolved {
    pub archive: debian::Archive,
    pub debs: Vec<debian::DebPackage>,
    pub locked: LockedSource,
}

fn debian_error(pkg: &Package) -> impl Fn(debian::DebianError) -> PkgError + '_ {
    |source| PkgError::Debian {
        package: pkg.yml.image.clone(),
        source: Box::new(source),
    }
}

/// Loads the archive of `d` for `arch` and resolves `names` in it.
pub fn resolve(
    pkg: &Package,
    cache: &Cache,
    d: &Source,
    names: &[String],
    arch: Arch,
    opts: &BuildOptions,
) -> Result<Resolved, PkgError> {
    let derr = debian_error(pkg);
    let mirror = d.mirror.as_deref().unwrap_or(DEFAULT_MIRROR);
    let suite = d.suite.as_deref().unwrap_or(DEFAULT_SUITE);
    let mut archive = debian::Archive::new(mirror, suite, arch, &cache.subdir("debian"));
    if let Some(k) = &d.keyring {
        let keyring = debian::Keyring::from_file(&pkg.dir.join(k))
            .map_err(|source| derr(debian::DebianError::Signature { source }))?;
        archive.set_keyring(keyring);
    }
    archive.allow_unsigned(d.allow_unsigned);
    // The archive's warnings (an unsigned index accepted) reach the user;
    // its other progress lines do not.
    if let Some(say) = opts.progress {
        archive.set_progress(Some(Box::new(move |line: &str| {
            if line.starts_with("WARNING") {
                say(line);
            }
        })));
    }
    archive.load_index().map_err(&derr)?;
    let mut names: Vec<String> = names
        .iter()
        .map(|n| n.replace("{debarch}", arch.debian()))
        .collect();
    if d.kernel {
        // Follow the metapackage (linux-image-cloud-amd64) to the versioned
        // image package, without its Depends (kmod, initramfs-tools, ...).
        let mut real = Vec::new();
        for n in &names {
            let deps = archive.depends_of(n).map_err(&derr)?;
            real.push(
                deps.into_iter()
                    .find(|d| d.starts_with("linux-image-"))
                    .unwrap_or_else(|| n.clone()),
            );
        }
        names = real;
    }
    let with_depends = d.depends.unwrap_or(!d.kernel);
    let debs = archive
        .resolve_excluding(&names, with_depends, &d.exclude)
        .map_err(&derr)?;
    let locked = LockedSource {
        mirror: archive.mirror().to_string(),
        suite: suite.to_string(),
        packages: debs
            .iter()
            .map(|p| LockedDeb {
                name: p.name.clone(),
                version: p.version.clone(),
                sha256: p.sha256.clone(),
            })
            .collect(),
    };
    Ok(Resolved {
        archive,
        debs,
        locked,
    })
}

/// Fetches and unpacks the resolved packages into `tree`, laid out as `d`
/// says (a kernel, a few paths, a CA bundle, busybox links).
pub fn add(
    pkg: &Package,
    r: &Resolved,
    d: &Source,
    mtime: u64,
    tree: &mut Tree,
) -> Result<(), PkgError> {
    let derr = debian_error(pkg);
    let mut unpacked = Tree::new();
    for p in &r.debs {
        let deb = r.archive.fetch(p).map_err(&derr)?;
        debian::unpack_deb(&deb, &mut unpacked).map_err(&derr)?;
    }
    let terr = |source| PkgError::Tree {
        package: pkg.yml.image.clone(),
        source,
    };
    if d.kernel {
        super::kernel::layout(pkg, &unpacked, mtime, tree)?;
    } else {
        if !d.paths.is_empty() {
            unpacked = keep_paths(&unpacked, &d.paths).map_err(terr)?;
        }
        tree.merge(&unpacked, "/").map_err(terr)?;
    }
    if let Some(to) = &d.ca_bundle {
        super::ca_bundle::add(pkg, to, tree)?;
    }
    if let Some(bb) = &d.busybox_links {
        super::busybox::add_links(tree, bb).map_err(|message| PkgError::Build {
            package: pkg.yml.image.clone(),
            message,
        })?;
    }
    Ok(())
}

/// The entries of `tree` at or under one of `paths` (written relative or
/// absolute), with the folders that lead to them.
fn keep_paths(tree: &Tree, paths: &[String]) -> Result<Tree, fstree::TreeError> {
    let wanted: Vec<PathBuf> = paths
        .iter()
        .map(|p| PathBuf::from(p.trim_start_matches('/')))
        .collect();
    let mut out = Tree::new();
    for (path, entry) in tree.iter() {
        if wanted.iter().any(|w| path.starts_with(w)) {
            if let Some(parent) = path.parent() {
                out.mkdir_all(parent, 0o755)?;
            }
            out.insert(path, entry.clone())?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use fstree::Entry;

    use super::*;

    #[test]
    fn keep_paths_takes_only_what_is_named() {
        let mut t = Tree::new();
        for p in ["usr/bin/a", "usr/bin/b", "usr/lib/x/conf", "etc/y"] {
            t.mkdir_all(Path::new(p).parent().unwrap(), 0o755).unwrap();
            t.insert(p, Entry::file(p.as_bytes().to_vec(), 0o644))
                .unwrap();
        }
        let kept = keep_paths(&t, &["/usr/bin/a".into(), "usr/lib/x".into()]).unwrap();
        assert!(kept.contains("usr/bin/a"));
        assert!(kept.contains("usr/lib/x/conf"));
        assert!(!kept.contains("usr/bin/b"));
        assert!(!kept.contains("etc/y"));
    }
}
