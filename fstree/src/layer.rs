//! Applying one OCI/Docker layer to a [`Tree`]. Layers come from strangers:
//! paths that escape, symlinks that climb out, hard links to nowhere and
//! sizes past [`Limits`] are refused, and a refused layer leaves the tree
//! exactly as it was (the tree's undo journal).

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::tree::Undo;
use crate::{clean_path, Entry, Kind, Tree, TreeError, Xattrs};

/// Caps on what one layer may put into a tree: the tree lives in memory and
/// layers come from strangers, so a header claiming an exabyte or a gzip bomb
/// must fail with an error instead of exhausting the host.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest single file.
    pub max_file: u64,
    /// Sum of file sizes in one layer.
    pub max_total: u64,
    /// Entries in one layer (headers included, whiteouts and skipped ones too).
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file: 4 << 30,
            max_total: 16 << 30,
            max_entries: 1_000_000,
        }
    }
}

impl Tree {
    /// Applies one OCI/Docker layer (an uncompressed tar stream) on top of this
    /// tree with the default [`Limits`]; see [`Tree::apply_tar_with`].
    pub fn apply_tar<R: Read>(&mut self, reader: R) -> Result<Vec<PathBuf>, TreeError> {
        self.apply_tar_with(reader, &Limits::default())
    }

    /// Applies one layer: whiteouts (`.wh.NAME`) delete, opaque markers
    /// (`.wh..wh..opq`) clear a directory. Layers are hostile input: entries
    /// with `..` or an absolute path, entries reached through a symlink that
    /// climbs above the root, hard links to anything but a file of the tree,
    /// and sizes over `limits` are refused, and a refused layer leaves the
    /// tree exactly as it was. Device nodes and FIFOs are skipped (the guest's
    /// /dev is a devtmpfs); their paths are returned so the caller can say so.
    /// Extended attributes (PAX `SCHILY.xattr.*` records) are kept on their
    /// entries; the tar writer keeps them, the initrd (newc cpio) cannot.
    pub fn apply_tar_with<R: Read>(
        &mut self,
        reader: R,
        limits: &Limits,
    ) -> Result<Vec<PathBuf>, TreeError> {
        let outer = self.journal.replace(Vec::new());
        let result = self.apply_tar_inner(reader, limits);
        let journal = std::mem::replace(&mut self.journal, outer);
        if result.is_err() {
            for undo in journal.unwrap_or_default().into_iter().rev() {
                match undo {
                    Undo::Entry(path, Some(e)) => {
                        self.entries.insert(path, e);
                    }
                    Undo::Entry(path, None) => {
                        self.entries.remove(&path);
                    }
                    Undo::Xattrs(path, Some(x)) => {
                        self.xattrs.insert(path, x);
                    }
                    Undo::Xattrs(path, None) => {
                        self.xattrs.remove(&path);
                    }
                }
            }
        } else if let (Some(outer), Some(inner)) = (&mut self.journal, journal) {
            outer.extend(inner);
        }
        result
    }

