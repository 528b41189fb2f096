//! A Debian archive client for the host tool.
//!
//! [`Archive`] downloads a suite's `Release` and `Packages.xz` index (cached),
//! [`Archive::resolve`] computes a dependency closure, [`Archive::fetch`] downloads
//! and verifies a `.deb`, and [`unpack_deb`] puts its data into a
//! [`fstree::Tree`] without running any maintainer script.
//!
//! Trust: the suite's `InRelease` (or `Release` + `Release.gpg`) must carry a
//! good OpenPGP signature by a key of the archive keyring ([`Keyring::debian`]
//! unless told otherwise), every `Packages.xz` is checked against the SHA256 in
//! that signed `Release`, and every `.deb` against the SHA256 in `Packages`. An
//! index that cannot be verified is refused unless the caller allows it
//! explicitly ([`Archive::allow_unsigned`]).

mod index;
mod signature;
mod version;

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use fstree::{Tree, TreeError};
use sha2::{Digest, Sha256};

pub use index::{parse_depends, DebPackage, Dep, DepGroup, Index};
pub use signature::{Keyring, SignatureError};
pub use version::compare_versions;

use index::ClosureError;

/// Everything that can go wrong, one variant per step.
#[derive(Debug, thiserror::Error)]
pub enum DebianError {
    #[error("unknown architecture {0:?} (expected x86_64, amd64, aarch64 or arm64)")]
    UnknownArch(String),
    #[error("GET {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("reading the body of {url}: {source}")]
    Download {
        url: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{source}; refusing an index that cannot be verified (allow-unsigned: true in build.yml accepts it)")]
    Signature {
        #[source]
        source: SignatureError,
    },
    #[error("parsing Release file {url}: {reason}")]
    ParseRelease { url: String, reason: String },
    #[error("the Release file {release} does not list {path}")]
    NotInRelease { release: String, path: String },
    #[error("checksum mismatch for {what}: expected sha256 {expected} ({expected_size} bytes), got {actual} ({actual_size} bytes)")]
    Checksum {
        what: String,
        expected: String,
        expected_size: u64,
        actual: String,
        actual_size: u64,
    },
    #[error("decompressing {path}: {source}")]
    Decompress {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parsing {source_name}, package {package:?}: {reason}")]
    ParsePackages {
        source_name: String,
        package: String,
        reason: String,
    },
    #[error("the index is not loaded: call Archive::load_index first")]
    IndexNotLoaded,
    #[error("no package {name:?} in suite {suite} for {arch}")]
    NoSuchPackage {
        name: String,
        suite: String,
        arch: String,
    },
    #[error(
        "{package} depends on {dependency}, which nothing in suite {suite} for {arch} provides"
    )]
    Unsatisfiable {
        package: String,
        dependency: String,
        suite: String,
        arch: String,
    },
    #[error("refusing package {package}: {reason}")]
    BadIndexEntry { package: String, reason: String },
    #[error("{path} is not a valid .deb: {reason}")]
    BadDeb { path: PathBuf, reason: String },
    #[error("unpacking {path}: {source}")]
    Unpack {
        path: PathBuf,
        #[source]
        source: TreeError,
    },
}

/// A Debian architecture that hull targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DebArch {
    Amd64,
    Arm64,
}

impl DebArch {
    /// Maps hull's (Rust/kernel) or Debian's architecture name.
    pub fn from_hull_arch(arch: &str) -> Result<DebArch, DebianError> {
        match arch {
            "x86_64" | "amd64" => Ok(DebArch::Amd64),
            "aarch64" | "arm64" => Ok(DebArch::Arm64),
            other => Err(DebianError::UnknownArch(other.to_string())),
        }
    }

    /// Debian's name (`amd64`, `arm64`).
    pub fn as_str(self) -> &'static str {
        match self {
            DebArch::Amd64 => "amd64",
            DebArch::Arm64 => "arm64",
        }
    }
}

impl std::fmt::Display for DebArch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A progress callback: receives one human-readable line per step.
pub type Progress = Box<dyn Fn(&str) + Send + Sync>;

