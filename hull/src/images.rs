//! How a build turns an image reference into a name in the cache: a name
//! the cache has (as written, with `:latest`, or fully qualified) is used as
//! it is, without any network request; otherwise, or with `--pull`, the
//! registry is asked ([`store::registry`]).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::IsTerminal;

use store::registry::{self, Options, Registry, RegistryError};

use crate::cache::Cache;
use crate::UsageError;

/// Flags of every command that may pull.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PullArgs {
    /// Ask the registry for every registry image even when it is cached
    /// (only blobs the cache lacks are downloaded).
    #[arg(long)]
    pub pull: bool,
    /// Fetch images of REGISTRY from URL instead (repeatable), e.g.
    /// docker.io=http://127.0.0.1:5000. Loopback registries speak plain HTTP.
    #[arg(long = "mirror", value_name = "REGISTRY=URL")]
    pub mirrors: Vec<String>,
}

pub struct Images {
    registry: Registry,
    check: bool,
    /// reference -> cache name, so a reference is resolved (and, with
    /// `--pull`, checked) once per run.
    done: RefCell<BTreeMap<(String, String), String>>,
}

impl Images {
    pub fn new(args: &PullArgs) -> Result<Images, UsageError> {
        let mirrors =
            Options::parse_mirrors(&args.mirrors).map_err(|e| UsageError(e.to_string()))?;
        Ok(Images {
            registry: Registry::new(Options {
                mirrors,
                check: args.pull,
                progress: std::io::stderr().is_terminal(),
            }),
            check: args.pull,
            done: RefCell::new(BTreeMap::new()),
        })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The cache name of `reference` for `arch`, pulling it when needed.
    pub fn ensure(
        &self,
        cache: &Cache,
        reference: &str,
        arch: &str,
    ) -> Result<String, RegistryError> {
        let key = (reference.to_string(), arch.to_string());
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
                if pulled.fetched > 0 {
                    eprintln!(
                        "hull: pulled {} for {arch} ({}, {:.1} MiB)",
                        pulled.name,
                        short(&pulled.digest),
                        pulled.fetched as f64 / 1048576.0
                    );
                }
                pulled.name
            }
        };
        self.done.borrow_mut().insert(key, name.clone());
        Ok(name)
    }
}

/// A name the cache has for `reference` and `arch`: as written, with
/// `:latest` added, or fully qualified as a registry reference.
pub fn local_name(
    cache: &Cache,
    reference: &str,
    arch: &str,
) -> Result<Option<String>, RegistryError> {
    for n in candidates(reference) {
        if cache.lookup(&n, arch)?.is_some() {
            return Ok(Some(n));
        }
    }
    Ok(None)
}

/// The names `reference` may be cached under, most literal first.
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

/// A name in the cache for `reference`, whatever the arch.
pub fn any_arch_name(cache: &Cache, reference: &str) -> Result<Option<String>, RegistryError> {
    let images = cache.images()?;
    Ok(candidates(reference)
        .into_iter()
        .find(|n| images.iter().any(|r| &r.name == n)))
}

pub fn short(digest: &str) -> &str {
    &digest[..digest.len().min(19)]
}