    fn apply_tar_inner<R: Read>(
        &mut self,
        reader: R,
        limits: &Limits,
    ) -> Result<Vec<PathBuf>, TreeError> {
        let mut skipped = Vec::new();
        let mut total: u64 = 0;
        let mut count = 0usize;
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(TreeError::Tar)? {
            let mut entry = entry.map_err(TreeError::Tar)?;
            count += 1;
            if count > limits.max_entries {
                return Err(TreeError::TooManyEntries {
                    limit: limits.max_entries,
                });
            }
            let raw = entry.path().map_err(TreeError::Tar)?.into_owned();
            if raw.is_absolute() {
                return Err(TreeError::AbsolutePath(raw));
            }
            let path = clean_path(&raw).ok_or_else(|| TreeError::BadPath(raw.clone()))?;
            if path.as_os_str().is_empty() {
                continue;
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
            if name == ".wh..wh..opq" {
                let dir = self.resolve_strict(&parent.join("x"))?;
                if let Some(dir) = dir.parent() {
                    self.clear_dir(dir);
                }
                continue;
            }
            if let Some(victim) = name.strip_prefix(".wh.") {
                let p = self.resolve_strict(&parent.join(victim))?;
                self.remove(p);
                continue;
            }
            let mut xattrs = Xattrs::new();
            if let Some(pax) = entry.pax_extensions().map_err(TreeError::Tar)? {
                for ext in pax {
                    let ext = ext.map_err(TreeError::Tar)?;
                    if let Some(name) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr."))
                    {
                        xattrs.insert(name.to_string(), ext.value_bytes().to_vec());
                    }
                }
            }
            let header = entry.header();
            let mode = header.mode().map_err(TreeError::Tar)? & 0o7777;
            let uid = header.uid().map_err(TreeError::Tar)? as u32;
            let gid = header.gid().map_err(TreeError::Tar)? as u32;
            let kind = match header.entry_type() {
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Symlink => {
                    let t = entry
                        .link_name()
                        .map_err(TreeError::Tar)?
                        .unwrap_or_default()
                        .into_owned();
                    Kind::Symlink(t)
                }
                tar::EntryType::Link => {
                    let t = entry
                        .link_name()
                        .map_err(TreeError::Tar)?
                        .unwrap_or_default()
                        .into_owned();
                    if t.is_absolute() {
                        return Err(TreeError::AbsolutePath(t));
                    }
                    let t = clean_path(&t).ok_or_else(|| TreeError::BadPath(t.clone()))?;
                    let t = self.resolve_strict(&t)?;
                    if !matches!(
                        self.entries.get(&t),
                        Some(Entry {
                            kind: Kind::File(_),
                            ..
                        })
                    ) {
                        return Err(TreeError::BadHardlink {
                            link: path,
                            target: t,
                        });
                    }
                    Kind::Hardlink(t)
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    if size > limits.max_file {
                        return Err(TreeError::TooLarge {
                            path,
                            size,
                            limit: limits.max_file,
                        });
                    }
                    total = total.saturating_add(size);
                    if total > limits.max_total {
                        return Err(TreeError::LayerTooLarge {
                            limit: limits.max_total,
                        });
                    }
                    // The size is capped above, so this allocation is bounded.
                    let mut data = Vec::with_capacity(size as usize);
                    (&mut entry)
                        .take(size)
                        .read_to_end(&mut data)
                        .map_err(TreeError::Tar)?;
                    Kind::File(data)
                }
                tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                    skipped.push(path);
                    continue;
                }
                _ => continue, // pax/gnu metadata entries are consumed by the tar crate
            };
            let hardlink = matches!(kind, Kind::Hardlink(_));
            let target = self.resolve_strict(&path)?;
            let at = self.insert_resolved(
                &target,
                Entry {
                    kind,
                    mode,
                    uid,
                    gid,
                },
            )?;
            if let (Some(at), false, false) = (at, xattrs.is_empty(), hardlink) {
                self.set_xattrs(at, xattrs);
            }
        }
        Ok(skipped)
    }

    /// Like [`Tree::resolve_parent`], but a symlink in a parent whose target
    /// climbs above the root (`../../..`) is an error instead of being
    /// clamped: a layer that does that is trying to write outside its root.
    fn resolve_strict(&self, path: &Path) -> Result<PathBuf, TreeError> {
        let escape = || TreeError::SymlinkEscape {
            path: path.to_path_buf(),
        };
        let clean = clean_path(path).ok_or_else(|| TreeError::BadPath(path.into()))?;
        let comps: Vec<_> = clean.components().collect();
        let mut resolved = PathBuf::new();
        let mut hops = 0;
        for (i, c) in comps.iter().enumerate() {
            resolved.push(c);
            if i + 1 == comps.len() {
                break;
            }
            while let Some(Entry {
                kind: Kind::Symlink(target),
                ..
            }) = self.entries.get(&resolved)
            {
                hops += 1;
                if hops > 40 {
                    return Err(escape());
                }
                let base = if target.is_absolute() {
                    PathBuf::new()
                } else {
                    resolved.parent().map(Path::to_path_buf).unwrap_or_default()
                };
                resolved = normalize_strict(&base.join(target)).ok_or_else(escape)?;
            }
        }
        Ok(resolved)
    }
}

