//! The suite's index: `InRelease` (or `Release` + `Release.gpg`), its
//! OpenPGP signature checked against the keyring, and each component's
//! `Packages.xz` checked against the SHA256 the signed `Release` gives.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::download::{hash_file, is_younger_than, read_file, sanitize, write_atomically};
use super::Archive;
use crate::{index, DebianError, Index, SignatureError};

impl Archive {
    /// The per-mirror, per-suite cache folder for index files.
    fn index_dir(&self) -> PathBuf {
        let mirror: String = self
            .mirror
            .split_once("://")
            .map_or(self.mirror.as_str(), |(_, rest)| rest)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.cache_dir
            .join("index")
            .join(mirror)
            .join(sanitize(&self.suite))
    }

    fn dists_url(&self, rel: &str) -> String {
        format!("{}/dists/{}/{}", self.mirror, self.suite, rel)
    }

    /// Downloads (or reuses from cache) `dists/SUITE/InRelease` (else `Release` and
    /// `Release.gpg`), verifies its signature (also when it comes from the cache),
    /// then each component's `binary-ARCH/Packages.xz` against the SHA256 in it, and
    /// parses them. Nothing unverified is written to the cache.
    pub fn load_index(&mut self) -> Result<(), DebianError> {
        let dir = self.index_dir();
        let release_url = self.dists_url("InRelease");
        let cached = dir.join("InRelease");
        let fresh = !self.force_refresh && is_younger_than(&cached, self.max_age);
        let mut from_cache = fresh;
        let (mut release, mut verified) = if fresh {
            self.say(&format!("using cached {release_url}"));
            self.verified_release(&read_file(&cached)?, None, &release_url)?
        } else {
            self.download_release(&dir)?
        };
        loop {
            match self.load_packages(&dir, release.as_bytes(), &release_url) {
                Ok(index) => {
                    self.index = Some(index);
                    self.verified = verified;
                    self.force_refresh = false;
                    return Ok(());
                }
                // A cached Release may predate the archive's current Packages files.
                Err(DebianError::Checksum { .. } | DebianError::NotInRelease { .. })
                    if from_cache =>
                {
                    from_cache = false;
                    (release, verified) = self.download_release(&dir)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Downloads `InRelease` (or, where a mirror has none, `Release` +
    /// `Release.gpg`), verifies it and caches it as `InRelease` / `Release`.
    /// Returns the Release text and whether its signature verified.
    fn download_release(&self, dir: &Path) -> Result<(String, bool), DebianError> {
        let url = self.dists_url("InRelease");
        self.say(&format!("downloading {url}"));
        match self.get_bytes(&url) {
            Ok(data) => {
                let out = self.verified_release(&data, None, &url)?;
                write_atomically(&dir.join("InRelease"), &data)?;
                Ok(out)
            }
            Err(DebianError::Http { source, .. })
                if matches!(*source, ureq::Error::StatusCode(404)) =>
            {
                let url = self.dists_url("Release");
                self.say(&format!("no InRelease; downloading {url} and Release.gpg"));
                let data = self.get_bytes(&url)?;
                let sig = self.get_bytes(&self.dists_url("Release.gpg")).ok();
                let out = self.verified_release(&data, Some(sig.as_deref()), &url)?;
                // Kept for inspection only: load_index always starts from InRelease.
                write_atomically(&dir.join("Release"), &data)?;
                Ok(out)
            }
            Err(e) => Err(e),
        }
    }

    /// Checks a clear-signed InRelease (`detached` None) or a Release with its
    /// detached signature (`Some(None)`: the mirror has none) and returns the
    /// text to trust. Unverifiable input is an error unless unsigned input is allowed.
    fn verified_release(
        &self,
        data: &[u8],
        detached: Option<Option<&[u8]>>,
        url: &str,
    ) -> Result<(String, bool), DebianError> {
        let text = String::from_utf8_lossy(data);
        let result = match detached {
            None => self.keyring.verify_clearsigned(url, &text),
            Some(Some(sig)) => self
                .keyring
                .verify_detached(url, data, sig)
                .map(|()| text.to_string()),
            Some(None) => Err(SignatureError::NotSigned {
                what: format!("{url} (no Release.gpg)"),
                keyring: "any keyring".into(),
            }),
        };
        match result {
            Ok(t) => Ok((t, true)),
            Err(source) if self.allow_unsigned => {
                self.say(&format!(
                    "WARNING: {source}; using it unverified (allow-unsigned)"
                ));
                let body = match detached {
                    // Take the text out of the clear-signed frame without trusting it.
                    None => text
                        .split_once("\n\n")
                        .map(|(_, rest)| rest)
                        .unwrap_or(&text)
                        .split("-----BEGIN PGP SIGNATURE-----")
                        .next()
                        .unwrap_or("")
                        .to_string(),
                    Some(_) => text.to_string(),
                };
                Ok((body, false))
            }
            Err(source) => Err(DebianError::Signature { source }),
        }
    }

    fn load_packages(
        &self,
        dir: &Path,
        release: &[u8],
        release_url: &str,
    ) -> Result<Index, DebianError> {
        let sums = index::parse_release(&String::from_utf8_lossy(release), release_url)?;
        let mut idx = Index::default();
        for component in &self.components {
            let rel = format!("{component}/binary-{}/Packages.xz", self.arch.debian());
            let (hash, size) = sums.get(&rel).ok_or_else(|| DebianError::NotInRelease {
                release: release_url.to_string(),
                path: rel.clone(),
            })?;
            let path = dir.join(&rel);
            let url = self.dists_url(&rel);
            let cached_ok = match hash_file(&path) {
                Ok((h, n)) => h == *hash && n == *size,
                Err(_) => false,
            };
            if cached_ok {
                self.say(&format!("using cached {url}"));
            } else {
                self.say(&format!("downloading {url}"));
                self.download_verified(&url, &path, hash, *size)?;
            }
            let file = File::open(&path).map_err(|source| DebianError::Io {
                path: path.clone(),
                source,
            })?;
            let mut text = String::new();
            liblzma::read::XzDecoder::new_multi_decoder(BufReader::new(file))
                .read_to_string(&mut text)
                .map_err(|source| DebianError::Decompress {
                    path: path.clone(),
                    source,
                })?;
            idx.add_packages(&text, &url)?;
        }
        Ok(idx)
    }
}
