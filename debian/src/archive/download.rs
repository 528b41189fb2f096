//! HTTP downloads (plain http: integrity comes from the checksums of the
//! signed index, not from TLS), streamed to a temp file, hashed on the way
//! and renamed into the cache only when they match.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::Archive;
use crate::DebianError;

impl Archive {
    pub(super) fn get(&self, url: &str) -> Result<ureq::Body, DebianError> {
        self.agent
            .get(url)
            .call()
            .map(|r| r.into_body())
            .map_err(|source| DebianError::Http {
                url: url.to_string(),
                source: Box::new(source),
            })
    }

    pub(super) fn get_bytes(&self, url: &str) -> Result<Vec<u8>, DebianError> {
        let mut data = Vec::new();
        self.get(url)?
            .into_reader()
            .read_to_end(&mut data)
            .map_err(|source| DebianError::Download {
                url: url.to_string(),
                source,
            })?;
        Ok(data)
    }

    /// Streams `url` into a temporary file next to `dest`, hashing as it goes; renames
    /// it to `dest` only when the SHA256 and size match.
    pub(super) fn download_verified(
        &self,
        url: &str,
        dest: &Path,
        sha256: &str,
        size: u64,
    ) -> Result<(), DebianError> {
        let tmp = temp_path(dest);
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DebianError::Io { path, source }
        };
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut out = File::create(&tmp).map_err(io_err(&tmp))?;
        let result = (|| {
            let mut body = self.get(url)?.into_reader();
            let mut hasher = Sha256::new();
            let mut total = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = body
                    .read(&mut buf)
                    .map_err(|source| DebianError::Download {
                        url: url.to_string(),
                        source,
                    })?;
                if n == 0 {
                    break;
                }
                total += n as u64;
                if total > size {
                    // Do not let a hostile server fill the disk.
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(io_err(&tmp))?;
            }
            let actual = hex::encode(hasher.finalize());
            if actual != sha256 || total != size {
                return Err(DebianError::Checksum {
                    what: url.to_string(),
                    expected: sha256.to_string(),
                    expected_size: size,
                    actual,
                    actual_size: total,
                });
            }
            out.sync_all().map_err(io_err(&tmp))?;
            fs::rename(&tmp, dest).map_err(io_err(dest))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

pub(super) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn temp_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

pub(super) fn is_younger_than(path: &Path, max_age: Duration) -> bool {
    let Ok(modified) = fs::metadata(path).and_then(|m| m.modified()) else {
        return false;
    };
    match SystemTime::now().duration_since(modified) {
        Ok(age) => age < max_age,
        Err(_) => true, // modified in the future: clock skew, treat as fresh
    }
}

pub(super) fn read_file(path: &Path) -> Result<Vec<u8>, DebianError> {
    fs::read(path).map_err(|source| DebianError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(super) fn write_atomically(path: &Path, data: &[u8]) -> Result<(), DebianError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DebianError::Io { path, source }
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let tmp = temp_path(path);
    let result = fs::write(&tmp, data)
        .map_err(io_err(&tmp))
        .and_then(|()| fs::rename(&tmp, path).map_err(io_err(path)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// SHA256 (lower-case hex) and size of a file.
pub(super) fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex::encode(hasher.finalize()), total))
}
