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

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::cache::{
    blob_digests, oci_arch, Cache, CacheError, INDEX_DOCKER, INDEX_OCI, MANIFEST_DOCKER,
    MANIFEST_OCI,
};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{reference:?} is not an image reference: {message}")]
    BadReference { reference: String, message: String },
    #[error("--mirror {0:?}: expected REGISTRY=URL, e.g. docker.io=http://127.0.0.1:5000")]
    BadMirror(String),
    #[error("registry said 401 for {reference}: run docker login {registry}")]
    Unauthorized { reference: String, registry: String },
    #[error("registry said access denied for {reference}: check that {registry} lets this account {operation}")]
    Denied {
        reference: String,
        registry: String,
        operation: &'static str,
    },
    #[error("registry {registry} has no image {reference}")]
    NotFound { reference: String, registry: String },
    #[error("no linux/{arch} image in index {reference} (it has: {available})")]
    NoPlatform {
        arch: String,
        reference: String,
        available: String,
    },
    #[error("image {reference} is {actual}, not linux/{arch}")]
    WrongPlatform {
        reference: String,
        arch: String,
        actual: String,
    },
    #[error("blob {digest} from {registry} does not match its digest")]
    Digest { digest: String, registry: String },
    #[error("blob {digest} from {registry} is larger than its descriptor says ({size} bytes)")]
    Oversize {
        digest: String,
        registry: String,
        size: u64,
    },
    #[error("{reference}: {media_type:?} is not an image manifest hull can read")]
    MediaType {
        reference: String,
        media_type: String,
    },
    #[error("cannot reach registry {registry}: {message}")]
    Unreachable { registry: String, message: String },
    #[error("credentials for {registry}: {message}")]
    Credentials { registry: String, message: String },
    #[error("registry {registry}: {message}")]
    Other { registry: String, message: String },
    #[error(transparent)]
    Cache(#[from] CacheError),
}

