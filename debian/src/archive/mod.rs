//! One suite of one mirror, for one architecture: its signed index
//! ([`release`](self) loads and verifies it), the dependency closure of a
//! set of packages, and verified `.deb` downloads.

mod download;
mod release;

use std::path::{Path, PathBuf};
use std::time::Duration;

use contract::Arch;

use crate::index::{self, ClosureError};
use crate::{DebPackage, DebianError, Index, Keyring, Progress, DEFAULT_MAX_AGE};
use download::hash_file;

/// One suite of one mirror, for one architecture.
pub struct Archive {
    mirror: String,
    suite: String,
    components: Vec<String>,
    arch: Arch,
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
    pub fn new(mirror: &str, suite: &str, arch: Arch, cache_dir: &Path) -> Archive {
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

    pub fn arch(&self) -> Arch {
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
                    arch: self.arch,
                    input: report::BadInput::marker(),
                },
                ClosureError::Unsatisfiable {
                    package,
                    dependency,
                } => DebianError::Unsatisfiable {
                    package,
                    dependency,
                    suite: self.suite.clone(),
                    arch: self.arch,
                    input: report::BadInput::marker(),
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
                arch: self.arch,
                input: report::BadInput::marker(),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use fstree::Tree;

    use crate::unpack_deb;

    #[test]
    fn arch_names() {
        // What DebArch::from_hull_arch checked, now one Arch for every crate.
        let arch = |s: &str| s.parse::<Arch>().map(Arch::debian);
        assert_eq!(arch("x86_64").unwrap(), "amd64");
        assert_eq!(arch("aarch64").unwrap(), "arm64");
        assert_eq!(arch("arm64").unwrap(), "arm64");
        assert!(arch("riscv64").is_err());
    }

    #[test]
    fn resolve_before_load_is_an_error() {
        let a = Archive::new(
            "http://deb.debian.org/debian",
            "bookworm",
            Arch::Aarch64,
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
            Arch::Aarch64,
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
        let e = report::chain(&a.load_index().unwrap_err());
        assert!(e.contains("no signature made by a key of"), "{e}");
        a.allow_unsigned(true);
        a.load_index().unwrap();
        assert!(!a.release_signature_verified());
    }

    /// Needs the network; prints what the kernel packages contain.
    #[test]
    #[ignore]
    fn network_kernel_metapackage() {
        for arch in Arch::ALL {
            let arch_name = arch.debian();
            let mut a = Archive::new(
                "http://deb.debian.org/debian",
                "bookworm",
                arch,
                &test_cache(),
            );
            a.load_index().unwrap();
            let meta = format!("linux-image-cloud-{arch_name}");
            let only = a.resolve(std::slice::from_ref(&meta), false).unwrap();
            assert_eq!(only.len(), 1);
            let deps = a.depends_of(&meta).unwrap();
            let real = deps
                .iter()
                .find(|d| {
                    d.starts_with("linux-image-6.1.0-")
                        && d.ends_with(&format!("-cloud-{arch_name}"))
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
