//! Registry pulls and pushes over the OCI distribution API, through the
//! `oci-client` crate (token and basic auth, ranged blob reads, chunked
//! uploads). It is async; hull is not, so each call runs on a current-thread
//! tokio runtime of its own: blobs still download concurrently (it is I/O),
//! and no thread pool outlives the call.
//!
//! What comes from a registry is checked before it enters the cache: the
//! manifest against the digest it was asked by (or that the index named),
//! every blob against its digest, sizes against their descriptors. Only the
//! requested platform of a multi-arch index is fetched.
//!
//! One job per file: this one holds the options and the route to a registry
//! (mirrors, plain HTTP for loopback); `reference.rs` parses references,
//! `pull.rs` and `push.rs` move images, `auth.rs` finds credentials the way
//! docker does, `error.rs` says what went wrong.

mod auth;
mod error;
mod pull;
mod push;
mod reference;

use std::time::Duration;

use indicatif::{MultiProgress, ProgressDrawTarget};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};

use crate::cache::{INDEX_DOCKER, INDEX_OCI, MANIFEST_DOCKER, MANIFEST_OCI};
pub use error::RegistryError;
pub use pull::pick_platform;
use reference::is_loopback;
pub use reference::{cache_name, parse_reference};

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `(registry, url)`: fetch images of `registry` from `url` instead
    /// (`http://` allowed). The cache keeps the original name.
    pub mirrors: Vec<(String, String)>,
    /// Ask the registry even when the cache has the name (`--pull`).
    pub check: bool,
    /// Show progress bars (on a terminal).
    pub progress: bool,
}

impl Options {
    /// Parses `REGISTRY=URL` mirror arguments.
    pub fn parse_mirrors(args: &[String]) -> Result<Vec<(String, String)>, RegistryError> {
        args.iter()
            .map(|a| {
                let bad = || RegistryError::BadMirror {
                    mirror: a.clone(),
                    input: report::BadInput::marker(),
                };
                let (reg, url) = a.split_once('=').ok_or_else(bad)?;
                if reg.is_empty() || url.is_empty() {
                    return Err(bad());
                }
                Ok((reg.to_string(), url.trim_end_matches('/').to_string()))
            })
            .collect()
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The name in the cache (the reference, normalised).
    pub name: String,
    /// The platform manifest's digest.
    pub digest: String,
    /// Bytes downloaded (0: everything was cached).
    pub fetched: u64,
}

pub struct Registry {
    opts: Options,
    bars: MultiProgress,
}

/// Where a reference is fetched from: the registry host (after mirrors) and
/// whether it speaks plain HTTP.
struct Route {
    target: Reference,
    http: bool,
}

const ACCEPT: &[&str] = &[MANIFEST_OCI, INDEX_OCI, MANIFEST_DOCKER, INDEX_DOCKER];

impl Registry {
    pub fn new(opts: Options) -> Registry {
        let bars = MultiProgress::with_draw_target(if opts.progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        Registry { opts, bars }
    }

    fn route(&self, r: &Reference) -> Result<Route, RegistryError> {
        let reg = r.registry();
        let mirror = self
            .opts
            .mirrors
            .iter()
            .find(|(m, _)| m == reg || (m == "docker.io" && reg == "index.docker.io"));
        let (host, http) = match mirror {
            Some((_, url)) => {
                let (scheme, host) =
                    url.split_once("://")
                        .ok_or_else(|| RegistryError::BadMirror {
                            mirror: url.clone(),
                            input: report::BadInput::marker(),
                        })?;
                (host.to_string(), scheme == "http" || is_loopback(host))
            }
            None => (reg.to_string(), is_loopback(reg)),
        };
        let target = match (r.tag(), r.digest()) {
            (Some(t), Some(d)) => Reference::with_tag_and_digest(
                host.clone(),
                r.repository().into(),
                t.into(),
                d.into(),
            ),
            (None, Some(d)) => {
                Reference::with_digest(host.clone(), r.repository().into(), d.into())
            }
            (t, None) => Reference::with_tag(
                host.clone(),
                r.repository().into(),
                t.unwrap_or("latest").into(),
            ),
        };
        Ok(Route { target, http })
    }

    fn client(route: &Route) -> Client {
        let protocol = if route.http {
            ClientProtocol::HttpsExcept(vec![route.target.registry().to_string()])
        } else {
            ClientProtocol::Https
        };
        Client::new(ClientConfig {
            protocol,
            connect_timeout: Some(Duration::from_secs(15)),
            read_timeout: Some(Duration::from_secs(60)),
            platform_resolver: None,
            ..Default::default()
        })
    }

    fn runtime() -> Result<tokio::runtime::Runtime, RegistryError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RegistryError::Other {
                registry: String::new(),
                message: format!("starting the async runtime: {e}"),
            })
    }
}

fn content_type(media: &str) -> http::HeaderValue {
    http::HeaderValue::from_str(media)
        .unwrap_or_else(|_| http::HeaderValue::from_static(MANIFEST_OCI))
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_parse() {
        let m = Options::parse_mirrors(&["docker.io=http://127.0.0.1:5000/".into()]).unwrap();
        assert_eq!(
            m,
            vec![("docker.io".into(), "http://127.0.0.1:5000".into())]
        );
        assert!(Options::parse_mirrors(&["nonsense".into()]).is_err());
    }
}