/// Normalises `..`, or `None` when it would go above the root.
fn normalize_strict(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotdot_in_layer_is_refused() {
        let mut raw = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // set_path refuses "..", so write the name bytes directly as a hostile tool would.
        h.as_old_mut().name[..9].copy_from_slice(b"../escape");
        h.set_cksum();
        raw.append(&h, &b"x"[..]).unwrap();
        let data = raw.into_inner().unwrap();
        let mut t = Tree::new();
        assert!(matches!(
            t.apply_tar(data.as_slice()),
            Err(TreeError::BadPath(_))
        ));
    }

    /// A tar entry written byte by byte, as a hostile tool would (the tar
    /// crate's own setters refuse `..` and absolute names).
    fn raw_entry(
        b: &mut tar::Builder<Vec<u8>>,
        kind: tar::EntryType,
        name: &str,
        link: &str,
        data: &[u8],
    ) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(kind);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn base() -> Tree {
        let mut t = Tree::new();
        t.insert("etc/passwd", Entry::file(b"root".to_vec(), 0o644))
            .unwrap();
        t.insert("bin", Entry::symlink("/usr/bin")).unwrap();
        t.insert("usr/bin/sh", Entry::file(b"sh".to_vec(), 0o755))
            .unwrap();
        t
    }

    /// Applies a layer that starts with harmless changes (a whiteout, a new
    /// file) and ends with `bad`; the layer must be refused with `expect` and
    /// the tree left exactly as it was.
    fn refused(bad: impl FnOnce(&mut tar::Builder<Vec<u8>>), expect: fn(&TreeError) -> bool) {
        let mut b = tar::Builder::new(Vec::new());
        raw_entry(&mut b, tar::EntryType::Regular, "etc/.wh.passwd", "", b"");
        raw_entry(&mut b, tar::EntryType::Regular, "new", "", b"new");
        raw_entry(&mut b, tar::EntryType::Symlink, "up", "../../..", b"");
        bad(&mut b);
        let data = b.into_inner().unwrap();
        let mut t = base();
        let err = t.apply_tar(data.as_slice()).unwrap_err();
        assert!(expect(&err), "unexpected error {err:?}");
        assert_eq!(t, base(), "a refused layer changed the tree");
    }

    #[test]
    fn hostile_layers_are_refused_and_leave_the_tree_unchanged() {
        refused(
            |b| raw_entry(b, tar::EntryType::Regular, "../escape", "", b"x"),
            |e| matches!(e, TreeError::BadPath(_)),
        );
        refused(
            |b| raw_entry(b, tar::EntryType::Regular, "/etc/shadow", "", b"x"),
            |e| matches!(e, TreeError::AbsolutePath(_)),
        );
        // A symlink that climbs out, then a file written through it.
        refused(
            |b| raw_entry(b, tar::EntryType::Regular, "up/etc/shadow", "", b"x"),
            |e| matches!(e, TreeError::SymlinkEscape { .. }),
        );
        refused(
            |b| raw_entry(b, tar::EntryType::Link, "h", "/etc/passwd", b""),
            |e| matches!(e, TreeError::AbsolutePath(_)),
        );
        refused(
            |b| raw_entry(b, tar::EntryType::Link, "h", "../etc/passwd", b""),
            |e| matches!(e, TreeError::BadPath(_)),
        );
        refused(
            |b| raw_entry(b, tar::EntryType::Link, "h", "up/etc/passwd", b""),
            |e| matches!(e, TreeError::SymlinkEscape { .. }),
        );
        // A whiteout through the escaping symlink.
        refused(
            |b| raw_entry(b, tar::EntryType::Regular, "up/etc/.wh.passwd", "", b""),
            |e| matches!(e, TreeError::SymlinkEscape { .. }),
        );
    }

    #[test]
    fn sizes_are_capped_before_reading() {
        let mut h = tar::Header::new_gnu();
        h.set_path("big").unwrap();
        // Claims a petabyte: must fail on the header, not on allocation.
        h.set_size(1 << 50);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut data = h.as_bytes().to_vec();
        data.extend_from_slice(&[0u8; 1024]);
        let mut t = base();
        assert!(matches!(
            t.apply_tar(data.as_slice()),
            Err(TreeError::TooLarge { .. })
        ));
        assert_eq!(t, base());

        let mut layer = Tree::new();
        layer.insert("a", Entry::file(vec![1; 600], 0o644)).unwrap();
        layer.insert("b", Entry::file(vec![2; 600], 0o644)).unwrap();
        let tar = layer.write_tar(Vec::new(), 0).unwrap();
        let small = Limits {
            max_file: 1000,
            max_total: 1000,
            max_entries: 10,
        };
        let mut t = base();
        assert!(matches!(
            t.apply_tar_with(tar.as_slice(), &small),
            Err(TreeError::LayerTooLarge { .. })
        ));
        assert_eq!(t, base());
        let few = Limits {
            max_entries: 1,
            ..Limits::default()
        };
        assert!(matches!(
            t.apply_tar_with(tar.as_slice(), &few),
            Err(TreeError::TooManyEntries { .. })
        ));
    }

    #[test]
    fn layers_follow_absolute_symlinks_inside_and_skip_devices() {
        let mut b = tar::Builder::new(Vec::new());
        raw_entry(&mut b, tar::EntryType::Regular, "bin/ls", "", b"ls");
        raw_entry(&mut b, tar::EntryType::Link, "usr/bin/dir", "bin/ls", b"");
        raw_entry(&mut b, tar::EntryType::Char, "dev/null", "", b"");
        raw_entry(&mut b, tar::EntryType::Directory, "etc/", "", b"");
        raw_entry(&mut b, tar::EntryType::Regular, "etc/.wh..wh..opq", "", b"");
        let data = b.into_inner().unwrap();
        let mut t = base();
        let skipped = t.apply_tar(data.as_slice()).unwrap();
        assert_eq!(skipped, vec![PathBuf::from("dev/null")]);
        assert_eq!(
            t.get("usr/bin/ls").unwrap().kind,
            Kind::File(b"ls".to_vec())
        );
        assert_eq!(
            t.get("usr/bin/dir").unwrap().kind,
            Kind::Hardlink(PathBuf::from("usr/bin/ls"))
        );
        assert!(!t.contains("dev/null"));
        assert!(
            t.contains("etc") && !t.contains("etc/passwd"),
            "opaque dir cleared"
        );
    }

    #[test]
    fn xattrs_survive_layers_and_tar_and_are_undone_with_a_refused_layer() {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([("SCHILY.xattr.security.capability", &b"\x01\x02"[..])])
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "bin/ping", &b"ping"[..]).unwrap();
        let layer = b.into_inner().unwrap();

        let mut t = Tree::new();
        t.apply_tar(layer.as_slice()).unwrap();
        let want: Xattrs = [("security.capability".to_string(), vec![1u8, 2])].into();
        assert_eq!(t.xattrs("bin/ping"), Some(&want));

        // Through the tar writer and back, and through merge and subtree.
        let mut back = Tree::new();
        back.apply_tar(t.write_tar(Vec::new(), 0).unwrap().as_slice())
            .unwrap();
        assert_eq!(back, t);
        let mut merged = Tree::new();
        merged.merge(&t, "c/rootfs").unwrap();
        assert_eq!(merged.xattrs("c/rootfs/bin/ping"), Some(&want));
        assert_eq!(merged.subtree("c/rootfs"), t);

        // A layer that replaces the file, then is refused: the old file and
        // its xattrs are back.
        let mut bad = tar::Builder::new(Vec::new());
        raw_entry(&mut bad, tar::EntryType::Regular, "bin/ping", "", b"evil");
        raw_entry(&mut bad, tar::EntryType::Regular, "../x", "", b"");
        let bad = bad.into_inner().unwrap();
        let before = t.clone();
        assert!(t.apply_tar(bad.as_slice()).is_err());
        assert_eq!(t, before);
        assert_eq!(t.xattrs("bin/ping"), Some(&want));
        // Replaced for good: the new file has none.
        t.insert("bin/ping", Entry::file(b"new".to_vec(), 0o755))
            .unwrap();
        assert_eq!(t.xattrs("bin/ping"), None);
    }
}
