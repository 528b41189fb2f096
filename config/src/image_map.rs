//! The image map: serve image references from somewhere else, e.g.
//! `linuxkit/getty=@pkg:pkg/getty`, so that LinuxKit files build offline
//! from hull's own packages without editing them. From `--image-map
//! FROM=TO` flags and `--image-map-file FILE` (a YAML mapping `FROM: TO`).
//! A FROM without a tag or digest matches every tag of that repository.

use std::path::{Path, PathBuf};

use crate::position::{ConfigError, ConfigErrors, Pos};

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

/// What is wrong with a registry reference (`[HOST[:PORT]/]PATH[:TAG][@DIGEST]`,
/// the grammar of the distribution spec), if anything. `@pkg:` references
/// are folders and are checked as such elsewhere.
pub fn reference_problem(reference: &str) -> Option<String> {
    let bad = |why: &str| Some(format!("image reference {reference:?}: {why}"));
    if reference.is_empty() || reference.chars().any(|c| c.is_whitespace()) {
        return bad("empty or with spaces");
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (reference, None),
    };
    if let Some(d) = digest {
        let ok = d.strip_prefix("sha256:").is_some_and(|h| {
            h.len() == 64
                && h.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        });
        if !ok {
            return bad("a digest is sha256: and 64 lowercase hex digits");
        }
    }
    let repo = repository(rest);
    let tag = rest.strip_prefix(repo).and_then(|t| t.strip_prefix(':'));
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && !t.starts_with(['.', '-'])
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return bad("a tag is up to 128 letters, digits, '_', '.' or '-'");
        }
    }
    let mut parts: Vec<&str> = repo.split('/').collect();
    let first = parts[0];
    if parts.len() > 1 && (first.contains(['.', ':']) || first == "localhost") {
        parts.remove(0);
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
            && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
    };
    if !parts.iter().all(|c| component_ok(c)) {
        return bad("a repository name is lowercase letters, digits and '._-' separated by '/'");
    }
    None
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
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let node = marked_yaml::parse_yaml(0, text).map_err(|e| {
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
    fn references_follow_the_distribution_grammar() {
        for ok in [
            "redis",
            "redis:7-alpine",
            "linuxkit/getty:v1.0.0",
            "ghcr.io/x/y:1",
            "localhost:5000/a/b",
            "Registry.Example.com:443/a",
            "alpine@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(reference_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "Redis",
            "a b",
            "redis:",
            "redis:-x",
            "x@sha256:12",
            "a//b",
            "-a/b",
        ] {
            assert!(reference_problem(bad).is_some(), "{bad:?}");
        }
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
