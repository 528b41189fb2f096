//! Content-addressed blobs: stored through a temp file and a rename, hashed
//! on the way in, verified on the way out.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{digest_hex, io, write_atomic_in, Cache, CacheError};

impl Cache {
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, CacheError> {
        Ok(self.root.join("blobs/sha256").join(digest_hex(digest)?))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).map(|p| p.is_file()).unwrap_or(false)
    }

    pub fn put_blob(&self, data: &[u8]) -> Result<String, CacheError> {
        let hex = hex::encode(Sha256::digest(data));
        let path = self.root.join("blobs/sha256").join(&hex);
        if !path.exists() {
            write_atomic_in(&self.tmp_dir(), &path, data)?;
        }
        Ok(format!("sha256:{hex}"))
    }

    /// Moves a finished download or import (`file`, in `tmp_dir()`) into the
    /// cache as blob `digest`, after checking its content against it.
    pub fn put_blob_file(&self, file: &Path, digest: &str) -> Result<(), CacheError> {
        let actual = sha256_file(file)?;
        if actual != digest {
            let _ = fs::remove_file(file);
            return Err(CacheError::Corrupt {
                digest: digest.to_string(),
            });
        }
        let path = self.blob_path(digest)?;
        fs::rename(file, &path).map_err(io(&path))
    }

    /// Streams `reader` into the cache as a blob, hashing on the way; when
    /// `expected` is given the content must match it. Returns the digest and
    /// the size.
    pub fn put_blob_reader(
        &self,
        mut reader: impl Read,
        expected: Option<&str>,
    ) -> Result<(String, u64), CacheError> {
        let dir = self.tmp_dir();
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io(&dir))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(io(tmp.path()))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            tmp.write_all(&buf[..n]).map_err(io(tmp.path()))?;
            size += n as u64;
        }
        let digest = format!("sha256:{}", hex::encode(h.finalize()));
        if let Some(e) = expected {
            if e != digest {
                return Err(CacheError::Corrupt {
                    digest: e.to_string(),
                });
            }
        }
        let path = self.blob_path(&digest)?;
        if !path.exists() {
            fs::set_permissions(
                tmp.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o644),
            )
            .map_err(io(&path))?;
            tmp.persist(&path).map_err(|e| CacheError::Io {
                path: path.clone(),
                source: e.error,
            })?;
        }
        Ok((digest, size))
    }

    /// Reads a blob and checks it against its digest.
    pub fn blob(&self, digest: &str) -> Result<Vec<u8>, CacheError> {
        let path = self.blob_path(digest)?;
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CacheError::Missing {
                    digest: digest.to_string(),
                })
            }
            Err(e) => return Err(io(&path)(e)),
        };
        if format!("sha256:{}", hex::encode(Sha256::digest(&data))) != digest {
            return Err(CacheError::Corrupt {
                digest: digest.to_string(),
            });
        }
        Ok(data)
    }

    /// Reads a JSON blob (a manifest or a config), verified.
    pub fn json_blob(&self, digest: &str) -> Result<Value, CacheError> {
        let data = self.blob(digest)?;
        serde_json::from_slice(&data).map_err(|source| CacheError::Json {
            path: self.blob_path(digest).unwrap_or_default(),
            source,
        })
    }

    /// Streams a blob through sha256 without holding it in memory.
    pub fn verify_blob(&self, digest: &str) -> Result<(), CacheError> {
        let path = self.blob_path(digest)?;
        if !path.is_file() {
            return Err(CacheError::Missing {
                digest: digest.to_string(),
            });
        }
        if sha256_file(&path)? != digest {
            return Err(CacheError::Corrupt {
                digest: digest.to_string(),
            });
        }
        Ok(())
    }
}

/// The config and layer digests a manifest names.
pub fn blob_digests(manifest: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(d) = manifest["config"]["digest"].as_str() {
        out.push(d.to_string());
    }
    for l in manifest["layers"].as_array().into_iter().flatten() {
        if let Some(d) = l["digest"].as_str() {
            out.push(d.to_string());
        }
    }
    out
}

/// `sha256:HEX` of a file, read in chunks.
pub fn sha256_file(path: &Path) -> Result<String, CacheError> {
    let mut f = fs::File::open(path).map_err(io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}