impl RegistryError {
    /// True when the input is at fault (a bad reference or mirror, an image
    /// that does not exist or lacks the platform): exit code 2.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            RegistryError::BadReference { .. }
                | RegistryError::BadMirror(_)
                | RegistryError::NotFound { .. }
                | RegistryError::NoPlatform { .. }
                | RegistryError::WrongPlatform { .. }
        )
    }
}

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
                let (reg, url) = a
                    .split_once('=')
                    .ok_or_else(|| RegistryError::BadMirror(a.clone()))?;
                if reg.is_empty() || url.is_empty() {
                    return Err(RegistryError::BadMirror(a.clone()));
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

/// Parses a reference as docker does (`redis` is `docker.io/library/redis:latest`).
pub fn parse_reference(reference: &str) -> Result<Reference, RegistryError> {
    Reference::try_from(reference).map_err(|e| RegistryError::BadReference {
        reference: reference.to_string(),
        message: e.to_string(),
    })
}

/// The cache name of a registry reference: its fully qualified form.
pub fn cache_name(reference: &str) -> Result<String, RegistryError> {
    Ok(parse_reference(reference)?.whole())
}

/// Registries on this machine are spoken to over plain HTTP.
fn is_loopback(host: &str) -> bool {
    let h = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(host);
    h == "localhost"
        || h == "[::1]"
        || h.parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
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
                let (scheme, host) = url
                    .split_once("://")
                    .ok_or_else(|| RegistryError::BadMirror(url.clone()))?;
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

    /// Makes `reference` for `arch` available in the cache: nothing happens
    /// when the cache has it (unless `check`); otherwise the manifest is
    /// resolved (index -> the platform's manifest) and the missing blobs are
    /// fetched, verified and stored, then the name is tagged.
    pub fn pull(
        &self,
        cache: &Cache,
        reference: &str,
        arch: &str,
    ) -> Result<Pulled, RegistryError> {
        let r = parse_reference(reference)?;
        let name = r.whole();
        if !self.opts.check {
            if let Some(digest) = cache.lookup(&name, arch)? {
                if complete(cache, &digest) {
                    return Ok(Pulled {
                        name,
                        digest,
                        fetched: 0,
                    });
                }
            }
        }
        let route = self.route(&r)?;
        let client = Self::client(&route);
        let auth = credentials(route.target.registry())?;
        let _writer = cache.writer_lock()?;
        let rt = Self::runtime()?;
        rt.block_on(self.pull_async(cache, &client, &auth, &r, &route, &name, arch))
    }

    #[allow(clippy::too_many_arguments)]
    async fn pull_async(
        &self,
        cache: &Cache,
        client: &Client,
        auth: &RegistryAuth,
        r: &Reference,
        route: &Route,
        name: &str,
        arch: &str,
    ) -> Result<Pulled, RegistryError> {
        let registry = route.target.registry().to_string();
        let shown = r.whole();
        let err = |e| map_error(e, &shown, &registry, "pull");
        let (bytes, _) = client
            .pull_manifest_raw(&route.target, auth, ACCEPT)
            .await
            .map_err(err)?;
        let mut digest = sha256(&bytes);
        if let Some(want) = r.digest() {
            if want != digest {
                return Err(RegistryError::Digest {
                    digest: want.to_string(),
                    registry,
                });
            }
        }
        let mut manifest_bytes = bytes.to_vec();
        let mut value: Value =
            serde_json::from_slice(&manifest_bytes).map_err(|e| RegistryError::Other {
                registry: registry.clone(),
                message: format!("manifest of {shown} is not JSON: {e}"),
            })?;
        let mut from_index = false;
        if value["manifests"].is_array() {
            // An index: pick the platform, fetch its manifest by digest.
            let (d, available) = pick_platform(&value, arch);
            let d = d.ok_or_else(|| RegistryError::NoPlatform {
                arch: oci_arch(arch).to_string(),
                reference: shown.clone(),
                available,
            })?;
            let by_digest = Reference::with_digest(
                route.target.registry().into(),
                route.target.repository().into(),
                d.clone(),
            );
            let (b, _) = client
                .pull_manifest_raw(&by_digest, auth, ACCEPT)
                .await
                .map_err(err)?;
            if sha256(&b) != d {
                return Err(RegistryError::Digest {
                    digest: d,
                    registry,
                });
            }
            digest = d;
            manifest_bytes = b.to_vec();
            value = serde_json::from_slice(&manifest_bytes).map_err(|e| RegistryError::Other {
                registry: registry.clone(),
                message: format!("manifest {digest} is not JSON: {e}"),
            })?;
            from_index = true;
        }
        let media_type = value["mediaType"]
            .as_str()
            .unwrap_or(MANIFEST_OCI)
            .to_string();
        if media_type != MANIFEST_OCI && media_type != MANIFEST_DOCKER {
            return Err(RegistryError::MediaType {
                reference: shown,
                media_type,
            });
        }
        if cache.lookup(name, arch)?.as_deref() == Some(digest.as_str()) && complete(cache, &digest)
        {
            return Ok(Pulled {
                name: name.to_string(),
                digest,
                fetched: 0,
            });
        }

        // The config first: it says the platform, so a wrong one costs no
        // layer downloads. Then the layers the cache lacks, four at a time.
        let mut descriptors = descriptors(&value).into_iter();
        let config_desc = descriptors.next().unwrap_or_default();
        let mut fetched = 0;
        if !cache.has_blob(&config_desc.digest) {
            fetched += self
                .fetch_blob(cache, client, &route.target, &config_desc)
                .await?;
        }
        let config = cache.json_blob(&config_desc.digest)?;
        if !from_index {
            let actual = format!(
                "{}/{}",
                config["os"].as_str().unwrap_or("?"),
                config["architecture"].as_str().unwrap_or("?")
            );
            if actual != format!("linux/{}", oci_arch(arch)) {
                return Err(RegistryError::WrongPlatform {
                    reference: shown,
                    arch: oci_arch(arch).to_string(),
                    actual,
                });
            }
        }
        let mut seen = BTreeSet::new();
        let wanted: Vec<OciDescriptor> = descriptors
            .filter(|d| seen.insert(d.digest.clone()) && !cache.has_blob(&d.digest))
            .collect();
        fetched += futures_util::stream::iter(wanted.iter())
            .map(|d| self.fetch_blob(cache, client, &route.target, d))
            .buffer_unordered(4)
            .try_fold(0u64, |acc, n| async move { Ok(acc + n) })
            .await?;
        cache.put_blob(&manifest_bytes)?;
        cache.tag(name, arch, &media_type, &digest, manifest_bytes.len())?;
        Ok(Pulled {
            name: name.to_string(),
            digest,
            fetched,
        })
    }

    /// Downloads one blob into the cache, resuming a partial file left by an
    /// earlier run when the registry honours ranges. Returns bytes fetched.
    async fn fetch_blob(
        &self,
        cache: &Cache,
        client: &Client,
        target: &Reference,
        desc: &OciDescriptor,
    ) -> Result<u64, RegistryError> {
        let registry = target.registry().to_string();
        let digest = desc.digest.clone();
        let _lock = loop {
            if let Some(l) = cache.try_blob_lock(&digest)? {
                break l;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if cache.has_blob(&digest) {
            return Ok(0); // another hull process fetched it meanwhile
        }
        let hex = crate::cache::digest_hex(&digest)?;
        let partial: PathBuf = cache.tmp_dir().join(format!("{hex}.partial"));
        let io = |e: std::io::Error| {
            RegistryError::Cache(CacheError::Io {
                path: partial.clone(),
                source: e,
            })
        };
        let offset = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        let size = u64::try_from(desc.size).unwrap_or(0);
        let offset = if offset >= size { 0 } else { offset };
        let resp = client
            .pull_blob_stream_partial(target, desc, offset, None)
            .await
            .map_err(|e| {
                map_error(
                    e,
                    &format!("{}@{digest}", target.repository()),
                    &registry,
                    "pull",
                )
            })?;
        let (mut stream, mut written) = match resp {
            BlobResponse::Partial(s) => (s, offset),
            BlobResponse::Full(s) => (s, 0),
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(written > 0)
            .truncate(written == 0)
            .open(&partial)
            .map_err(io)?;
        let bar = self.bars.add(ProgressBar::new(size));
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:19} {bar:30} {bytes:>10}/{total_bytes:10} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(digest.chars().take(19).collect::<String>());
        bar.set_position(written);
        let start = written;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                let is_digest = e
                    .get_ref()
                    .is_some_and(|i| i.is::<oci_client::errors::DigestError>());
                if is_digest {
                    let _ = std::fs::remove_file(&partial);
                    RegistryError::Digest {
                        digest: digest.clone(),
                        registry: registry.clone(),
                    }
                } else {
                    RegistryError::Unreachable {
                        registry: registry.clone(),
                        message: format!("reading blob {digest}: {e}"),
                    }
                }
            })?;
            written += chunk.len() as u64;
            if written > size {
                let _ = std::fs::remove_file(&partial);
                return Err(RegistryError::Oversize {
                    digest,
                    registry,
                    size,
                });
            }
            file.write_all(&chunk).map_err(io)?;
            bar.set_position(written);
        }
        file.flush().map_err(io)?;
        drop(file);
        bar.finish_and_clear();
        cache
            .put_blob_file(&partial, &digest)
            .map_err(|e| match e {
                CacheError::Corrupt { digest } => RegistryError::Digest { digest, registry },
                e => e.into(),
            })?;
        Ok(written - start)
    }

    /// Pushes every platform cached under `name` to `dest` (a registry
    /// reference; default: `name` itself). Several platforms go up as an
    /// image index. Returns the digest the tag points at.
    pub fn push(&self, cache: &Cache, name: &str, dest: &str) -> Result<String, RegistryError> {
        let records: Vec<_> = cache
            .images()?
            .into_iter()
            .filter(|r| r.name == name)
            .collect();
        if records.is_empty() {
            return Err(CacheError::NotFound {
                name: name.to_string(),
                arch: "any arch".into(),
            }
            .into());
        }
        let r = parse_reference(dest)?;
        let route = self.route(&r)?;
        let client = Self::client(&route);
        let auth = credentials(route.target.registry())?;
        let rt = Self::runtime()?;
        rt.block_on(async {
            let registry = route.target.registry().to_string();
            let shown = r.whole();
            let err = |e| map_error(e, &shown, &registry, "push");
            client
                .auth(&route.target, &auth, RegistryOperation::Push)
                .await
                .map_err(err)?;
            let mut entries = Vec::new();
            for rec in &records {
                let bytes = cache.blob(&rec.digest)?;
                let manifest: Value =
                    serde_json::from_slice(&bytes).map_err(|e| CacheError::BadImage {
                        name: name.to_string(),
                        message: format!("manifest is not JSON: {e}"),
                    })?;
                for d in blob_digests(&manifest) {
                    if !client.blob_exists(&route.target, &d).await.map_err(err)? {
                        let data = cache.blob(&d)?;
                        client
                            .push_blob(&route.target, data, &d)
                            .await
                            .map_err(err)?;
                    }
                }
                let media = manifest["mediaType"]
                    .as_str()
                    .unwrap_or(MANIFEST_OCI)
                    .to_string();
                let target = if records.len() == 1 {
                    route.target.clone()
                } else {
                    Reference::with_digest(
                        route.target.registry().into(),
                        route.target.repository().into(),
                        rec.digest.clone(),
                    )
                };
                client
                    .push_manifest_raw(&target, bytes.clone(), content_type(&media))
                    .await
                    .map_err(err)?;
                entries.push(json!({
                    "mediaType": media,
                    "digest": rec.digest,
                    "size": bytes.len(),
                    "platform": {"architecture": rec.arch, "os": "linux"},
                }));
            }
            if records.len() == 1 {
                return Ok(records[0].digest.clone());
            }
            let index = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": INDEX_OCI,
                "manifests": entries,
            }))
            .unwrap_or_default();
            let digest = sha256(&index);
            client
                .push_manifest_raw(&route.target, index, content_type(INDEX_OCI))
                .await
                .map_err(err)?;
            Ok(digest)
        })
    }
}

