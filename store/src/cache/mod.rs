//! The image cache: an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) under `$HULL_CACHE`, `$XDG_CACHE_HOME/hull` or
//! `~/.cache/hull`. Blobs are content-addressed, verified on the way in and on
//! the way out, and written atomically (a temp file in `tmp/`, then rename);
//! `index.json` names images by `org.opencontainers.image.ref.name` and
//! platform, and is rewritten under an exclusive lock so that two hull
//! processes never lose each other's tags. Writers hold a shared lock on
//! `gc.lock` while their blobs are not yet tagged; `clean` takes it
//! exclusively, so it never removes a blob a running pull is about to name.
//!
//! One job per file: this one opens the store and holds its locks;
//! `blobs.rs` stores and verifies content-addressed blobs, `names.rs` keeps
//! `index.json` (which name points at which manifest, per arch), `image.rs`
//! writes and reads whole images, `gc.rs` cleans and verifies.

mod blobs;
mod gc;
mod image;
mod names;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use fstree::Tree;
use nix::fcntl::{Flock, FlockArg};
use serde_json::Value;

pub use blobs::{blob_digests, sha256_file};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("blob {digest} in the cache does not match its digest (the cache is damaged: run `hull cache rm` on the image, or `hull cache clean`, and fetch it again)")]
    Corrupt { digest: String },
    #[error("blob {digest} is missing from the cache")]
    Missing { digest: String },
    #[error("{digest} is not a sha256 digest")]
    BadDigest { digest: String },
    #[error("{path}: not valid JSON")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("no image {name} for {arch} in the cache")]
    NotFound { name: String, arch: String },
    #[error("image {name}: {message}")]
    BadImage { name: String, message: String },
    #[error("layer {digest} of {name}")]
    Layer {
        name: String,
        digest: String,
        #[source]
        source: fstree::TreeError,
    },
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub const MANIFEST_OCI: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_OCI: &str = "application/vnd.oci.image.index.v1+json";
pub const MANIFEST_DOCKER: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const INDEX_DOCKER: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// An image read back from the cache: its root filesystem and OCI config.
pub struct CachedImage {
    pub rootfs: Tree,
    pub config: Value,
    /// Device nodes and FIFOs the layers held, which the tree leaves out.
    pub skipped: Vec<PathBuf>,
}

/// One name in `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageRecord {
    pub name: String,
    /// OCI architecture (`amd64`, `arm64`).
    pub arch: String,
    pub digest: String,
    /// Bytes of the manifest, its config and its layers (compressed).
    pub size: u64,
}

/// What `Cache::clean` removed.
#[derive(Debug, Default, serde::Serialize)]
pub struct Cleaned {
    pub blobs: usize,
    pub bytes: u64,
}

pub struct Cache {
    root: PathBuf,
}

/// A lock file held for as long as the value lives.
pub struct Lock(#[allow(dead_code)] Flock<fs::File>);

impl Cache {
    pub fn default_root() -> PathBuf {
        if let Some(p) = std::env::var_os("HULL_CACHE") {
            return p.into();
        }
        if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
            return PathBuf::from(p).join("hull");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/root".into());
        home.join(".cache/hull")
    }

    pub fn open(root: impl Into<PathBuf>) -> Result<Cache, CacheError> {
        let root = root.into();
        for d in [root.join("blobs/sha256"), root.join("tmp")] {
            fs::create_dir_all(&d).map_err(io(&d))?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        Ok(Cache { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where other host caches (Debian packages, cargo builds) live.
    pub fn subdir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// A directory for temp files on the cache's filesystem (renames into
    /// `blobs/` are atomic from there).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn lock(&self, name: &str, arg: FlockArg) -> Result<Lock, CacheError> {
        let path = self.root.join(name);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        Flock::lock(file, arg)
            .map(Lock)
            .map_err(|(_, e)| CacheError::Io {
                path,
                source: e.into(),
            })
    }

    /// Held by anyone writing blobs that are not tagged yet (pulls, imports,
    /// package builds): `clean` waits for them.
    pub fn writer_lock(&self) -> Result<Lock, CacheError> {
        self.lock("gc.lock", FlockArg::LockShared)
    }

    /// Serialises the download of one blob between processes, so two pulls
    /// of the same image do not write one partial file at once. Never
    /// blocks (`None`: another process holds it): a pull waits for it with an
    /// async sleep, because blocking its only thread while it holds other
    /// blob locks could deadlock against a pull taking them in another order.
    pub fn try_blob_lock(&self, digest: &str) -> Result<Option<Lock>, CacheError> {
        let hex = digest_hex(digest)?;
        match self.lock(&format!("tmp/{hex}.lock"), FlockArg::LockExclusiveNonblock) {
            Ok(l) => Ok(Some(l)),
            Err(CacheError::Io { source, .. })
                if source.raw_os_error() == Some(nix::libc::EWOULDBLOCK) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

pub(crate) fn ref_name(m: &Value) -> Option<&str> {
    m["annotations"]["org.opencontainers.image.ref.name"].as_str()
}

/// The hex part of a `sha256:` digest, checked (it becomes a file name).
pub fn digest_hex(digest: &str) -> Result<&str, CacheError> {
    match digest.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(h),
        _ => Err(CacheError::BadDigest {
            digest: digest.to_string(),
        }),
    }
}

/// Writes `data` to a temp file beside `path` and renames it into place, so
/// that a reader never sees half a file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), CacheError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    write_atomic_in(dir, path, data)
}

/// Like [`write_atomic`], with the temp file in `tmp_dir` (same filesystem).
pub fn write_atomic_in(tmp_dir: &Path, path: &Path, data: &[u8]) -> Result<(), CacheError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    fs::create_dir_all(tmp_dir).map_err(io(tmp_dir))?;
    let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir).map_err(io(tmp_dir))?;
    tmp.write_all(data).map_err(io(path))?;
    // tempfile creates 0600; the cache may be shared with other users.
    fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .map_err(io(path))?;
    tmp.persist(path).map_err(|e| CacheError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}
