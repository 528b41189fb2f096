//! Reading a directory of the host into a [`Tree`]: the `files:` sources of
//! packages, and tests that compare what a tool wrote with what hull built.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::{Entry, Kind, Tree, TreeError};

/// Reads a directory of the host into a [`Tree`]: regular files (contents
/// read into memory), directories and symlinks, with their permission bits,
/// uid and gid. Files with several links inside `root` become
/// [`Kind::Hardlink`]s to the first of their names in path order. Device
/// nodes, FIFOs and sockets are skipped. Symlinks are stored, never followed.
pub fn tree_from_dir(root: impl AsRef<Path>) -> Result<Tree, TreeError> {
    use std::os::unix::fs::MetadataExt;
    let root = root.as_ref();
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TreeError::ReadDir { path, source }
    };
    // Walk first, then read in the tree's own order, so that a hard link
    // points at the first of its names in path order.
    let mut found: Vec<(PathBuf, std::fs::Metadata)> = Vec::new();
    let mut dirs: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        // (`root.join("")` would add a slash to the path in messages.)
        let dir = if rel.as_os_str().is_empty() {
            root.to_path_buf()
        } else {
            root.join(&rel)
        };
        for e in std::fs::read_dir(&dir).map_err(err(&dir))? {
            let e = e.map_err(err(&dir))?;
            let rel_path = rel.join(e.file_name());
            let full = root.join(&rel_path);
            let md = std::fs::symlink_metadata(&full).map_err(err(&full))?;
            if md.is_dir() {
                dirs.push(rel_path.clone());
            }
            found.push((rel_path, md));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));

    let mut tree = Tree::new();
    let mut seen: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for (rel_path, md) in found {
        let full = root.join(&rel_path);
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink(std::fs::read_link(&full).map_err(err(&full))?)
        } else if ft.is_file() {
            let key = (md.dev(), md.ino());
            match seen.get(&key) {
                Some(first) => Kind::Hardlink(first.clone()),
                None => {
                    if md.nlink() > 1 {
                        seen.insert(key, rel_path.clone());
                    }
                    Kind::File(std::fs::read(&full).map_err(err(&full))?)
                }
            }
        } else {
            continue;
        };
        tree.insert(
            &rel_path,
            Entry {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
            },
        )?;
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_files_links_and_modes_and_says_which_path_failed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("etc")).unwrap();
        std::fs::write(d.join("etc/a"), "a").unwrap();
        std::fs::hard_link(d.join("etc/a"), d.join("etc/b")).unwrap();
        std::os::unix::fs::symlink("etc/a", d.join("link")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("etc/a"), std::fs::Permissions::from_mode(0o750)).unwrap();
        let t = tree_from_dir(d).unwrap();
        assert_eq!(t.get("etc/a").unwrap().kind, Kind::File(b"a".to_vec()));
        assert_eq!(t.get("etc/a").unwrap().mode, 0o750);
        assert_eq!(t.get("etc/b").unwrap().kind, Kind::Hardlink("etc/a".into()));
        assert_eq!(t.get("link").unwrap().kind, Kind::Symlink("etc/a".into()));

        let missing = d.join("nothere");
        let e = tree_from_dir(&missing).unwrap_err();
        assert_eq!(e.to_string(), format!("reading {missing:?}"));
        assert!(std::error::Error::source(&e).is_some());
    }
}
