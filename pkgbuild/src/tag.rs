//! The tag: a hash of everything a build reads (the package folder, its
//! `build.lock`, and for `cargo` sources the workspace crates they compile
//! plus the workspace's manifest, lock file and cargo config), `-dirty` when
//! git reports uncommitted changes in any of it. An unchanged package keeps
//! its tag, so it is never rebuilt.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::{Package, PkgError};

/// Part of every tag. Bumped only when the way packages are built changes,
/// so that old builds are not reused; the same inputs then give new tags.
pub const BUILDER_VERSION: &str = "hull-pkg-2";

impl Package {
    /// The tag of the package as its inputs are now.
    pub fn tag(&self) -> Result<String, PkgError> {
        let mut inputs = vec![self.dir.clone()];
        let has_cargo = self.yml.sources.iter().any(|s| s.cargo.is_some());
        if has_cargo {
            if let Some(ws) = self.workspace() {
                for c in self.cargo_inputs(&ws)? {
                    inputs.push(c);
                }
            }
        }
        let mut h = Sha256::new();
        h.update(BUILDER_VERSION);
        for input in &inputs {
            hash_path(&mut h, input, input)?;
        }
        let mut tag = hex::encode(h.finalize())[..20].to_string();
        if is_dirty(&inputs) {
            tag.push_str("-dirty");
        }
        Ok(tag)
    }

    /// Files a `cargo` source compiles: the workspace manifest, lock file and
    /// cargo config, and every workspace crate the named packages depend on.
    fn cargo_inputs(&self, ws: &Path) -> Result<Vec<PathBuf>, PkgError> {
        let out = Command::new(cargo_bin())
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--offline",
            ])
            .current_dir(ws)
            .output()
            .map_err(|source| PkgError::Io {
                path: ws.into(),
                source,
            })?;
        let meta: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|source| PkgError::CargoMetadata {
                package: self.yml.image.clone(),
                workspace: ws.into(),
                source,
            })?;
        let packages = meta["packages"].as_array().cloned().unwrap_or_default();
        let by_name = |n: &str| packages.iter().find(|p| p["name"] == n).cloned();
        let mut todo: Vec<String> = self
            .yml
            .sources
            .iter()
            .filter_map(|s| s.cargo.as_ref().map(|c| c.package.clone()))
            .collect();
        let mut seen = BTreeSet::new();
        let mut dirs = vec![
            ws.join("Cargo.toml"),
            ws.join("Cargo.lock"),
            ws.join(".cargo/config.toml"),
        ];
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let Some(p) = by_name(&name) else { continue };
            if let Some(manifest) = p["manifest_path"].as_str() {
                if let Some(d) = Path::new(manifest).parent() {
                    dirs.push(d.to_path_buf());
                }
            }
            for dep in p["dependencies"].as_array().into_iter().flatten() {
                if dep["path"].is_string() {
                    if let Some(n) = dep["name"].as_str() {
                        todo.push(n.to_string());
                    }
                }
            }
        }
        dirs.retain(|d| d.exists());
        dirs.sort();
        Ok(dirs)
    }
}

/// The cargo that runs hull's own build when there is one (`$CARGO`).
pub fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn hash_path(h: &mut Sha256, base: &Path, path: &Path) -> Result<(), PkgError> {
    let io = |source| PkgError::Io {
        path: path.into(),
        source,
    };
    let meta = fs::symlink_metadata(path).map_err(io)?;
    let rel = path.strip_prefix(base).unwrap_or(path);
    let name = if rel.as_os_str().is_empty() {
        base.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        rel.to_string_lossy().into_owned()
    };
    h.update(name.as_bytes());
    h.update([0]);
    if meta.is_dir() {
        let mut names: Vec<_> = fs::read_dir(path)
            .map_err(io)?
            .flatten()
            .map(|e| e.path())
            .collect();
        names.sort();
        for n in names {
            if n.file_name().is_some_and(|f| f == "target") {
                continue;
            }
            hash_path(h, base, &n)?;
        }
    } else if meta.file_type().is_symlink() {
        let t = fs::read_link(path).map_err(io)?;
        h.update(b"L");
        h.update(t.to_string_lossy().as_bytes());
    } else {
        use std::os::unix::fs::PermissionsExt;
        h.update(format!("F{:o}", meta.permissions().mode() & 0o111).as_bytes());
        let data = fs::read(path).map_err(io)?;
        h.update(Sha256::digest(&data));
    }
    Ok(())
}

/// Whether git reports uncommitted changes in any of `paths` (false outside
/// a git checkout, or without git).
fn is_dirty(paths: &[PathBuf]) -> bool {
    let Some(first) = paths.first() else {
        return false;
    };
    let dir = if first.is_dir() {
        first.clone()
    } else {
        first.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let out = Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(["status", "--porcelain", "--"])
        .args(paths)
        .output();
    match out {
        Ok(o) if o.status.success() => !o.stdout.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_changes_when_a_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("build.yml"),
            "image: t\nsources:\n  - files: rootfs/\n",
        )
        .unwrap();
        fs::create_dir(dir.path().join("rootfs")).unwrap();
        fs::write(dir.path().join("rootfs/a"), "1").unwrap();
        let p = Package::load(dir.path()).unwrap();
        let t1 = p.tag().unwrap();
        assert_eq!(t1, p.tag().unwrap());
        fs::write(dir.path().join("rootfs/a"), "2").unwrap();
        assert_ne!(t1, p.tag().unwrap());
    }
}