/// Cached index files older than this are downloaded again (unless refresh is forced).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// One suite of one mirror, for one architecture.
pub struct Archive {
    mirror: String,
    suite: String,
    components: Vec<String>,
    arch: DebArch,
    cache_dir: PathBuf,
    force_refresh: bool,
    max_age: Duration,
    verbose: bool,
    progress: Option<Progress>,
    agent: ureq::Agent,
    index: Option<Index>,
    keyring: Keyring,
    allow_unsigned: bool,
    verified: bool,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("mirror", &self.mirror)
            .field("suite", &self.suite)
            .field("components", &self.components)
            .field("arch", &self.arch)
            .field("cache_dir", &self.cache_dir)
            .field("loaded", &self.index.as_ref().map(Index::len))
            .finish_non_exhaustive()
    }
}

impl Archive {
    /// `mirror` is the archive root (`http://deb.debian.org/debian`); only plain
    /// http is supported (integrity comes from the checksums, not from TLS).
    /// Components default to `main`.
    pub fn new(mirror: &str, suite: &str, arch: DebArch, cache_dir: &Path) -> Archive {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .user_agent(concat!("hull-debian/", env!("CARGO_PKG_VERSION")))
            .build();
        Archive {
            mirror: mirror.trim_end_matches('/').to_string(),
            suite: suite.to_string(),
            components: vec!["main".to_string()],
            arch,
            cache_dir: cache_dir.to_path_buf(),
            force_refresh: false,
            max_age: DEFAULT_MAX_AGE,
            verbose: false,
            progress: None,
            agent: config.into(),
            index: None,
            keyring: Keyring::debian(),
            allow_unsigned: false,
            verified: false,
        }
    }

    /// Replaces the components to index (default `["main"]`).
    pub fn set_components(&mut self, components: &[&str]) {
        self.components = components.iter().map(|c| c.to_string()).collect();
        self.index = None;
    }

    /// `true` forces the next [`Archive::load_index`] to download `Release` again
    /// whatever the cache's age.
    pub fn refresh(&mut self, force: bool) {
        self.force_refresh = force;
    }

    /// How old a cached `Release` may be before it is downloaded again (default 24 h).
    pub fn set_max_age(&mut self, max_age: Duration) {
        self.max_age = max_age;
    }

    /// Prints progress lines on stderr (unless a progress callback is set).
    pub fn set_verbose(&mut self, verbose: bool) {
        self.verbose = verbose;
    }

    /// Sends progress lines to `progress` instead of stderr.
    pub fn set_progress(&mut self, progress: Option<Progress>) {
        self.progress = progress;
    }

    pub fn arch(&self) -> DebArch {
        self.arch
    }

    pub fn suite(&self) -> &str {
        &self.suite
    }

    pub fn mirror(&self) -> &str {
        &self.mirror
    }

    /// The keys the `Release` file must be signed with (default [`Keyring::debian`]).
    pub fn set_keyring(&mut self, keyring: Keyring) {
        self.keyring = keyring;
        self.index = None;
    }

    /// Accept a `Release` file without a good signature (with a warning through the
    /// progress output). Off by default: then anyone between the mirror and us could
    /// serve any package they like.
    pub fn allow_unsigned(&mut self, allow: bool) {
        self.allow_unsigned = allow;
    }

    /// Whether the loaded index came from a `Release` file whose OpenPGP signature
    /// verified against the keyring.
    pub fn release_signature_verified(&self) -> bool {
        self.index.is_some() && self.verified
    }

    fn say(&self, msg: &str) {
        if let Some(p) = &self.progress {
            p(msg);
        } else if self.verbose {
            eprintln!("hull-debian: {msg}");
        }
    }

    /// The per-mirror, per-suite cache folder for index files.
    fn index_dir(&self) -> PathBuf {
        let mirror: String = self
            .mirror
            .split_once("://")
            .map_or(self.mirror.as_str(), |(_, rest)| rest)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.cache_dir
            .join("index")
            .join(mirror)
            .join(sanitize(&self.suite))
    }

    fn dists_url(&self, rel: &str) -> String {
        format!("{}/dists/{}/{}", self.mirror, self.suite, rel)
    }

