//! Parsers for the archive's `Release` and `Packages` files (deb822 control format),
//! and the package index they make.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::version::compare_versions;
use crate::DebianError;

/// One alternative of a dependency: `name[:arch] [(op version)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    pub name: String,
    /// The architecture qualifier after `:` (`any`, `native`, `amd64`...), if any.
    pub arch_qualifier: Option<String>,
    /// The version constraint as written inside the parentheses (`>= 1.2`), if any.
    /// Resolution ignores it.
    pub constraint: Option<String>,
}

/// A dependency group: alternatives separated by `|`, the first satisfiable one wins.
pub type DepGroup = Vec<Dep>;

/// One binary package of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebPackage {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// Path of the .deb relative to the mirror root (`pool/main/...`).
    pub filename: String,
    /// Lower-case hex SHA256 of the .deb.
    pub sha256: String,
    pub size: u64,
    pub pre_depends: Vec<DepGroup>,
    pub depends: Vec<DepGroup>,
    /// Names of the virtual packages this package provides.
    pub provides: Vec<String>,
}

/// Splits deb822 text into stanzas of (field, value) pairs; continuation lines are
/// joined with `\n` to the previous value. Field names keep their case.
pub(crate) fn stanzas(text: &str) -> Vec<Vec<(&str, String)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(&str, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some((_, v)) = cur.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.push((k.trim(), v.trim().to_string()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn field<'a>(stanza: &'a [(&str, String)], name: &str) -> Option<&'a str> {
    stanza
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The `SHA256` section of a Release file: path (relative to dists/SUITE) -> (hash, size).
pub(crate) fn parse_release(
    text: &str,
    url: &str,
) -> Result<BTreeMap<String, (String, u64)>, DebianError> {
    let bad = |reason: String| DebianError::ParseRelease {
        url: url.to_string(),
        reason,
    };
    let all = stanzas(text);
    let first = all
        .first()
        .ok_or_else(|| bad("empty Release file".into()))?;
    let sums = field(first, "SHA256").ok_or_else(|| bad("no SHA256 field".into()))?;
    let mut out = BTreeMap::new();
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let mut it = line.split_whitespace();
        let (Some(hash), Some(size), Some(path), None) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(bad(format!("bad SHA256 line {line:?}")));
        };
        let size = size
            .parse()
            .map_err(|_| bad(format!("bad size in SHA256 line {line:?}")))?;
        if !is_sha256(hash) {
            return Err(bad(format!("bad hash in SHA256 line {line:?}")));
        }
        out.insert(path.to_string(), (hash.to_ascii_lowercase(), size));
    }
    Ok(out)
}

pub(crate) fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit())
}

/// Parses a `Depends`-style field: `a (>= 1) | b:any, c`.
pub fn parse_depends(value: &str) -> Vec<DepGroup> {
    value
        .split(',')
        .map(|group| group.split('|').filter_map(parse_dep).collect::<Vec<_>>())
        .filter(|g| !g.is_empty())
        .collect()
}