fn content_type(media: &str) -> http::HeaderValue {
    http::HeaderValue::from_str(media)
        .unwrap_or_else(|_| http::HeaderValue::from_static(MANIFEST_OCI))
}

/// True when the manifest and every blob it names are in the cache.
fn complete(cache: &Cache, digest: &str) -> bool {
    cache.has_blob(digest)
        && cache
            .json_blob(digest)
            .map(|m| blob_digests(&m).iter().all(|d| cache.has_blob(d)))
            .unwrap_or(false)
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The config and layer descriptors of a manifest.
fn descriptors(manifest: &Value) -> Vec<OciDescriptor> {
    let one = |v: &Value| OciDescriptor {
        media_type: v["mediaType"].as_str().unwrap_or("").to_string(),
        digest: v["digest"].as_str().unwrap_or("").to_string(),
        size: v["size"].as_i64().unwrap_or(0),
        ..Default::default()
    };
    let mut out = vec![one(&manifest["config"])];
    out.extend(manifest["layers"].as_array().into_iter().flatten().map(one));
    out
}

/// The manifest digest for linux/`arch` in an index, and the platforms it
/// has (for the error when it has not).
pub fn pick_platform(index: &Value, arch: &str) -> (Option<String>, String) {
    let want = oci_arch(arch);
    let mut available = Vec::new();
    let mut found = None;
    for m in index["manifests"].as_array().into_iter().flatten() {
        let os = m["platform"]["os"].as_str().unwrap_or("");
        let a = m["platform"]["architecture"].as_str().unwrap_or("");
        let variant = m["platform"]["variant"].as_str().unwrap_or("");
        if os.is_empty() || a == "unknown" {
            continue; // attestations and other non-image entries
        }
        available.push(if variant.is_empty() {
            format!("{os}/{a}")
        } else {
            format!("{os}/{a}/{variant}")
        });
        // arm64's only variant in use is v8; prefer an exact match, take any.
        if found.is_none() && os == "linux" && a == want && (variant.is_empty() || variant == "v8")
        {
            found = m["digest"].as_str().map(String::from);
        }
    }
    if available.is_empty() {
        available.push("nothing".into());
    }
    (found, available.join(", "))
}

/// Credentials for `registry` from the user's docker `config.json`
/// (`$DOCKER_CONFIG` or `~/.docker`), credential helpers included.
fn credentials(registry: &str) -> Result<RegistryAuth, RegistryError> {
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    // docker_credential reports a missing config.json as a read error; no
    // file is simply no credentials.
    let config = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .map(|d| d.join("config.json"));
    if !config.as_ref().is_some_and(|c| c.is_file()) {
        return Ok(RegistryAuth::Anonymous);
    }
    let keys: Vec<&str> = if registry == "docker.io" || registry == "index.docker.io" {
        vec![
            "https://index.docker.io/v1/",
            "docker.io",
            "index.docker.io",
        ]
    } else {
        vec![registry]
    };
    for key in keys {
        match docker_credential::get_credential(key) {
            Ok(DockerCredential::UsernamePassword(u, p)) => return Ok(RegistryAuth::Basic(u, p)),
            Ok(DockerCredential::IdentityToken(_)) => {
                return Err(RegistryError::Credentials {
                    registry: registry.to_string(),
                    message: "config.json holds an identity token, which hull cannot use; log in with a username and password or token".into(),
                })
            }
            Err(E::NoCredentialConfigured | E::ConfigNotFound) => {}
            Err(e) => {
                let message = match e {
                    E::HelperFailure { helper, stderr, .. } => {
                        format!("credential helper docker-credential-{helper} failed: {}", stderr.trim())
                    }
                    E::HelperCommunicationError => "cannot run the credential helper".into(),
                    E::ConfigReadError => format!("cannot read {}", config.unwrap_or_default().display()),
                    e => format!("{e:?} in {}", config.unwrap_or_default().display()),
                };
                return Err(RegistryError::Credentials {
                    registry: registry.to_string(),
                    message,
                });
            }
        }
    }
    // docker_credential reads `auths` and `credHelpers`, not `credsStore`
    // (the helper for every registry): ask that one here.
    let store = std::fs::read(config.as_deref().unwrap_or(Path::new("")))
        .ok()
        .and_then(|d| serde_json::from_slice::<Value>(&d).ok())
        .and_then(|v| v["credsStore"].as_str().map(String::from));
    if let Some(store) = store.filter(|s| !s.is_empty()) {
        return creds_store(&store, registry);
    }
    Ok(RegistryAuth::Anonymous)
}

/// Runs `docker-credential-STORE get` with the registry on stdin, as docker does.
fn creds_store(store: &str, registry: &str) -> Result<RegistryAuth, RegistryError> {
    use std::process::{Command, Stdio};
    let helper = format!("docker-credential-{store}");
    let fail = |message: String| RegistryError::Credentials {
        registry: registry.to_string(),
        message,
    };
    let mut child = Command::new(&helper)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot run {helper} (credsStore in config.json): {e}"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("{helper}: {e}")))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("credentials not found") {
            return Ok(RegistryAuth::Anonymous);
        }
        return Err(fail(format!(
            "{helper} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| fail(format!("{helper} did not answer JSON: {e}")))?;
    match (v["Username"].as_str(), v["Secret"].as_str()) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(RegistryAuth::Basic(u.into(), p.into())),
        _ => Ok(RegistryAuth::Anonymous),
    }
}

/// One clear error for what the client reported.
fn map_error(
    e: OciDistributionError,
    reference: &str,
    registry: &str,
    operation: &'static str,
) -> RegistryError {
    let unauthorized = || RegistryError::Unauthorized {
        reference: reference.to_string(),
        registry: registry.to_string(),
    };
    let not_found = || RegistryError::NotFound {
        reference: reference.to_string(),
        registry: registry.to_string(),
    };
    match e {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => unauthorized(),
        OciDistributionError::ImageManifestNotFoundError(_) => not_found(),
        OciDistributionError::ServerError { code: 401, .. } => unauthorized(),
        OciDistributionError::ServerError { code: 404, .. } => not_found(),
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes.contains(&&OciErrorCode::Unauthorized) {
                unauthorized()
            } else if codes.contains(&&OciErrorCode::Denied) {
                RegistryError::Denied {
                    reference: reference.to_string(),
                    registry: registry.to_string(),
                    operation,
                }
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::BlobUnknown
                )
            }) {
                not_found()
            } else {
                RegistryError::Other {
                    registry: registry.to_string(),
                    message: format!("{reference}: {envelope}"),
                }
            }
        }
        OciDistributionError::RequestError(e) => {
            let mut message = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                message = format!("{message}: {s}");
                src = s.source();
            }
            RegistryError::Unreachable {
                registry: registry.to_string(),
                message,
            }
        }
        e => RegistryError::Other {
            registry: registry.to_string(),
            message: format!("{reference}: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalised_like_docker() {
        assert_eq!(cache_name("redis:7").unwrap(), "docker.io/library/redis:7");
        assert_eq!(
            cache_name("127.0.0.1:5000/x/y").unwrap(),
            "127.0.0.1:5000/x/y:latest"
        );
        assert!(cache_name("no spaces allowed").is_err());
        assert!(cache_name("x@sha256:tooshort").is_err());
    }

    #[test]
    fn loopback_hosts_speak_http() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:80"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("ghcr.io"));
        assert!(!is_loopback("127.example.com:5000"));
    }

    #[test]
    fn platform_is_picked_from_an_index() {
        let index = json!({"manifests": [
            {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "sha256:b", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"digest": "sha256:c", "platform": {"os": "unknown", "architecture": "unknown"}},
        ]});
        assert_eq!(
            pick_platform(&index, "x86_64").0.as_deref(),
            Some("sha256:a")
        );
        assert_eq!(
            pick_platform(&index, "aarch64").0.as_deref(),
            Some("sha256:b")
        );
        let only = json!({"manifests": [
            {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "amd64"}},
        ]});
        let (d, available) = pick_platform(&only, "arm64");
        assert!(d.is_none());
        assert_eq!(available, "linux/amd64");
    }

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