    /// Downloads (or reuses from cache) `dists/SUITE/InRelease` (else `Release` and
    /// `Release.gpg`), verifies its signature (also when it comes from the cache),
    /// then each component's `binary-ARCH/Packages.xz` against the SHA256 in it, and
    /// parses them. Nothing unverified is written to the cache.
    pub fn load_index(&mut self) -> Result<(), DebianError> {
        let dir = self.index_dir();
        let release_url = self.dists_url("InRelease");
        let cached = dir.join("InRelease");
        let fresh = !self.force_refresh && is_younger_than(&cached, self.max_age);
        let mut from_cache = fresh;
        let (mut release, mut verified) = if fresh {
            self.say(&format!("using cached {release_url}"));
            self.verified_release(&read_file(&cached)?, None, &release_url)?
        } else {
            self.download_release(&dir)?
        };
        loop {
            match self.load_packages(&dir, release.as_bytes(), &release_url) {
                Ok(index) => {
                    self.index = Some(index);
                    self.verified = verified;
                    self.force_refresh = false;
                    return Ok(());
                }
                // A cached Release may predate the archive's current Packages files.
                Err(DebianError::Checksum { .. } | DebianError::NotInRelease { .. })
                    if from_cache =>
                {
                    from_cache = false;
                    (release, verified) = self.download_release(&dir)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Downloads `InRelease` (or, where a mirror has none, `Release` +
    /// `Release.gpg`), verifies it and caches it as `InRelease` / `Release`.
    /// Returns the Release text and whether its signature verified.
    fn download_release(&self, dir: &Path) -> Result<(String, bool), DebianError> {
        let url = self.dists_url("InRelease");
        self.say(&format!("downloading {url}"));
        match self.get_bytes(&url) {
            Ok(data) => {
                let out = self.verified_release(&data, None, &url)?;
                write_atomically(&dir.join("InRelease"), &data)?;
                Ok(out)
            }
            Err(DebianError::Http { source, .. })
                if matches!(*source, ureq::Error::StatusCode(404)) =>
            {
                let url = self.dists_url("Release");
                self.say(&format!("no InRelease; downloading {url} and Release.gpg"));
                let data = self.get_bytes(&url)?;
                let sig = self.get_bytes(&self.dists_url("Release.gpg")).ok();
                let out = self.verified_release(&data, Some(sig.as_deref()), &url)?;
                // Kept for inspection only: load_index always starts from InRelease.
                write_atomically(&dir.join("Release"), &data)?;
                Ok(out)
            }
            Err(e) => Err(e),
        }
    }

    /// Checks a clear-signed InRelease (`detached` None) or a Release with its
    /// detached signature (`Some(None)`: the mirror has none) and returns the
    /// text to trust. Unverifiable input is an error unless unsigned input is allowed.
    fn verified_release(
        &self,
        data: &[u8],
        detached: Option<Option<&[u8]>>,
        url: &str,
    ) -> Result<(String, bool), DebianError> {
        let text = String::from_utf8_lossy(data);
        let result = match detached {
            None => self.keyring.verify_clearsigned(url, &text),
            Some(Some(sig)) => self
                .keyring
                .verify_detached(url, data, sig)
                .map(|()| text.to_string()),
            Some(None) => Err(SignatureError::NotSigned {
                what: format!("{url} (no Release.gpg)"),
                keyring: "any keyring".into(),
            }),
        };
        match result {
            Ok(t) => Ok((t, true)),
            Err(source) if self.allow_unsigned => {
                self.say(&format!(
                    "WARNING: {source}; using it unverified (allow-unsigned)"
                ));
                let body = match detached {
                    // Take the text out of the clear-signed frame without trusting it.
                    None => text
                        .split_once("\n\n")
                        .map(|(_, rest)| rest)
                        .unwrap_or(&text)
                        .split("-----BEGIN PGP SIGNATURE-----")
                        .next()
                        .unwrap_or("")
                        .to_string(),
                    Some(_) => text.to_string(),
                };
                Ok((body, false))
            }
            Err(source) => Err(DebianError::Signature { source }),
        }
    }

    fn load_packages(
        &self,
        dir: &Path,
        release: &[u8],
        release_url: &str,
    ) -> Result<Index, DebianError> {
        let sums = index::parse_release(&String::from_utf8_lossy(release), release_url)?;
        let mut idx = Index::default();
        for component in &self.components {
            let rel = format!("{component}/binary-{}/Packages.xz", self.arch);
            let (hash, size) = sums.get(&rel).ok_or_else(|| DebianError::NotInRelease {
                release: release_url.to_string(),
                path: rel.clone(),
            })?;
            let path = dir.join(&rel);
            let url = self.dists_url(&rel);
            let cached_ok = match hash_file(&path) {
                Ok((h, n)) => h == *hash && n == *size,
                Err(_) => false,
            };
            if cached_ok {
                self.say(&format!("using cached {url}"));
            } else {
                self.say(&format!("downloading {url}"));
                self.download_verified(&url, &path, hash, *size)?;
            }
            let file = File::open(&path).map_err(|source| DebianError::Io {
                path: path.clone(),
                source,
            })?;
            let mut text = String::new();
            liblzma::read::XzDecoder::new_multi_decoder(BufReader::new(file))
                .read_to_string(&mut text)
                .map_err(|source| DebianError::Decompress {
                    path: path.clone(),
                    source,
                })?;
            idx.add_packages(&text, &url)?;
        }
        Ok(idx)
    }

    fn index(&self) -> Result<&Index, DebianError> {
        self.index.as_ref().ok_or(DebianError::IndexNotLoaded)
    }

    /// The index entry for `name` (the highest version), if the index has one.
    pub fn package(&self, name: &str) -> Result<Option<&DebPackage>, DebianError> {
        Ok(self.index()?.get(name))
    }

    /// The dependency closure of `names` (Pre-Depends and Depends; for each group the
    /// first alternative the index can satisfy, virtual names through Provides; version
    /// constraints are ignored and each name's highest version is used), or just
    /// `names` when `with_depends` is false. Sorted by package name.
    pub fn resolve(
        &self,
        names: &[String],
        with_depends: bool,
    ) -> Result<Vec<DebPackage>, DebianError> {
        self.resolve_excluding(names, with_depends, &[])
    }

    /// As [`Archive::resolve`], taking the dependencies named in `exclude` as
    /// satisfied without following them.
    pub fn resolve_excluding(
        &self,
        names: &[String],
        with_depends: bool,
        exclude: &[String],
    ) -> Result<Vec<DebPackage>, DebianError> {
        self.index()?
            .closure_excluding(names, with_depends, exclude)
            .map_err(|e| match e {
                ClosureError::NoSuchPackage(name) => DebianError::NoSuchPackage {
                    name,
                    suite: self.suite.clone(),
                    arch: self.arch.to_string(),
                },
                ClosureError::Unsatisfiable {
                    package,
                    dependency,
                } => DebianError::Unsatisfiable {
                    package,
                    dependency,
                    suite: self.suite.clone(),
                    arch: self.arch.to_string(),
                },
            })
    }

    /// The direct dependencies of `name` (Pre-Depends then Depends), one name per group:
    /// the alternative [`Archive::resolve`] would follow, as written (possibly virtual).
    /// This lets a caller follow a metapackage (`linux-image-cloud-amd64`) to the real
    /// package (`linux-image-6.1.0-NN-cloud-amd64`) without taking the whole closure.
    pub fn depends_of(&self, name: &str) -> Result<Vec<String>, DebianError> {
        self.index()?
            .depends_of(name)
            .ok_or_else(|| DebianError::NoSuchPackage {
                name: name.to_string(),
                suite: self.suite.clone(),
                arch: self.arch.to_string(),
            })
    }

    /// Where [`Archive::fetch`] keeps `pkg`.
    pub fn cached_deb_path(&self, pkg: &DebPackage) -> PathBuf {
        self.cache_dir
            .join("debs")
            .join(format!("{}.deb", pkg.sha256))
    }

    /// Downloads `pkg` to `cache_dir/debs/<sha256>.deb` unless a file with the right
    /// checksum is already there, verifies its SHA256 and size against the index and
    /// returns the path.
    pub fn fetch(&self, pkg: &DebPackage) -> Result<PathBuf, DebianError> {
        let bad = |reason: &str| DebianError::BadIndexEntry {
            package: pkg.name.clone(),
            reason: reason.to_string(),
        };
        if !index::is_sha256(&pkg.sha256) {
            return Err(bad("SHA256 is not 64 hex digits"));
        }
        if pkg.filename.starts_with('/')
            || pkg.filename.contains('\\')
            || pkg.filename.split('/').any(|c| c == ".." || c.is_empty())
        {
            return Err(bad("Filename is not a plain relative path"));
        }
        let path = self.cached_deb_path(pkg);
        if let Ok((h, n)) = hash_file(&path) {
            if h == pkg.sha256.to_ascii_lowercase() && n == pkg.size {
                return Ok(path);
            }
        }
        let url = format!("{}/{}", self.mirror, pkg.filename);
        self.say(&format!("downloading {url} ({} bytes)", pkg.size));
        self.download_verified(&url, &path, &pkg.sha256.to_ascii_lowercase(), pkg.size)?;
        Ok(path)
    }

    fn get(&self, url: &str) -> Result<ureq::Body, DebianError> {
        self.agent
            .get(url)
            .call()
            .map(|r| r.into_body())
            .map_err(|source| DebianError::Http {
                url: url.to_string(),
                source: Box::new(source),
            })
    }

    fn get_bytes(&self, url: &str) -> Result<Vec<u8>, DebianError> {
        let mut data = Vec::new();
        self.get(url)?
            .into_reader()
            .read_to_end(&mut data)
            .map_err(|source| DebianError::Download {
                url: url.to_string(),
                source,
            })?;
        Ok(data)
    }

    /// Streams `url` into a temporary file next to `dest`, hashing as it goes; renames
    /// it to `dest` only when the SHA256 and size match.
    fn download_verified(
        &self,
        url: &str,
        dest: &Path,
        sha256: &str,
        size: u64,
    ) -> Result<(), DebianError> {
        let tmp = temp_path(dest);
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DebianError::Io { path, source }
        };
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut out = File::create(&tmp).map_err(io_err(&tmp))?;
        let result = (|| {
            let mut body = self.get(url)?.into_reader();
            let mut hasher = Sha256::new();
            let mut total = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = body
                    .read(&mut buf)
                    .map_err(|source| DebianError::Download {
                        url: url.to_string(),
                        source,
                    })?;
                if n == 0 {
                    break;
                }
                total += n as u64;
                if total > size {
                    // Do not let a hostile server fill the disk.
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(io_err(&tmp))?;
            }
            let actual = hex::encode(hasher.finalize());
            if actual != sha256 || total != size {
                return Err(DebianError::Checksum {
                    what: url.to_string(),
                    expected: sha256.to_string(),
                    expected_size: size,
                    actual,
                    actual_size: total,
                });
            }
            out.sync_all().map_err(io_err(&tmp))?;
            fs::rename(&tmp, dest).map_err(io_err(dest))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn temp_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

fn is_younger_than(path: &Path, max_age: Duration) -> bool {
    let Ok(modified) = fs::metadata(path).and_then(|m| m.modified()) else {
        return false;
    };
    match SystemTime::now().duration_since(modified) {
        Ok(age) => age < max_age,
        Err(_) => true, // modified in the future: clock skew, treat as fresh
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, DebianError> {
    fs::read(path).map_err(|source| DebianError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_atomically(path: &Path, data: &[u8]) -> Result<(), DebianError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DebianError::Io { path, source }
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let tmp = temp_path(path);
    let result = fs::write(&tmp, data)
        .map_err(io_err(&tmp))
        .and_then(|()| fs::rename(&tmp, path).map_err(io_err(path)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// SHA256 (lower-case hex) and size of a file.
fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Unpacks the `data.tar{,.xz,.gz,.zst}` member of the .deb at `deb` into `tree`
/// (through [`Tree::apply_tar`]). Maintainer scripts are not run; the control
/// member is not read. Paths are taken as they are in the package (on bookworm some
/// still live under /bin, /lib: what to do about merged /usr is the caller's call).
pub fn unpack_deb(deb: &Path, tree: &mut Tree) -> Result<(), DebianError> {
    unpack_deb_skipped(deb, tree).map(|_| ())
}

/// Like [`unpack_deb`], and returns the paths of device nodes and FIFOs it skipped.
pub fn unpack_deb_skipped(deb: &Path, tree: &mut Tree) -> Result<Vec<PathBuf>, DebianError> {
    let bad = |reason: String| DebianError::BadDeb {
        path: deb.to_path_buf(),
        reason,
    };
    let file = File::open(deb).map_err(|source| DebianError::Io {
        path: deb.to_path_buf(),
        source,
    })?;
    let mut archive = ar::Archive::new(BufReader::new(file));
    let mut first = true;
    while let Some(entry) = archive.next_entry() {
        let mut entry = entry.map_err(|e| bad(format!("reading ar member: {e}")))?;
        let id = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches('/')
            .trim()
            .to_string();
        if first {
            first = false;
            let mut version = String::new();
            entry
                .by_ref()
                .take(64)
                .read_to_string(&mut version)
                .map_err(|e| bad(format!("reading debian-binary: {e}")))?;
            if id != "debian-binary" || !version.starts_with("2.") {
                return Err(bad(format!(
                    "first member is {id:?} with {version:?}, expected debian-binary 2.x"
                )));
            }
            continue;
        }
        let Some(suffix) = id.strip_prefix("data.tar") else {
            continue;
        };
        let reader: Box<dyn Read + '_> =
            match suffix {
                "" => Box::new(&mut entry),
                ".xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(&mut entry)),
                ".gz" => Box::new(flate2::read::GzDecoder::new(&mut entry)),
                ".zst" => Box::new(zstd::stream::read::Decoder::new(&mut entry).map_err(
                    |source| DebianError::Decompress {
                        path: deb.to_path_buf(),
                        source,
                    },
                )?),
                other => {
                    return Err(bad(format!(
                        "unsupported data member compression {other:?}"
                    )))
                }
            };
        return tree
            .apply_tar(reader)
            .map_err(|source| DebianError::Unpack {
                path: deb.to_path_buf(),
                source,
            });
    }
    Err(bad("no data.tar member".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_names() {
        assert_eq!(DebArch::from_hull_arch("x86_64").unwrap(), DebArch::Amd64);
        assert_eq!(DebArch::from_hull_arch("aarch64").unwrap(), DebArch::Arm64);
        assert_eq!(DebArch::from_hull_arch("arm64").unwrap().as_str(), "arm64");
        assert!(DebArch::from_hull_arch("riscv64").is_err());
    }

    fn make_deb(member: &str, data: Vec<u8>) -> Vec<u8> {
        let mut b = ar::Builder::new(Vec::new());
        b.append(
            &ar::Header::new(b"debian-binary".to_vec(), 4),
            &b"2.0\n"[..],
        )
        .unwrap();
        let control = Tree::new().write_tar(Vec::new(), 0).unwrap();
        b.append(
            &ar::Header::new(b"control.tar".to_vec(), control.len() as u64),
            control.as_slice(),
        )
        .unwrap();
        b.append(
            &ar::Header::new(member.as_bytes().to_vec(), data.len() as u64),
            data.as_slice(),
        )
        .unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn unpacks_each_compression() {
        let mut src = Tree::new();
        src.insert("bin/busybox", fstree::Entry::file(b"elf".to_vec(), 0o755))
            .unwrap();
        src.insert(
            "usr/share/doc/x/copyright",
            fstree::Entry::file(b"c".to_vec(), 0o644),
        )
        .unwrap();
        let tar = src.write_tar(Vec::new(), 0).unwrap();
        let xz = {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(&tar).unwrap();
            e.finish().unwrap()
        };
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&tar).unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::stream::encode_all(tar.as_slice(), 3).unwrap();
        let dir = std::env::temp_dir().join(format!("hull-debian-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for (member, data) in [
            ("data.tar", tar.clone()),
            ("data.tar.xz", xz),
            ("data.tar.gz", gz),
            ("data.tar.zst", zst),
        ] {
            let path = dir.join(format!("{member}.deb"));
            fs::write(&path, make_deb(member, data)).unwrap();
            let mut t = Tree::new();
            unpack_deb(&path, &mut t).unwrap();
            assert_eq!(t, src, "{member}");
        }
        let path = dir.join("bad.deb");
        fs::write(&path, b"not an ar archive").unwrap();
        assert!(matches!(
            unpack_deb(&path, &mut Tree::new()),
            Err(DebianError::BadDeb { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resolve_before_load_is_an_error() {
        let a = Archive::new(
            "http://deb.debian.org/debian",
            "bookworm",
            DebArch::Arm64,
            Path::new("/nonexistent"),
        );
        assert!(matches!(
            a.resolve(&["x".into()], true),
            Err(DebianError::IndexNotLoaded)
        ));
        assert!(!a.release_signature_verified());
    }

    fn test_cache() -> PathBuf {
        std::env::var_os("HULL_DEBIAN_TEST_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("hull-debian-test-cache"))
    }

    /// Needs the network: `cargo test -p hull-debian -- --ignored`.
    #[test]
    #[ignore]
    fn network_busybox_static_arm64() {
        let mut a = Archive::new(
            "http://deb.debian.org/debian",
            "bookworm",
            DebArch::Arm64,
            &test_cache(),
        );
        a.load_index().unwrap();
        assert!(a.release_signature_verified());
        let pkgs = a.resolve(&["busybox-static".to_string()], true).unwrap();
        assert!(pkgs.iter().any(|p| p.name == "busybox-static"), "{pkgs:?}");
        let mut tree = Tree::new();
        for p in &pkgs {
            let path = a.fetch(p).unwrap();
            unpack_deb(&path, &mut tree).unwrap();
        }
        assert!(tree.contains("bin/busybox"));
        // A second load reuses the cache and still verifies it.
        a.load_index().unwrap();
        assert!(a.release_signature_verified());
        // Signed by a key that is not in the keyring: refused, unless allowed.
        let other = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/debian-archive-trixie-stable.gpg");
        a.set_keyring(Keyring::from_file(&other).unwrap());
        let e = a.load_index().unwrap_err().to_string();
        assert!(e.contains("no signature made by a key of"), "{e}");
        a.allow_unsigned(true);
        a.load_index().unwrap();
        assert!(!a.release_signature_verified());
    }

    /// Needs the network; prints what the kernel packages contain.
    #[test]
    #[ignore]
    fn network_kernel_metapackage() {
        for arch in [DebArch::Amd64, DebArch::Arm64] {
            let mut a = Archive::new(
                "http://deb.debian.org/debian",
                "bookworm",
                arch,
                &test_cache(),
            );
            a.load_index().unwrap();
            let meta = format!("linux-image-cloud-{arch}");
            let only = a.resolve(std::slice::from_ref(&meta), false).unwrap();
            assert_eq!(only.len(), 1);
            let deps = a.depends_of(&meta).unwrap();
            let real = deps
                .iter()
                .find(|d| {
                    d.starts_with("linux-image-6.1.0-") && d.ends_with(&format!("-cloud-{arch}"))
                })
                .unwrap_or_else(|| panic!("{meta} depends on {deps:?}"))
                .clone();
            eprintln!("{meta} {} depends on {deps:?}", only[0].version);
            let pkg = a.resolve(&[real], false).unwrap().remove(0);
            let path = a.fetch(&pkg).unwrap();
            let mut tree = Tree::new();
            unpack_deb(&path, &mut tree).unwrap();
            for (p, e) in tree.iter() {
                let s = p.to_string_lossy();
                if s.starts_with("boot/") || s.contains("kernel/drivers/virtio/") {
                    let len = match &e.kind {
                        fstree::Kind::File(d) => d.len(),
                        _ => 0,
                    };
                    eprintln!("{arch}: {s} {len}");
                }
            }
            eprintln!("{arch}: {} at {}", pkg.name, path.display());
        }
    }
}
