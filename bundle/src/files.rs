//! The `files` section, written into the guest's root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use config::{FileEntry, Located};
use fstree::{Entry, Tree};

/// Why a `files` entry cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A mistake in the entry (its `source` cannot be read, ...), at its position.
    #[error("{0}")]
    Bad(config::ConfigError),
    #[error(transparent)]
    Tree(#[from] fstree::TreeError),
}

/// Writes every file of `files` into `root`; `metadata` is what a
/// `metadata: yaml` file holds. Values were checked; what is left to fail
/// is reading a `source`, and a path the tree refuses.
pub(crate) fn add_files(
    root: &mut Tree,
    files: &[Located<FileEntry>],
    ids: &BTreeMap<String, u32>,
    metadata: &[u8],
) -> Result<(), FileError> {
    for f in files {
        let v = &f.value;
        let bad = |m: String| FileError::Bad(f.error(&["path"], m));
        // LinuxKit's defaults: 0600, a directory 0700 (metadata included).
        let mode = match v.mode {
            Some(m) => m.0,
            None if v.directory => 0o700,
            None => 0o600,
        };
        let path = v.guest_path();
        let entry = if v.directory {
            Entry::dir(mode)
        } else if let Some(t) = &v.symlink {
            Entry::symlink(t)
        } else if let Some(c) = &v.contents {
            Entry::file(c.as_bytes().to_vec(), mode)
        } else if v.metadata.is_some() {
            // LinuxKit writes the resolved YAML here; hull's resolved
            // description is image.json (JSON is valid YAML).
            Entry::file(metadata.to_vec(), mode)
        } else if let Some(src) = &v.source {
            let p = match src.strip_prefix("~/") {
                Some(rest) => std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_default()
                    .join(rest),
                None => f.file.parent().unwrap_or(Path::new(".")).join(src),
            };
            match std::fs::read(&p) {
                Ok(d) => Entry::file(d, mode),
                Err(_) if v.optional => continue,
                Err(e) => return Err(bad(format!("source {}: {e}", p.display()))),
            }
        } else {
            return Err(bad(
                "a file needs one of contents, source, symlink, metadata or directory".into(),
            ));
        };
        let id = |v: &Option<config::values::Id>| {
            v.as_ref().and_then(|v| v.resolve(ids).ok()).unwrap_or(0)
        };
        let entry = Entry {
            uid: id(&v.uid),
            gid: id(&v.gid),
            ..entry
        };
        if path.is_empty() {
            return Err(bad("a file cannot replace the root directory".into()));
        }
        if let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            if !root.contains(parent.to_string_lossy().as_ref()) {
                root.mkdir_all(parent.to_string_lossy().as_ref(), 0o755)?;
            }
        }
        root.insert(path, entry)?;
    }
    Ok(())
}