fn parse_dep(alt: &str) -> Option<Dep> {
    let alt = alt.trim();
    let end = alt
        .find(|c: char| c.is_whitespace() || c == '(' || c == '[' || c == '<')
        .unwrap_or(alt.len());
    let word = &alt[..end];
    if word.is_empty() {
        return None;
    }
    let (name, arch_qualifier) = match word.split_once(':') {
        Some((n, a)) => (n, Some(a.to_string())),
        None => (word, None),
    };
    let constraint = alt[end..].find('(').and_then(|open| {
        let rest = &alt[end + open + 1..];
        rest.find(')').map(|close| {
            rest[..close]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
    });
    Some(Dep {
        name: name.to_string(),
        arch_qualifier,
        constraint,
    })
}

/// The parsed index: the best (highest version, first on ties) candidate per name,
/// plus the virtual names and who provides them.
#[derive(Debug, Clone, Default)]
pub struct Index {
    pub(crate) packages: BTreeMap<String, DebPackage>,
    pub(crate) providers: BTreeMap<String, BTreeSet<String>>,
}

impl Index {
    /// Adds every stanza of one `Packages` text. `source` names it in errors.
    pub fn add_packages(&mut self, text: &str, source: &str) -> Result<(), DebianError> {
        for stanza in stanzas(text) {
            let get = |name: &str| field(&stanza, name);
            let Some(name) = get("Package") else {
                continue;
            };
            let bad = |reason: &str| DebianError::ParsePackages {
                source_name: source.to_string(),
                package: name.to_string(),
                reason: reason.to_string(),
            };
            let version = get("Version").ok_or_else(|| bad("no Version"))?;
            let filename = get("Filename").ok_or_else(|| bad("no Filename"))?;
            let sha256 = get("SHA256").ok_or_else(|| bad("no SHA256"))?;
            if !is_sha256(sha256) {
                return Err(bad("SHA256 is not 64 hex digits"));
            }
            let size = get("Size")
                .ok_or_else(|| bad("no Size"))?
                .parse()
                .map_err(|_| bad("Size is not a number"))?;
            let pkg = DebPackage {
                name: name.to_string(),
                version: version.to_string(),
                arch: get("Architecture").unwrap_or("").to_string(),
                filename: filename.to_string(),
                sha256: sha256.to_ascii_lowercase(),
                size,
                pre_depends: get("Pre-Depends").map(parse_depends).unwrap_or_default(),
                depends: get("Depends").map(parse_depends).unwrap_or_default(),
                provides: get("Provides")
                    .map(|p| {
                        parse_depends(p)
                            .into_iter()
                            .flatten()
                            .map(|d| d.name)
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            self.add(pkg);
        }
        Ok(())
    }

    fn add(&mut self, pkg: DebPackage) {
        if let Some(old) = self.packages.get(&pkg.name) {
            if compare_versions(&pkg.version, &old.version) != Ordering::Greater {
                return;
            }
        }
        for v in &pkg.provides {
            self.providers
                .entry(v.clone())
                .or_default()
                .insert(pkg.name.clone());
        }
        self.packages.insert(pkg.name.clone(), pkg);
    }

    pub fn get(&self, name: &str) -> Option<&DebPackage> {
        self.packages.get(name)
    }

    pub fn len(&self) -> usize {
        self.packages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }

    /// Packages that provide `virtual_name` (and still do in their kept version), sorted.
    fn providers_of(&self, virtual_name: &str) -> impl Iterator<Item = &DebPackage> + '_ {
        let name = virtual_name.to_string();
        self.providers
            .get(virtual_name)
            .into_iter()
            .flatten()
            .filter_map(|p| self.packages.get(p))
            .filter(move |p| p.provides.contains(&name))
    }

    /// The package that satisfies `name`: the real package, or else the first provider
    /// (one already in `chosen` if any).
    fn candidate(&self, name: &str, chosen: &BTreeMap<String, DebPackage>) -> Option<&DebPackage> {
        if let Some(p) = self.packages.get(name) {
            return Some(p);
        }
        let mut first = None;
        for p in self.providers_of(name) {
            if chosen.contains_key(&p.name) {
                return Some(p);
            }
            first.get_or_insert(p);
        }
        first
    }

    /// Whether something in `chosen` already satisfies `name`.
    fn satisfied(&self, name: &str, chosen: &BTreeMap<String, DebPackage>) -> bool {
        chosen.contains_key(name)
            || self
                .providers_of(name)
                .any(|p| chosen.contains_key(&p.name))
    }

    /// See [`crate::Archive::resolve`]. `Err(name)` names a requested package that
    /// does not exist; `Err` from a dependency is reported by the caller.
    #[cfg(test)]
    pub(crate) fn closure(
        &self,
        names: &[String],
        with_depends: bool,
    ) -> Result<Vec<DebPackage>, ClosureError> {
        self.closure_excluding(names, with_depends, &[])
    }

    /// As [`Index::closure`], with the dependencies named in `exclude` taken
    /// as satisfied (and not followed): what a maintainer script or an init
    /// system needs and an appliance does not.
    pub(crate) fn closure_excluding(
        &self,
        names: &[String],
        with_depends: bool,
        exclude: &[String],
    ) -> Result<Vec<DebPackage>, ClosureError> {
        let mut chosen: BTreeMap<String, DebPackage> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::new();
        for n in names {
            let p = self
                .candidate(n, &chosen)
                .ok_or_else(|| ClosureError::NoSuchPackage(n.clone()))?;
            if chosen.insert(p.name.clone(), p.clone()).is_none() {
                queue.push_back(p.name.clone());
            }
        }
        if !with_depends {
            queue.clear();
        }
        while let Some(name) = queue.pop_front() {
            let Some(pkg) = self.packages.get(&name) else {
                continue;
            };
            for group in pkg.pre_depends.iter().chain(&pkg.depends) {
                if group
                    .iter()
                    .any(|d| exclude.contains(&d.name) || self.satisfied(&d.name, &chosen))
                {
                    continue;
                }
                let pick = group
                    .iter()
                    .find_map(|d| self.candidate(&d.name, &chosen))
                    .ok_or_else(|| ClosureError::Unsatisfiable {
                        package: name.clone(),
                        dependency: group_string(group),
                    })?;
                if chosen.insert(pick.name.clone(), pick.clone()).is_none() {
                    queue.push_back(pick.name.clone());
                }
            }
        }
        Ok(chosen.into_values().collect())
    }

    /// For each Pre-Depends then Depends group of `name`: the alternative the closure
    /// would follow (the first one the index can satisfy, else the first one as written).
    pub(crate) fn depends_of(&self, name: &str) -> Option<Vec<String>> {
        let pkg = self.packages.get(name)?;
        let empty = BTreeMap::new();
        Some(
            pkg.pre_depends
                .iter()
                .chain(&pkg.depends)
                .filter_map(|g| {
                    g.iter()
                        .find(|d| self.candidate(&d.name, &empty).is_some())
                        .or_else(|| g.first())
                        .map(|d| d.name.clone())
                })
                .collect(),
        )
    }
}

pub(crate) fn group_string(group: &[Dep]) -> String {
    group
        .iter()
        .map(|d| match &d.constraint {
            Some(c) => format!("{} ({c})", d.name),
            None => d.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

#[derive(Debug)]
pub(crate) enum ClosureError {
    NoSuchPackage(String),
    Unsatisfiable { package: String, dependency: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn stanza(name: &str, version: &str, extra: &str) -> String {
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: arm64\n{extra}Filename: pool/main/{name}_{version}_arm64.deb\nSize: 100\nSHA256: {SHA_A}\nDescription: {name}\n  continued line\n .\n more\n\n"
        )
    }

    fn sample() -> Index {
        let text = [
            stanza("app", "1.0-1", "Pre-Depends: libc6 (>= 2.36)\nDepends: mta | postfix, python3:any (>= 3.11~), libfoo1 [arm64]\n"),
            stanza("libc6", "2.36-9", "Depends: libgcc-s1\n"),
            stanza("libc6", "2.36-9+deb12u4", "Depends: libgcc-s1\n"),
            stanza("libc6", "2.31-1", ""),
            stanza("libgcc-s1", "12.2.0-14", "Depends: gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)\n"),
            stanza("gcc-12-base", "12.2.0-14", ""),
            stanza("exim4-daemon-light", "4.96-15", "Provides: mail-transport-agent, mta (= 1)\n"),
            stanza("dma", "0.13-1", "Provides: mta\n"),
            stanza("postfix", "3.7.10-0", "Provides: mta\nDepends: libc6\n"),
            stanza("python3", "3.11.2-1", "Depends: python3.11 (>= 3.11.2-1~)\n"),
            stanza("python3.11", "3.11.2-6", "Pre-Depends: libc6\n"),
            stanza("libfoo1", "1.0", "Depends: libbar | libbaz\n"),
            stanza("libbaz", "2", ""),
        ]
        .concat();
        let mut idx = Index::default();
        idx.add_packages(&text, "test").unwrap();
        idx
    }

    #[test]
    fn parses_fields_alternatives_and_qualifiers() {
        let idx = sample();
        let app = idx.get("app").unwrap();
        assert_eq!(app.version, "1.0-1");
        assert_eq!(app.size, 100);
        assert_eq!(app.filename, "pool/main/app_1.0-1_arm64.deb");
        assert_eq!(app.pre_depends.len(), 1);
        assert_eq!(app.pre_depends[0][0].name, "libc6");
        assert_eq!(app.pre_depends[0][0].constraint.as_deref(), Some(">= 2.36"));
        assert_eq!(app.depends.len(), 3);
        let names: Vec<_> = app.depends[0].iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["mta", "postfix"]);
        let py = &app.depends[1][0];
        assert_eq!(py.name, "python3");
        assert_eq!(py.arch_qualifier.as_deref(), Some("any"));
        assert_eq!(py.constraint.as_deref(), Some(">= 3.11~"));
        assert_eq!(app.depends[2][0].name, "libfoo1");
        let exim = idx.get("exim4-daemon-light").unwrap();
        assert_eq!(exim.provides, ["mail-transport-agent", "mta"]);
    }

    #[test]
    fn highest_version_wins() {
        let idx = sample();
        assert_eq!(idx.get("libc6").unwrap().version, "2.36-9+deb12u4");
    }

    #[test]
    fn closure_follows_pre_depends_alternatives_and_provides() {
        let idx = sample();
        let got = idx.closure(&["app".to_string()], true).unwrap();
        let names: Vec<_> = got.iter().map(|p| p.name.as_str()).collect();
        // `mta` is virtual: its first provider by name (dma) satisfies `mta | postfix`;
        // `libbar` does not exist so `libbaz` is taken.
        assert_eq!(
            names,
            [
                "app",
                "dma",
                "gcc-12-base",
                "libbaz",
                "libc6",
                "libfoo1",
                "libgcc-s1",
                "python3",
                "python3.11"
            ]
        );
        let cut = idx
            .closure_excluding(&["app".to_string()], true, &["python3".to_string()])
            .unwrap();
        assert!(
            !cut.iter().any(|p| p.name.starts_with("python3")),
            "{cut:?}"
        );
        assert!(cut.iter().any(|p| p.name == "libc6"));
        let without = idx.closure(&["app".to_string()], false).unwrap();
        assert_eq!(without.len(), 1);
        // A real package that is already chosen satisfies a later alternative group.
        let both = idx
            .closure(&["postfix".to_string(), "app".to_string()], true)
            .unwrap();
        assert!(both.iter().any(|p| p.name == "postfix"));
        assert!(!both.iter().any(|p| p.name == "dma"));
    }

    #[test]
    fn closure_reports_unknown_and_unsatisfiable() {
        let idx = sample();
        assert!(matches!(
            idx.closure(&["nope".to_string()], true),
            Err(ClosureError::NoSuchPackage(n)) if n == "nope"
        ));
        let mut idx = idx;
        idx.add_packages(
            &stanza("broken", "1", "Depends: ghost (>= 1) | phantom\n"),
            "t",
        )
        .unwrap();
        match idx.closure(&["broken".to_string()], true) {
            Err(ClosureError::Unsatisfiable {
                package,
                dependency,
            }) => {
                assert_eq!(package, "broken");
                assert_eq!(dependency, "ghost (>= 1) | phantom");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn depends_of_lists_followed_alternatives() {
        let idx = sample();
        assert_eq!(
            idx.depends_of("app").unwrap(),
            ["libc6", "mta", "python3", "libfoo1"]
        );
        assert_eq!(idx.depends_of("libfoo1").unwrap(), ["libbaz"]);
        assert!(idx.depends_of("nope").is_none());
    }

    #[test]
    fn release_sha256_section() {
        let text = format!(
            "Origin: Debian\nSuite: stable\nMD5Sum:\n 0123 10 main/binary-arm64/Packages.xz\nSHA256:\n {SHA_A} 1234 main/binary-arm64/Packages.xz\n {SHA_A} 99 main/binary-amd64/Packages\n"
        );
        let r = parse_release(&text, "u").unwrap();
        assert_eq!(
            r["main/binary-arm64/Packages.xz"],
            (SHA_A.to_string(), 1234)
        );
        assert_eq!(r.len(), 2);
        assert!(parse_release("Origin: Debian\n", "u").is_err());
    }
}
