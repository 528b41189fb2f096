//! OpenPGP verification of a suite's `InRelease` (or `Release` + `Release.gpg`)
//! against an archive keyring, through rPGP (pure Rust: no gpg on the host).
//!
//! The Debian archive keyring is compiled in (`keys/debian-archive-keyring.gpg`,
//! a copy of the file Debian's `debian-archive-keyring` package installs, version
//! 2023.3+deb12u2: the bullseye, bookworm and trixie keys). A copy rather than the
//! host's `/usr/share/keyrings`: hull builds on hosts that are not Debian, and the
//! result must not depend on what the host happens to have installed. Keys are
//! public data; a mirror of another distribution names its own keyring file.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey, StandaloneSignature};

static DEBIAN_KEYRING: &[u8] = include_bytes!("../keys/debian-archive-keyring.gpg");

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("keyring {path}: {reason}")]
    Keyring { path: PathBuf, reason: String },
    #[error("{what}: not a valid OpenPGP signature ({reason})")]
    Malformed { what: String, reason: String },
    #[error("{what}: no signature made by a key of {keyring}")]
    NotSigned { what: String, keyring: String },
}

/// Public keys a Release file may be signed with.
pub struct Keyring {
    name: String,
    keys: Vec<SignedPublicKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({}, {} keys)", self.name, self.keys.len())
    }
}

impl Keyring {
    /// The Debian archive keyring compiled into hull.
    pub fn debian() -> Keyring {
        // The embedded file is checked by a unit test; an empty keyring would
        // only make every verification fail, never pass.
        let keys = parse_keys(DEBIAN_KEYRING).unwrap_or_default();
        Keyring {
            name: "the Debian archive keyring".into(),
            keys,
        }
    }

    /// A keyring file: binary (`.gpg`, `.pgp`) or ASCII-armored (`.asc`).
    pub fn from_file(path: &Path) -> Result<Keyring, SignatureError> {
        let err = |reason: String| SignatureError::Keyring {
            path: path.to_path_buf(),
            reason,
        };
        let data = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let keys = if data.starts_with(b"-----BEGIN") {
            let (it, _) = SignedPublicKey::from_armor_many(Cursor::new(data))
                .map_err(|e| err(e.to_string()))?;
            it.collect::<Result<Vec<_>, _>>()
                .map_err(|e| err(e.to_string()))?
        } else {
            parse_keys(&data).map_err(err)?
        };
        if keys.is_empty() {
            return Err(err("no public keys in the file".into()));
        }
        Ok(Keyring {
            name: path.display().to_string(),
            keys,
        })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether one signature verifies against a primary key or a subkey.
    fn verifies(&self, sig: &StandaloneSignature, data: &[u8]) -> bool {
        self.keys.iter().any(|k| {
            sig.verify(k, data).is_ok()
                || k.public_subkeys.iter().any(|s| sig.verify(s, data).is_ok())
        })
    }

    /// Verifies a clear-signed `InRelease` and returns the text that was signed
    /// (the Release content; only that may be trusted). One good signature by a
    /// key of the keyring suffices (Debian signs with several keys).
    pub fn verify_clearsigned(&self, what: &str, text: &str) -> Result<String, SignatureError> {
        let (msg, _) =
            CleartextSignedMessage::from_string(text).map_err(|e| SignatureError::Malformed {
                what: what.into(),
                reason: e.to_string(),
            })?;
        let signed = msg.signed_text();
        if msg
            .signatures()
            .iter()
            .any(|s| self.verifies(s, signed.as_bytes()))
        {
            Ok(signed)
        } else {
            Err(SignatureError::NotSigned {
                what: what.into(),
                keyring: self.name.clone(),
            })
        }
    }

    /// Verifies a detached signature (`Release.gpg`, armored) over `data`.
    pub fn verify_detached(
        &self,
        what: &str,
        data: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let malformed = |reason: String| SignatureError::Malformed {
            what: what.into(),
            reason,
        };
        let sigs: Vec<StandaloneSignature> = if signature.starts_with(b"-----BEGIN") {
            let (it, _) = StandaloneSignature::from_armor_many(Cursor::new(signature))
                .map_err(|e| malformed(e.to_string()))?;
            it.collect::<Result<_, _>>()
                .map_err(|e| malformed(e.to_string()))?
        } else {
            StandaloneSignature::from_bytes_many(Cursor::new(signature))
                .map_err(|e| malformed(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| malformed(e.to_string()))?
        };
        if sigs.iter().any(|s| self.verifies(s, data)) {
            Ok(())
        } else {
            Err(SignatureError::NotSigned {
                what: what.into(),
                keyring: self.name.clone(),
            })
        }
    }
}

fn parse_keys(data: &[u8]) -> Result<Vec<SignedPublicKey>, String> {
    SignedPublicKey::from_bytes_many(Cursor::new(data))
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_keyring_has_the_archive_keys() {
        // bullseye, bookworm and trixie: automatic, security and stable keys.
        let k = Keyring::debian();
        assert!(k.len() >= 9, "{k:?}");
    }

    #[test]
    fn garbage_and_tampered_text_are_refused() {
        let k = Keyring::debian();
        assert!(matches!(
            k.verify_clearsigned("x", "Origin: Debian\n"),
            Err(SignatureError::Malformed { .. })
        ));
        let signed = include_str!("../tests/data/InRelease.sample");
        let text = k.verify_clearsigned("sample", signed).unwrap();
        assert!(text.contains("Codename: bookworm"));
        let tampered = signed.replacen("Codename: bookworm", "Codename: bookwurm", 1);
        assert!(matches!(
            k.verify_clearsigned("sample", &tampered),
            Err(SignatureError::NotSigned { .. })
        ));
        // A good signature, but by no key of this keyring (trixie's release key
        // does not sign bookworm).
        let trixie = Keyring::from_file(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/debian-archive-trixie-stable.gpg"),
        )
        .unwrap();
        assert_eq!(trixie.len(), 1);
        assert!(matches!(
            trixie.verify_clearsigned("sample", signed),
            Err(SignatureError::NotSigned { .. })
        ));
    }
}
