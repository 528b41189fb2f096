//! `build.lock`: the Debian versions a package was built with, kept in the
//! package folder and committed (like Cargo.lock), so that a rebuild takes the
//! same versions while the archive serves them, and so that the tag (which
//! hashes the folder) changes when the archive moves on.
//!
//! JSON rather than a format of our own: serde_json is already here and its
//! maps are sorted, so the file is written byte-identically every time.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const LOCK_FILE: &str = "build.lock";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    /// Says what the file is, for whoever opens it.
    #[serde(default)]
    pub comment: String,
    /// Per arch (`x86_64`, `aarch64`): one entry per `debian` source, in order.
    pub arches: BTreeMap<String, Vec<LockedSource>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedSource {
    pub mirror: String,
    pub suite: String,
    pub packages: Vec<LockedDeb>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedDeb {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a hull lock file ({message}); `hull pkg lock` rewrites it")]
    Parse { path: PathBuf, message: String },
}

const COMMENT: &str =
    "Written by hull: the Debian packages this package is built from. `hull pkg lock DIR` rewrites it.";

impl LockFile {
    /// Reads `DIR/build.lock`; a missing file is an empty lock.
    pub fn read(dir: &Path) -> Result<LockFile, LockError> {
        let path = dir.join(LOCK_FILE);
        match fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|e| LockError::Parse {
                path,
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LockFile::default()),
            Err(source) => Err(LockError::Io { path, source }),
        }
    }

    /// Writes `DIR/build.lock` through a temporary file and a rename.
    pub fn write(&self, dir: &Path) -> Result<(), LockError> {
        let path = dir.join(LOCK_FILE);
        let mut me = self.clone();
        me.comment = COMMENT.into();
        let mut text = serde_json::to_vec_pretty(&me).unwrap_or_default();
        text.push(b'\n');
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        std::io::Write::write_all(&mut tmp, &text).map_err(io)?;
        // A lock file is a source file: readable by everyone, like the rest.
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644)).map_err(io)?;
        }
        tmp.persist(&path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

/// What changed between a locked source and what the archive serves now, one
/// line per package (empty when nothing did).
pub fn differences(locked: Option<&LockedSource>, now: &LockedSource) -> Vec<String> {
    let Some(locked) = locked else {
        return vec!["not in build.lock yet".into()];
    };
    let mut out = Vec::new();
    if locked.mirror != now.mirror || locked.suite != now.suite {
        out.push(format!(
            "locked from {} {}, now {} {}",
            locked.mirror, locked.suite, now.mirror, now.suite
        ));
    }
    let old: BTreeMap<&str, &LockedDeb> = locked
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p))
        .collect();
    let new: BTreeMap<&str, &LockedDeb> =
        now.packages.iter().map(|p| (p.name.as_str(), p)).collect();
    for (name, n) in &new {
        match old.get(name) {
            Some(o) if o.version == n.version && o.sha256 == n.sha256 => {}
            Some(o) => out.push(format!(
                "{name}: locked {} is no longer served by the archive, which has {}",
                o.version, n.version
            )),
            None => out.push(format!(
                "{name} {}: new in the dependency closure",
                n.version
            )),
        }
    }
    for name in old.keys().filter(|n| !new.contains_key(*n)) {
        out.push(format!("{name}: no longer in the dependency closure"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deb(name: &str, version: &str) -> LockedDeb {
        LockedDeb {
            name: name.into(),
            version: version.into(),
            sha256: format!("{name}-{version}"),
        }
    }

    fn src(pkgs: Vec<LockedDeb>) -> LockedSource {
        LockedSource {
            mirror: "http://m".into(),
            suite: "bookworm".into(),
            packages: pkgs,
        }
    }

    #[test]
    fn differences_name_each_package() {
        let locked = src(vec![deb("a", "1"), deb("b", "1"), deb("gone", "1")]);
        let now = src(vec![deb("a", "1"), deb("b", "2"), deb("new", "3")]);
        assert!(differences(Some(&locked), &locked).is_empty());
        let d = differences(Some(&locked), &now);
        assert_eq!(
            d,
            [
                "b: locked 1 is no longer served by the archive, which has 2",
                "new 3: new in the dependency closure",
                "gone: no longer in the dependency closure",
            ]
        );
        assert_eq!(differences(None, &now), ["not in build.lock yet"]);
    }

    #[test]
    fn round_trip_is_byte_identical() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = LockFile::default();
        l.arches
            .insert("x86_64".into(), vec![src(vec![deb("a", "1")])]);
        l.write(dir.path()).unwrap();
        let first = fs::read(dir.path().join(LOCK_FILE)).unwrap();
        let back = LockFile::read(dir.path()).unwrap();
        back.write(dir.path()).unwrap();
        assert_eq!(first, fs::read(dir.path().join(LOCK_FILE)).unwrap());
        assert_eq!(back.arches, l.arches);
        fs::write(dir.path().join(LOCK_FILE), "nonsense").unwrap();
        let e = LockFile::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a hull lock file"), "{e}");
    }
}
