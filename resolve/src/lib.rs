//! How a build turns an image reference into a name in the store: a name
//! the store has (as written, with `:latest`, or fully qualified) is used as
//! it is, without any network request; otherwise, or with
//! [`Options::pull`], the registry is asked ([`store::registry`]).
//!
//! Its neighbours: `hull build` resolves every registry reference of the
//! YAML through a [`Resolver`] (packages, `@pkg:`, are `hull-pkg`'s);
//! `hull cache` finds cached names with [`any_arch_name`]. Nothing here
//! parses command lines or prints: the caller passes [`Options`].

use std::cell::RefCell;
use std::collections::BTreeMap;

use contract::Arch;
use store::registry::{self, Registry, RegistryError};
use store::Cache;

/// How references are resolved.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Ask the registry for every registry image even when the store has it
    /// (only blobs the store lacks are downloaded).
    pub pull: bool,
    /// `REGISTRY=URL`: fetch images of REGISTRY from URL instead.
    pub mirrors: Vec<String>,
    /// Progress bars for downloads (on stderr; for a terminal).
    pub progress: bool,
    /// Where one line per pull goes ("pulled NAME for ARCH (DIGEST, SIZE)").
    pub report: Option<fn(&str)>,
}

/// Resolves references, each (with its arch) once per run.
pub struct Resolver {
    registry: Registry,
    check: bool,
    report: Option<fn(&str)>,
    /// (reference, arch) -> store name, so that a reference is resolved
    /// (and, with `pull`, checked) once per run.
    done: RefCell<BTreeMap<(String, Arch), String>>,
}

impl Resolver {
    /// A resolver; a mirror that does not parse is bad input.
    pub fn new(opts: Options) -> Result<Resolver, RegistryError> {
        let mirrors = registry::Options::parse_mirrors(&opts.mirrors)?;
        Ok(Resolver {
            registry: Registry::new(registry::Options {
                mirrors,
                check: opts.pull,
                progress: opts.progress,
            }),
            check: opts.pull,
            report: opts.report,
            done: RefCell::new(BTreeMap::new()),
        })
    }

    /// The registry client, with the mirrors given (for pushes and pulls
    /// outside a build).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The store name of `reference` for `arch`, pulling it when needed.
    pub fn ensure(
        &self,
        cache: &Cache,
        reference: &str,
        arch: Arch,
    ) -> Result<String, RegistryError> {
        let key = (reference.to_string(), arch);
        if let Some(n) = self.done.borrow().get(&key) {
            return Ok(n.clone());
        }
        let local = local_name(cache, reference, arch)?;
        let name = match local {
            // Built or imported here: no registry has it under this name.
            Some(n) if !self.check || registry::cache_name(reference).ok().as_ref() != Some(&n) => {
                n
            }
            _ => {
                let pulled = self.registry.pull(cache, reference, arch)?;
                if let (Some(report), true) = (self.report, pulled.fetched > 0) {
                    report(&format!(
                        "pulled {} for {arch} ({}, {:.1} MiB)",
                        pulled.name,
                        short(&pulled.digest),
                        pulled.fetched as f64 / 1048576.0
                    ));
                }
                pulled.name
            }
        };
        self.done.borrow_mut().insert(key, name.clone());
        Ok(name)
    }
}

/// A name the store has for `reference` and `arch`: as written, with
/// `:latest` added, or fully qualified as a registry reference.
pub fn local_name(
    cache: &Cache,
    reference: &str,
    arch: Arch,
) -> Result<Option<String>, RegistryError> {
    for n in candidates(reference) {
        if cache.lookup(&n, arch)?.is_some() {
            return Ok(Some(n));
        }
    }
    Ok(None)
}

/// The names `reference` may be stored under, most literal first.
pub fn candidates(reference: &str) -> Vec<String> {
    let mut out = vec![reference.to_string()];
    if !reference.rsplit('/').next().unwrap_or("").contains(':') && !reference.contains('@') {
        out.push(format!("{reference}:latest"));
    }
    if let Ok(n) = registry::cache_name(reference) {
        out.push(n);
    }
    out.dedup();
    out
}

/// A name in the store for `reference`, whatever the arch.
pub fn any_arch_name(cache: &Cache, reference: &str) -> Result<Option<String>, RegistryError> {
    let images = cache.images()?;
    Ok(candidates(reference)
        .into_iter()
        .find(|n| images.iter().any(|r| &r.name == n)))
}

/// A digest shortened for people (`sha256:` and 12 hex digits).
pub fn short(digest: &str) -> &str {
    &digest[..digest.len().min(19)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use fstree::{Entry, Tree};

    #[test]
    fn candidates_go_from_literal_to_fully_qualified() {
        assert_eq!(
            candidates("redis"),
            ["redis", "redis:latest", "docker.io/library/redis:latest"]
        );
        assert_eq!(candidates("x/y:1"), ["x/y:1", "docker.io/x/y:1"]);
        assert_eq!(candidates("no spaces:1"), ["no spaces:1"]);
    }

    /// A name the store has is used as it is: no registry is asked (the
    /// mirror points at a port nothing listens on).
    #[test]
    fn a_stored_name_resolves_without_the_network() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let mut t = Tree::new();
        t.insert("a", Entry::file(b"a".to_vec(), 0o644)).unwrap();
        cache
            .write_image("hull/x:1", Arch::Aarch64, &t, &Default::default(), 0)
            .unwrap();
        let r = Resolver::new(Options {
            mirrors: vec!["docker.io=http://127.0.0.1:9".into()],
            ..Options::default()
        })
        .unwrap();
        assert_eq!(
            r.ensure(&cache, "hull/x:1", Arch::Aarch64).unwrap(),
            "hull/x:1"
        );
        assert_eq!(
            any_arch_name(&cache, "hull/x:1").unwrap().as_deref(),
            Some("hull/x:1")
        );
        // Not stored for this arch: the registry is asked, and is not there.
        let e = r.ensure(&cache, "hull/x:1", Arch::X86_64).unwrap_err();
        assert!(e.to_string().contains("cannot reach registry"), "{e}");
        assert!(!e.is_bad_input());
    }

    #[test]
    fn a_bad_mirror_is_bad_input() {
        let Err(e) = Resolver::new(Options {
            mirrors: vec!["nonsense".into()],
            ..Options::default()
        }) else {
            panic!("a mirror without = was accepted");
        };
        assert!(e.is_bad_input(), "{e}");
        assert!(e.to_string().starts_with("--mirror \"nonsense\""), "{e}");
    }
}
