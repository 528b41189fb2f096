//! The tree itself: a sorted map of entries and the path operations on it
//! (insert through symlinked parents, remove, merge, subtree), with an undo
//! journal that lets [`crate::layer`] put back a refused layer.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::{clean_path, Entry, Kind, TreeError, Xattrs};

/// The state of one path before a change, for undoing a refused layer.
#[derive(Debug, Clone)]
pub(crate) enum Undo {
    Entry(PathBuf, Option<Entry>),
    Xattrs(PathBuf, Option<Xattrs>),
}

/// A sorted tree of entries. The root itself is implicit (mode 0755, root-owned).
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub(crate) entries: BTreeMap<PathBuf, Entry>,
    /// Extended attributes, beside the entries (most have none; kept apart so
    /// that `Entry` stays a plain value everyone constructs).
    pub(crate) xattrs: BTreeMap<PathBuf, Xattrs>,
    /// While a layer is applied: the previous value of every path it touched,
    /// so that a rejected layer can be undone and leaves the tree as it was.
    pub(crate) journal: Option<Vec<Undo>>,
}

impl PartialEq for Tree {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries && self.xattrs == other.xattrs
    }
}
impl Eq for Tree {}

impl Tree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every change to `entries` goes through `put` and `take`, which feed the
    /// undo journal while a layer is being applied.
    /// A replaced entry loses its extended attributes.
    pub(crate) fn put(&mut self, path: PathBuf, entry: Entry) {
        let old = self.entries.insert(path.clone(), entry);
        let old_x = self.xattrs.remove(&path);
        if let Some(j) = &mut self.journal {
            if old_x.is_some() {
                j.push(Undo::Xattrs(path.clone(), old_x));
            }
            j.push(Undo::Entry(path, old));
        }
    }

    pub(crate) fn take(&mut self, path: &Path) {
        let old_x = self.xattrs.remove(path);
        if let Some(old) = self.entries.remove(path) {
            if let Some(j) = &mut self.journal {
                if old_x.is_some() {
                    j.push(Undo::Xattrs(path.to_path_buf(), old_x));
                }
                j.push(Undo::Entry(path.to_path_buf(), Some(old)));
            }
        }
    }

    /// The extended attributes of the entry at `path`, if it has any.
    pub fn xattrs(&self, path: impl AsRef<Path>) -> Option<&Xattrs> {
        clean_path(path.as_ref()).and_then(|p| self.xattrs.get(&p))
    }

    /// Sets the extended attributes of the entry at `path` (which must exist;
    /// hard links share their target's). An empty map removes them.
    pub fn set_xattrs(&mut self, path: impl AsRef<Path>, xattrs: Xattrs) {
        let Some(p) = clean_path(path.as_ref()) else {
            return;
        };
        if !self.entries.contains_key(&p) {
            return;
        }
        let old = if xattrs.is_empty() {
            self.xattrs.remove(&p)
        } else {
            self.xattrs.insert(p.clone(), xattrs)
        };
        if let Some(j) = &mut self.journal {
            j.push(Undo::Xattrs(p, old));
        }
    }

    pub fn get(&self, path: impl AsRef<Path>) -> Option<&Entry> {
        clean_path(path.as_ref()).and_then(|p| self.entries.get(&p))
    }

    pub fn contains(&self, path: impl AsRef<Path>) -> bool {
        self.get(path).is_some()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in path order (parents before children).
    pub fn iter(&self) -> impl Iterator<Item = (&PathBuf, &Entry)> {
        self.entries.iter()
    }

    /// Follows symlinks in the *parent* directories of `path` (not the last
    /// component), staying inside the tree: absolute targets are taken as
    /// relative to the tree's root. This is how a layer or a package that
    /// writes `bin/sh` into a tree where `bin -> usr/bin` lands in `usr/bin/sh`.
    pub fn resolve_parent(&self, path: &Path) -> Option<PathBuf> {
        let clean = clean_path(path)?;
        let mut resolved = PathBuf::new();
        let comps: Vec<_> = clean.components().collect();
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
                    return None;
                }
                let base = if target.is_absolute() {
                    PathBuf::new()
                } else {
                    resolved.parent().map(Path::to_path_buf).unwrap_or_default()
                };
                resolved = normalize_within(&base.join(target))?;
            }
        }
        Some(resolved)
    }

    /// Inserts `entry` at `path` (following symlinked parents, creating missing
    /// parent directories with mode 0755). An existing entry is replaced, except
    /// that a directory placed over a directory only updates its metadata.
    pub fn insert(&mut self, path: impl AsRef<Path>, entry: Entry) -> Result<(), TreeError> {
        self.insert_resolved(path.as_ref(), entry).map(|_| ())
    }

    /// [`Tree::insert`], returning where the entry went (`None`: the root).
    pub(crate) fn insert_resolved(
        &mut self,
        path: &Path,
        entry: Entry,
    ) -> Result<Option<PathBuf>, TreeError> {
        let p = self
            .resolve_parent(path)
            .ok_or_else(|| TreeError::BadPath(path.into()))?;
        if p.as_os_str().is_empty() {
            // The root itself: nothing to store.
            return Ok(None);
        }
        self.ensure_parents(&p)?;
        if matches!(entry.kind, Kind::Dir) {
            if let Some(old) = self.entries.get(&p) {
                if !matches!(old.kind, Kind::Dir) {
                    self.remove(&p);
                }
            }
        } else if let Some(Entry {
            kind: Kind::Dir, ..
        }) = self.entries.get(&p)
        {
            self.remove(&p);
        }
        self.put(p.clone(), entry);
        Ok(Some(p))
    }

    /// Creates a directory (and its parents) unless it exists.
    pub fn mkdir_all(&mut self, path: impl AsRef<Path>, mode: u32) -> Result<(), TreeError> {
        let path = path.as_ref();
        let p = self
            .resolve_parent(path)
            .ok_or_else(|| TreeError::BadPath(path.into()))?;
        if p.as_os_str().is_empty() {
            return Ok(());
        }
        self.ensure_parents(&p)?;
        match self.entries.get(&p) {
            Some(Entry {
                kind: Kind::Dir, ..
            }) => Ok(()),
            Some(Entry {
                kind: Kind::Symlink(_),
                ..
            }) => {
                // A symlink to a directory is fine for callers that only need the path to exist.
                Ok(())
            }
            Some(_) => Err(TreeError::NotADirectory(p)),
            None => {
                self.put(p, Entry::dir(mode));
                Ok(())
            }
        }
    }

    fn ensure_parents(&mut self, p: &Path) -> Result<(), TreeError> {
        let mut cur = PathBuf::new();
        let comps: Vec<_> = p.components().collect();
        for c in &comps[..comps.len().saturating_sub(1)] {
            cur.push(c);
            match self.entries.get(&cur) {
                None => {
                    self.put(cur.clone(), Entry::dir(0o755));
                }
                Some(Entry {
                    kind: Kind::Dir, ..
                })
                | Some(Entry {
                    kind: Kind::Symlink(_),
                    ..
                }) => {}
                Some(_) => return Err(TreeError::NotADirectory(cur)),
            }
        }
        Ok(())
    }

    /// Removes `path` and, if it is a directory, everything below it.
    pub fn remove(&mut self, path: impl AsRef<Path>) {
        let Some(p) = clean_path(path.as_ref()) else {
            return;
        };
        self.take(&p);
        let below: Vec<PathBuf> = self
            .entries
            .range(p.clone()..)
            .take_while(|(k, _)| k.starts_with(&p))
            .map(|(k, _)| k.clone())
            .collect();
        for k in below {
            self.take(&k);
        }
    }

    /// Removes everything below `path` but keeps `path` itself (an opaque whiteout).
    pub fn clear_dir(&mut self, path: impl AsRef<Path>) {
        let Some(p) = clean_path(path.as_ref()) else {
            return;
        };
        let below: Vec<PathBuf> = self
            .entries
            .range(p.clone()..)
            .skip_while(|(k, _)| **k == p)
            .take_while(|(k, _)| k.starts_with(&p))
            .map(|(k, _)| k.clone())
            .collect();
        for k in below {
            self.take(&k);
        }
    }

    /// Copies every entry of `other` into this tree, placed under `prefix`.
    pub fn merge(&mut self, other: &Tree, prefix: impl AsRef<Path>) -> Result<(), TreeError> {
        let prefix = prefix.as_ref();
        for (path, entry) in other.iter() {
            let mut entry = entry.clone();
            if let Kind::Hardlink(t) = &entry.kind {
                entry.kind = Kind::Hardlink(prefix.join(t));
            }
            let at = self.insert_resolved(&prefix.join(path), entry)?;
            if let (Some(at), Some(x)) = (at, other.xattrs.get(path)) {
                self.set_xattrs(at, x.clone());
            }
        }
        Ok(())
    }

    /// A subtree: the entries below `prefix`, re-rooted at it.
    pub fn subtree(&self, prefix: impl AsRef<Path>) -> Tree {
        let Some(p) = clean_path(prefix.as_ref()) else {
            return Tree::new();
        };
        let mut out = Tree::new();
        for (k, v) in self
            .entries
            .range(p.clone()..)
            .take_while(|(k, _)| k.starts_with(&p))
        {
            if let Ok(rel) = k.strip_prefix(&p) {
                if !rel.as_os_str().is_empty() {
                    out.put(rel.to_path_buf(), v.clone());
                    if let Some(x) = self.xattrs.get(k) {
                        out.xattrs.insert(rel.to_path_buf(), x.clone());
                    }
                }
            }
        }
        out
    }
}

/// Normalises `..` inside the tree without ever going above its root.
fn normalize_within(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                out.pop();
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
    fn insert_follows_symlinked_parents() {
        let mut t = Tree::new();
        t.insert("usr/bin", Entry::dir(0o755)).unwrap();
        t.insert("bin", Entry::symlink("usr/bin")).unwrap();
        t.insert("bin/sh", Entry::file(b"x".to_vec(), 0o755))
            .unwrap();
        assert!(t.contains("usr/bin/sh"));
        assert!(!t.entries.contains_key(Path::new("bin/sh")));
    }

    #[test]
    fn absolute_symlink_stays_inside() {
        let mut t = Tree::new();
        t.insert("evil", Entry::symlink("/../../etc")).unwrap();
        t.insert("evil/passwd", Entry::file(b"x".to_vec(), 0o644))
            .unwrap();
        assert!(t.contains("etc/passwd"));
    }
}
