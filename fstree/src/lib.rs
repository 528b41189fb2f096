//! A deterministic, in-memory filesystem tree.
//!
//! Everything hull builds on the host (package layers, container root
//! filesystems, the guest's root) is first assembled as a [`Tree`]: a sorted map
//! from a relative path to an [`Entry`]. Sorting and fixed timestamps are what
//! make outputs byte-identical from one build to the next; the writers (tar
//! here, cpio in `hull-initrd`) only walk the map in order.
//!
//! Paths are relative, `/`-separated, without a leading slash and without `.`
//! or `..` components; [`Tree::insert`] creates missing parent directories.
//!
//! One job per file: [`tree`] holds the map and its path operations,
//! [`layer`] applies OCI/Docker layers (hostile input), [`write_tar`] writes
//! the tree as a reproducible tar, and [`host_dir`] reads a directory of the
//! host into a tree. Its neighbours: `hull-store` reads and writes images as
//! trees, `hull-initrd` writes them as cpio, `hull-pkg` builds them.

pub mod host_dir;
pub mod layer;
pub mod tree;
pub mod write_tar;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

pub use host_dir::tree_from_dir;
pub use layer::Limits;
pub use tree::Tree;

/// What a path in the tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(PathBuf),
    /// A hard link to another regular file of the same tree (path relative to the root).
    Hardlink(PathBuf),
}

/// One entry: its kind plus the metadata that survives into every output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits only (for example `0o755`); the file type comes from `kind`.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Entry {
    pub fn file(data: impl Into<Vec<u8>>, mode: u32) -> Self {
        Entry {
            kind: Kind::File(data.into()),
            mode,
            uid: 0,
            gid: 0,
        }
    }
    pub fn dir(mode: u32) -> Self {
        Entry {
            kind: Kind::Dir,
            mode,
            uid: 0,
            gid: 0,
        }
    }
    pub fn symlink(target: impl Into<PathBuf>) -> Self {
        Entry {
            kind: Kind::Symlink(target.into()),
            mode: 0o777,
            uid: 0,
            gid: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("path {0:?} escapes the root or is not a plain relative path")]
    BadPath(PathBuf),
    #[error("{0:?} is in the way: it is not a directory")]
    NotADirectory(PathBuf),
    #[error("reading tar entry")]
    Tar(#[source] std::io::Error),
    #[error("writing tar")]
    Write(#[source] std::io::Error),
    #[error("hard link {link:?} points at {target:?}, which is not a regular file in the tree")]
    BadHardlink { link: PathBuf, target: PathBuf },
    #[error("layer entry {0:?} has an absolute path")]
    AbsolutePath(PathBuf),
    #[error("layer entry {path:?} would be written through a symlink that leaves the root")]
    SymlinkEscape { path: PathBuf },
    #[error("layer entry {path:?} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("layer is over the limit of {limit} bytes of file data")]
    LayerTooLarge { limit: u64 },
    #[error("layer has more than {limit} entries")]
    TooManyEntries { limit: usize },
    #[error("reading {path:?}")]
    ReadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Normalises `path` to the tree's form: relative, no `.`/`..`, no leading `/`.
/// Returns `None` for paths that would escape the root (`..` above the top).
pub fn clean_path(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => return None,
            Component::Normal(n) => out.push(n),
        }
    }
    Some(out)
}

/// Extended attributes of one entry: name (`user.x`, `security.capability`)
/// to value.
pub type Xattrs = BTreeMap<String, Vec<u8>>;
