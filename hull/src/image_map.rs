//! The image map: serve image references from somewhere else, e.g.
//! `linuxkit/getty=@pkg:pkg/getty`, so that LinuxKit files build offline
//! from hull's own packages without editing them. From `--image-map
//! FROM=TO` flags and `--image-map-file FILE` (a YAML mapping `FROM: TO`).
//! A FROM without a tag or digest matches every tag of that repository.

use std::path::{Path, PathBuf};

use crate::config::{ConfigError, ConfigErrors, Pos};

#[derive(Debug, Default, Clone)]
pub struct ImageMap {
    entries: Vec<(String, String)>,
}

/// The repository part of a reference: without `@digest` and `:tag`.
pub fn repository(reference: &str) -> &str {
    let r = reference.split('@').next().unwrap_or(reference);
    match (r.rfind(':'), r.rfind('/')) {
        (Some(c), Some(s)) if c > s => &r[..c],
        (Some(c), None) => &r[..c],
        _ => r,
    }
}

/// `@pkg:` paths in a map are relative to where the map was written.
fn anchor(to: &str, base: &Path) -> String {
    match to.strip_prefix("@pkg:") {
        Some(p) if !Path::new(p).is_absolute() => format!("@pkg:{}", base.join(p).display()),
        _ => to.to_string(),
    }
}

impl ImageMap {
    /// One `FROM=TO` flag; relative `@pkg:` paths are taken from the current directory.
    pub fn add_flag(&mut self, flag: &str) -> Result<(), String> {
        let (from, to) = flag
            .split_once('=')
            .filter(|(f, t)| !f.trim().is_empty() && !t.trim().is_empty())
            .ok_or_else(|| format!("--image-map {flag:?}: expected FROM=TO"))?;
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        self.entries
            .push((from.trim().to_string(), anchor(to.trim(), &cwd)));
        Ok(())
    }

    /// A map file: a YAML mapping of FROM: TO.
    pub fn add_file(&mut self, path: &Path) -> Result<(), ConfigErrors> {
        let at = |line, col, m: String| ConfigError {
            file: path.display().to_string(),
            line,
            col,
            message: m,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors(vec![at(0, 0, format!("cannot read: {e}"))]))?;
        let node = marked_yaml::parse_yaml(0, &text).map_err(|e| {
            ConfigErrors(vec![at(
                0,
                0,
                format!("not a YAML mapping of FROM: TO: {e}"),
            )])
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut errs = ConfigErrors::default();
        for (k, v) in node.as_mapping().into_iter().flat_map(|m| m.iter()) {
            match v.as_scalar() {
                Some(to) if !to.as_str().trim().is_empty() && !k.as_str().trim().is_empty() => {
                    self.entries.push((
                        k.as_str().trim().to_string(),
                        anchor(to.as_str().trim(), base),
                    ));
                }
                _ => {
                    let (line, col) = k
                        .span()
                        .start()
                        .map(|m| (m.line(), m.column()))
                        .unwrap_or((0, 0));
                    errs.push(
                        Pos {
                            file: path.into(),
                            line,
                            col,
                        }
                        .error(format!("{:?} must map to one image reference", k.as_str())),
                    );
                }
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }

    /// The replacement for `reference`, if the map has one. An exact entry
    /// wins over a repository-wide one; later entries over earlier ones.
    pub fn lookup(&self, reference: &str) -> Option<String> {
        let exact = self.entries.iter().rev().find(|(f, _)| f == reference);
        let repo = self
            .entries
            .iter()
            .rev()
            .find(|(f, _)| repository(f) == f.as_str() && f == repository(reference));
        exact.or(repo).map(|(_, t)| t.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_strips_tag_and_digest_not_port() {
        assert_eq!(repository("linuxkit/getty:v1"), "linuxkit/getty");
        assert_eq!(repository("linuxkit/getty@sha256:ab"), "linuxkit/getty");
        assert_eq!(repository("localhost:5000/x"), "localhost:5000/x");
        assert_eq!(repository("redis"), "redis");
    }

    #[test]
    fn exact_and_repository_matches() {
        let mut m = ImageMap::default();
        m.add_flag("linuxkit/getty=@pkg:/p/getty").unwrap();
        m.add_flag("redis:7=redis:7.2").unwrap();
        assert_eq!(
            m.lookup("linuxkit/getty:v0.8").as_deref(),
            Some("@pkg:/p/getty")
        );
        assert_eq!(m.lookup("redis:7").as_deref(), Some("redis:7.2"));
        assert_eq!(m.lookup("redis:6"), None);
        assert!(m.add_flag("nonsense").is_err());
    }

    #[test]
    fn file_paths_are_relative_to_the_file() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("map.yml");
        std::fs::write(&f, "linuxkit/sshd: \"@pkg:pkgs/sshd\"\nbad: [1]\n").unwrap();
        let mut m = ImageMap::default();
        let e = m.add_file(&f).unwrap_err();
        assert_eq!(e.0[0].line, 2);
        assert_eq!(
            m.lookup("linuxkit/sshd:v1"),
            Some(format!("@pkg:{}", d.path().join("pkgs/sshd").display()))
        );
    }
}
