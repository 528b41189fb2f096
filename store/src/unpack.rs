//! Writes a [`Tree`] to a real directory (`hull cache export --format
//! filesystem`). The tree is already confined (no `..`, parents resolved
//! inside it), but the disk is checked again: every parent of every entry
//! must be a real directory under the target, never a symlink, and nothing
//! is created through an existing name, so a tree cannot make the writer
//! touch anything outside the target.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path};

use fstree::{Kind, Tree, TreeError};

fn err(path: &Path, e: std::io::Error) -> TreeError {
    TreeError::Write(std::io::Error::new(
        e.kind(),
        format!("{}: {e}", path.display()),
    ))
}

/// Writes every entry of `tree` below `dir` (which must exist). Modes are
/// kept; ownership too when running as root; extended attributes where the
/// filesystem (and our privileges) allow: returns how many it refused.
/// Directory modes are applied last, so that a read-only directory can still
/// be filled.
pub fn write_tree(tree: &Tree, dir: &Path) -> Result<usize, TreeError> {
    let root = nix::unistd::geteuid().is_root();
    let mut refused = 0;
    let mut dirs = Vec::new();
    for (path, entry) in tree.iter() {
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(TreeError::BadPath(path.clone()));
        }
        check_parents(dir, path)?;
        let target = dir.join(path);
        match &entry.kind {
            Kind::Dir => {
                match fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => return Err(TreeError::NotADirectory(path.clone())),
                    Err(_) => fs::create_dir(&target).map_err(|e| err(&target, e))?,
                }
                dirs.push((target.clone(), entry.mode));
            }
            Kind::File(data) => {
                // O_EXCL|O_NOFOLLOW: never write through an existing name.
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .mode(0o600)
                    .open(&target)
                    .map_err(|e| err(&target, e))?;
                f.write_all(data).map_err(|e| err(&target, e))?;
                f.set_permissions(fs::Permissions::from_mode(entry.mode))
                    .map_err(|e| err(&target, e))?;
            }
            Kind::Symlink(t) => {
                std::os::unix::fs::symlink(t, &target).map_err(|e| err(&target, e))?;
            }
            Kind::Hardlink(t) => {
                check_parents(dir, t)?;
                // linkat(2) without AT_SYMLINK_FOLLOW: a symlink is linked, not followed.
                fs::hard_link(dir.join(t), &target).map_err(|e| err(&target, e))?;
            }
        }
        if let (Some(x), false) = (tree.xattrs(path), matches!(entry.kind, Kind::Hardlink(_))) {
            for (name, value) in x {
                // xattr::set does not follow a symlink (lsetxattr).
                match xattr::set(&target, name, value) {
                    Ok(()) => {}
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(nix::libc::ENOTSUP | nix::libc::EPERM | nix::libc::EACCES)
                        ) =>
                    {
                        refused += 1
                    }
                    Err(e) => return Err(err(&target, e)),
                }
            }
        }
        if root {
            nix::unistd::fchownat(
                None,
                &target,
                Some(nix::unistd::Uid::from_raw(entry.uid)),
                Some(nix::unistd::Gid::from_raw(entry.gid)),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| err(&target, e.into()))?;
        }
    }
    for (d, mode) in dirs.into_iter().rev() {
        fs::set_permissions(&d, fs::Permissions::from_mode(mode)).map_err(|e| err(&d, e))?;
    }
    Ok(refused)
}

/// Every existing ancestor of `path` under `dir` must be a real directory.
fn check_parents(dir: &Path, path: &Path) -> Result<(), TreeError> {
    let mut cur = dir.to_path_buf();
    let comps: Vec<_> = path.components().collect();
    for c in &comps[..comps.len().saturating_sub(1)] {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(TreeError::SymlinkEscape {
                    path: path.to_path_buf(),
                })
            }
            Err(e) => return Err(err(&cur, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fstree::Entry;

    #[test]
    fn writes_files_links_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Tree::new();
        t.insert("etc/motd", Entry::file(b"hi\n".to_vec(), 0o640))
            .unwrap();
        t.insert("ro", Entry::dir(0o555)).unwrap();
        t.insert("ro/f", Entry::file(b"x".to_vec(), 0o644)).unwrap();
        t.insert("link", Entry::symlink("/etc/motd")).unwrap();
        t.set_xattrs(
            "etc/motd",
            [("user.hull".to_string(), b"yes".to_vec())].into(),
        );
        t.insert(
            "hard",
            Entry {
                kind: Kind::Hardlink("etc/motd".into()),
                ..Entry::file(Vec::new(), 0o640)
            },
        )
        .unwrap();
        write_tree(&t, dir.path()).unwrap();
        let p = dir.path();
        assert_eq!(fs::read(p.join("etc/motd")).unwrap(), b"hi\n");
        // user.* xattrs need a filesystem that has them (ext4, tmpfs, xfs do).
        if xattr::SUPPORTED_PLATFORM {
            assert_eq!(
                xattr::get(p.join("etc/motd"), "user.hull").unwrap(),
                Some(b"yes".to_vec())
            );
        }
        assert_eq!(
            fs::metadata(p.join("etc/motd"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o640
        );
        assert_eq!(
            fs::metadata(p.join("ro")).unwrap().permissions().mode() & 0o7777,
            0o555
        );
        assert_eq!(
            fs::read_link(p.join("link")).unwrap(),
            Path::new("/etc/motd")
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            fs::metadata(p.join("hard")).unwrap().ino(),
            fs::metadata(p.join("etc/motd")).unwrap().ino()
        );
        fs::set_permissions(p.join("ro"), fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn never_writes_through_a_symlink_on_disk() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        // Something on disk the tree does not know about: a symlink leading out.
        std::os::unix::fs::symlink(outside.path(), dir.path().join("evil")).unwrap();
        let mut t = Tree::new();
        t.insert("evil/owned", Entry::file(b"x".to_vec(), 0o644))
            .unwrap();
        assert!(write_tree(&t, dir.path()).is_err());
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}
