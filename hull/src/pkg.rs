//! Packages: a folder with a `build.yml`, built into an image in the cache
//! without Docker. Sources combine, in order, into one deterministic layer:
//! Debian packages for the target arch, binaries built from this workspace
//! (static musl), and files from the folder. The tag hashes everything the
//! build reads, so an unchanged package is never rebuilt.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use fstree::{Entry, Kind, Tree};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::cache::Cache;

mod lock;
pub use lock::{LockFile, LockedDeb, LockedSource, LOCK_FILE};

/// Bumped when the way packages are built changes, so old builds are not reused.
const BUILDER_VERSION: &str = "hull-pkg-2";
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
const DEFAULT_SUITE: &str = "bookworm";

#[derive(Debug, thiserror::Error)]
pub enum PkgError {
    #[error("{0}: no build.yml here; a package is a folder with a build.yml")]
    NotAPackage(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Yaml(#[from] crate::config::ConfigError),
    #[error("package {package} is not built for {arch} (its arches: {arches})")]
    Arch {
        package: String,
        arch: String,
        arches: String,
    },
    #[error("Debian source of {package}: {source}")]
    Debian {
        package: String,
        #[source]
        source: debian::DebianError,
    },
    #[error("{package}: {message}")]
    Build { package: String, message: String },
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error("{package} ({arch}): {LOCK_FILE} is out of date and --locked forbids changing it: {}", changes.join("; "))]
    Locked {
        package: String,
        arch: String,
        changes: Vec<String>,
    },
    #[error("{package}: {source}")]
    Tree {
        package: String,
        #[source]
        source: fstree::TreeError,
    },
}

impl PkgError {
    /// The package itself is wrong (a name the archive does not have, a
    /// dependency nothing provides): exit code 2, not a failed operation.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            PkgError::NotAPackage(_)
                | PkgError::Yaml(_)
                | PkgError::Arch { .. }
                | PkgError::Debian {
                    source: debian::DebianError::NoSuchPackage { .. }
                        | debian::DebianError::Unsatisfiable { .. },
                    ..
                }
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildYml {
    pub image: String,
    #[serde(default = "default_org")]
    pub org: String,
    #[serde(default)]
    pub arches: Vec<String>,
    #[serde(default)]
    pub sources: Vec<Source>,
    /// Stored as the image's `org.mobyproject.config` label.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

fn default_org() -> String {
    "hull".into()
}

/// One source of a package: exactly one of `debian`, `cargo` or `files`,
/// with the options that go with it. (A flat struct rather than an untagged
/// enum: untagged enums lose the YAML positions and the scalar types.)
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Debian package names; `{debarch}` becomes `amd64` or `arm64`.
    #[serde(default)]
    pub debian: Option<Vec<String>>,
    #[serde(default)]
    pub suite: Option<String>,
    #[serde(default)]
    pub mirror: Option<String>,
    /// Follow Depends/Pre-Depends (default true, false for kernels).
    #[serde(default)]
    pub depends: Option<bool>,
    /// Lay the result out as a kernel image: `/kernel`, `/kernel.tar` (the
    /// modules) and `/config`, following the metapackage to the real kernel.
    #[serde(default)]
    pub kernel: bool,
    /// Dependencies taken as satisfied and left out (init-system helpers,
    /// debconf, perl: what maintainer scripts need and an appliance does not).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Keep only these paths of the unpacked packages (and what is under
    /// them): a few files of a big package (qemu-user-static).
    #[serde(default)]
    pub paths: Vec<String>,
    /// Write the CA bundle `update-ca-certificates` would write, to this path:
    /// every `usr/share/ca-certificates/**/*.crt` in path order.
    #[serde(default, rename = "ca-bundle")]
    pub ca_bundle: Option<String>,
    /// A keyring file (relative to the package) the suite's Release must be
    /// signed with, instead of the Debian archive keyring built into hull.
    #[serde(default)]
    pub keyring: Option<String>,
    /// Accept an index whose signature cannot be verified (with a warning).
    #[serde(default, rename = "allow-unsigned")]
    pub allow_unsigned: bool,
    /// Path of a busybox binary in the result whose applets get symlinks.
    #[serde(default, rename = "busybox-links")]
    pub busybox_links: Option<String>,
    /// A binary built from this workspace (static musl, target arch).
    #[serde(default)]
    pub cargo: Option<CargoSource>,
    /// A folder of the package copied into the image.
    #[serde(default)]
    pub files: Option<String>,
    /// Where `files` land (default `/`).
    #[serde(default)]
    pub to: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CargoSource {
    pub package: String,
    #[serde(default)]
    pub bin: Option<String>,
    pub to: String,
}

pub struct Package {
    pub dir: PathBuf,
    pub yml: BuildYml,
}

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Build even when the cache has the tag.
    pub force: bool,
    /// Fail instead of updating `build.lock` when the archive moved on.
    pub locked: bool,
}

/// What [`Package::update_lock`] does with differences: a build warns (or
/// fails when `locked`), `hull pkg lock` collects them.
enum LockMode<'a> {
    Build { locked: bool },
    Rewrite(&'a mut Vec<String>),
}

/// The result of [`Package::build_with`].
#[derive(Debug, Clone)]
pub struct Built {
    pub name: String,
    /// The manifest digest in the cache.
    pub digest: String,
    /// Built now (false: the cache had it).
    pub fresh: bool,
}

/// `linux/amd64` style names used by Debian and OCI for a hull arch.
pub fn normalize_arch(arch: &str) -> Option<&'static str> {
    match arch {
        "x86_64" | "amd64" => Some("x86_64"),
        "aarch64" | "arm64" => Some("aarch64"),
        _ => None,
    }
}

impl Package {
    pub fn load(dir: &Path) -> Result<Package, PkgError> {
        let file = dir.join("build.yml");
        if !file.is_file() {
            return Err(PkgError::NotAPackage(dir.to_path_buf()));
        }
        let text = fs::read_to_string(&file).map_err(|source| PkgError::Io {
            path: file.clone(),
            source,
        })?;
        let yml: BuildYml = marked_yaml::from_yaml(0, &text).map_err(|e| {
            let (line, col) = match &e {
                marked_yaml::FromYamlError::FromNode(n) => n
                    .start_mark()
                    .map(|m| (m.line(), m.column()))
                    .unwrap_or((0, 0)),
                _ => (0, 0),
            };
            crate::config::ConfigError {
                file: file.display().to_string(),
                line,
                col,
                message: e.to_string(),
            }
        })?;
        let dir = fs::canonicalize(dir).map_err(|source| PkgError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Package { dir, yml })
    }

    pub fn name(&self, tag: &str) -> String {
        format!("{}/{}:{}", self.yml.org, self.yml.image, tag)
    }

    fn check_arch(&self, arch: &str) -> Result<(), PkgError> {
        if self.yml.arches.is_empty()
            || self
                .yml
                .arches
                .iter()
                .any(|a| normalize_arch(a) == Some(arch))
        {
            Ok(())
        } else {
            Err(PkgError::Arch {
                package: self.yml.image.clone(),
                arch: arch.into(),
                arches: self.yml.arches.join(", "),
            })
        }
    }

    /// The workspace this package's `cargo` sources build from: the nearest
    /// ancestor whose Cargo.toml has a `[workspace]`.
    fn workspace(&self) -> Option<PathBuf> {
        self.dir
            .ancestors()
            .find(|d| {
                fs::read_to_string(d.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]"))
            })
            .map(Path::to_path_buf)
    }

    /// The tag: a hash of the package folder and, for `cargo` sources, the
    /// workspace crates they compile plus the lock file; `-dirty` when git
    /// reports uncommitted changes in any of it.
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
            serde_json::from_slice(&out.stdout).map_err(|e| PkgError::Build {
                package: self.yml.image.clone(),
                message: format!("cargo metadata: {e}"),
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

    /// Builds the package for `arch` unless the cache has this tag already.
    /// Returns the image name.
    pub fn build(&self, cache: &Cache, arch: &str, force: bool) -> Result<String, PkgError> {
        let opts = BuildOptions {
            force,
            locked: false,
        };
        self.build_with(cache, arch, &opts).map(|b| b.name)
    }

    /// Builds the package for `arch` unless the cache has this tag already
    /// (or `force`). Before a build, the Debian sources of every arch of the
    /// package are resolved and compared with `build.lock`: where the archive
    /// serves other versions the lock is updated with a warning (an error with
    /// `locked`), and the image is tagged after the updated lock (which may
    /// then turn out to be cached already).
    pub fn build_with(
        &self,
        cache: &Cache,
        arch: &str,
        opts: &BuildOptions,
    ) -> Result<Built, PkgError> {
        self.check_arch(arch)?;
        let mut name = self.name(&self.tag()?);
        let cached = |name: &String| -> Result<Option<Built>, PkgError> {
            Ok(cache.lookup(name, arch)?.map(|digest| Built {
                name: name.clone(),
                digest,
                fresh: false,
            }))
        };
        if !opts.force {
            if let Some(b) = cached(&name)? {
                return Ok(b);
            }
        }
        let mut resolved = Vec::new();
        if self.yml.sources.iter().any(|s| s.debian.is_some()) {
            let mut arches: Vec<&str> = self
                .yml
                .arches
                .iter()
                .filter_map(|a| normalize_arch(a))
                .collect();
            if !arches.contains(&arch) {
                arches.push(arch);
            }
            let mut all = self.update_lock(
                cache,
                &arches,
                LockMode::Build {
                    locked: opts.locked,
                },
            )?;
            resolved = all.remove(arch).unwrap_or_default();
            let now = self.name(&self.tag()?);
            if now != name {
                name = now;
                if !opts.force {
                    if let Some(b) = cached(&name)? {
                        return Ok(b);
                    }
                }
            }
        }
        eprintln!(
            "hull: building package {} for {arch} ({name})",
            self.dir.display()
        );
        let mut resolved = resolved.into_iter();
        let mut tree = Tree::new();
        for source in &self.yml.sources {
            match (&source.debian, &source.cargo, &source.files) {
                (Some(_), None, None) => {
                    let (archive, debs) = resolved.next().ok_or_else(|| PkgError::Build {
                        package: self.yml.image.clone(),
                        message: "internal: a debian source was not resolved".into(),
                    })?;
                    self.add_debian(&archive, &debs, source, &mut tree)?;
                }
                (None, Some(c), None) => self.add_cargo(c, arch, &mut tree)?,
                (None, None, Some(folder)) => {
                    let from = self.dir.join(folder);
                    let mut files = fstree::tree_from_dir(&from).map_err(|e| PkgError::Build {
                        package: self.yml.image.clone(),
                        message: format!("{}: {e}", from.display()),
                    })?;
                    normalize_ownership(&mut files);
                    tree.merge(&files, source.to.as_deref().unwrap_or("/"))
                        .map_err(|source| PkgError::Tree {
                            package: self.yml.image.clone(),
                            source,
                        })?;
                }
                _ => {
                    return Err(PkgError::Build {
                        package: self.yml.image.clone(),
                        message: "each source needs exactly one of debian, cargo or files".into(),
                    })
                }
            }
        }
        let mut labels = serde_json::Map::new();
        if let Some(cfg) = &self.yml.config {
            labels.insert(
                "org.mobyproject.config".into(),
                serde_json::Value::String(serde_json::to_string(cfg).unwrap_or_default()),
            );
        }
        let digest = cache.write_image(&name, arch, &tree, &labels, crate::source_date_epoch())?;
        Ok(Built {
            name,
            digest,
            fresh: true,
        })
    }

    /// Resolves every `debian` source for each of `arches` against the archive
    /// as it is now and rewrites `build.lock` (nothing is downloaded but the
    /// indexes). Returns the lines that changed.
    pub fn lock(&self, cache: &Cache, arches: &[&str]) -> Result<Vec<String>, PkgError> {
        for &a in arches {
            self.check_arch(a)?;
        }
        let mut changes = Vec::new();
        self.update_lock(cache, arches, LockMode::Rewrite(&mut changes))?;
        Ok(changes)
    }

    /// Resolves the `debian` sources for `arches`, compares them with
    /// `build.lock` and writes the lock when it changed (a build with
    /// `locked` fails instead). Returns, per arch, each source's archive and
    /// package closure.
    #[allow(clippy::type_complexity)]
    fn update_lock(
        &self,
        cache: &Cache,
        arches: &[&str],
        mut mode: LockMode,
    ) -> Result<BTreeMap<String, Vec<(debian::Archive, Vec<debian::DebPackage>)>>, PkgError> {
        let mut lockfile = LockFile::read(&self.dir)?;
        let before = lockfile.clone();
        let mut out = BTreeMap::new();
        for &arch in arches {
            let old = lockfile.arches.get(arch).cloned().unwrap_or_default();
            let mut new = Vec::new();
            let mut sources = Vec::new();
            for source in &self.yml.sources {
                let Some(names) = &source.debian else {
                    continue;
                };
                let (archive, debs, locked) = self.resolve_debian(cache, source, names, arch)?;
                let previous = old.get(new.len());
                let changes = lock::differences(previous, &locked);
                match &mut mode {
                    LockMode::Build { locked: true } if !changes.is_empty() => {
                        return Err(PkgError::Locked {
                            package: self.yml.image.clone(),
                            arch: arch.into(),
                            changes,
                        })
                    }
                    LockMode::Build { .. } if previous.is_some() => {
                        for c in &changes {
                            eprintln!(
                                "hull: warning: {} ({arch}): {c}; updating {LOCK_FILE}",
                                self.yml.image
                            );
                        }
                    }
                    LockMode::Build { .. } => {}
                    LockMode::Rewrite(list) => {
                        list.extend(changes.into_iter().map(|c| format!("{arch}: {c}")))
                    }
                }
                new.push(locked);
                sources.push((archive, debs));
            }
            if new.is_empty() {
                lockfile.arches.remove(arch);
            } else {
                lockfile.arches.insert(arch.to_string(), new);
            }
            out.insert(arch.to_string(), sources);
        }
        if lockfile != before {
            lockfile.write(&self.dir)?;
        }
        Ok(out)
    }

    /// The archive of one `debian` source, loaded and verified, and the
    /// closure of its packages for `arch`, also as a lock entry.
    fn resolve_debian(
        &self,
        cache: &Cache,
        d: &Source,
        names: &[String],
        arch: &str,
    ) -> Result<(debian::Archive, Vec<debian::DebPackage>, LockedSource), PkgError> {
        let pkg = self.yml.image.clone();
        let derr = |source| PkgError::Debian {
            package: pkg.clone(),
            source,
        };
        let deb_arch: contract::Arch = arch.parse().map_err(|e: contract::UnknownArch| {
            PkgError::Build {
                package: pkg.clone(),
                message: e.to_string(),
            }
        })?;
        let mirror = d.mirror.as_deref().unwrap_or(DEFAULT_MIRROR);
        let suite = d.suite.as_deref().unwrap_or(DEFAULT_SUITE);
        let mut archive = debian::Archive::new(mirror, suite, deb_arch, &cache.subdir("debian"));
        if let Some(k) = &d.keyring {
            let keyring = debian::Keyring::from_file(&self.dir.join(k))
                .map_err(|source| derr(debian::DebianError::Signature { source }))?;
            archive.set_keyring(keyring);
        }
        archive.allow_unsigned(d.allow_unsigned);
        archive.set_progress(Some(Box::new(|line: &str| {
            if line.starts_with("WARNING") {
                eprintln!("hull: {line}");
            }
        })));
        archive.load_index().map_err(derr)?;
        let mut names: Vec<String> = names
            .iter()
            .map(|n| n.replace("{debarch}", deb_arch.debian()))
            .collect();
        if d.kernel {
            // Follow the metapackage (linux-image-cloud-amd64) to the versioned
            // image package, without its Depends (kmod, initramfs-tools, ...).
            let mut real = Vec::new();
            for n in &names {
                let deps = archive.depends_of(n).map_err(derr)?;
                real.push(
                    deps.into_iter()
                        .find(|d| d.starts_with("linux-image-"))
                        .unwrap_or_else(|| n.clone()),
                );
            }
            names = real;
        }
        let with_depends = d.depends.unwrap_or(!d.kernel);
        let resolved = archive
            .resolve_excluding(&names, with_depends, &d.exclude)
            .map_err(derr)?;
        let locked = LockedSource {
            mirror: archive.mirror().to_string(),
            suite: suite.to_string(),
            packages: resolved
                .iter()
                .map(|p| LockedDeb {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    sha256: p.sha256.clone(),
                })
                .collect(),
        };
        Ok((archive, resolved, locked))
    }

    fn add_debian(
        &self,
        archive: &debian::Archive,
        resolved: &[debian::DebPackage],
        d: &Source,
        tree: &mut Tree,
    ) -> Result<(), PkgError> {
        let pkg = self.yml.image.clone();
        let derr = |source| PkgError::Debian {
            package: pkg.clone(),
            source,
        };
        let mut unpacked = Tree::new();
        for p in resolved {
            let deb = archive.fetch(p).map_err(derr)?;
            debian::unpack_deb(&deb, &mut unpacked).map_err(derr)?;
        }
        let terr = |source| PkgError::Tree {
            package: self.yml.image.clone(),
            source,
        };
        if d.kernel {
            let find = |prefix: &str| {
                unpacked
                    .iter()
                    .find(|(p, e)| {
                        p.to_string_lossy().starts_with(prefix) && matches!(e.kind, Kind::File(_))
                    })
                    .map(|(_, e)| e.clone())
            };
            let kernel = find("boot/vmlinuz-").ok_or_else(|| PkgError::Build {
                package: pkg.clone(),
                message: "no boot/vmlinuz-* in the kernel package".into(),
            })?;
            tree.insert(
                "kernel",
                Entry {
                    mode: 0o644,
                    ..kernel
                },
            )
            .map_err(terr)?;
            if let Some(config) = find("boot/config-") {
                tree.insert("config", config).map_err(terr)?;
            }
            let mut modules = Tree::new();
            modules
                .merge(&unpacked.subtree("lib/modules"), "lib/modules")
                .map_err(terr)?;
            let tar = modules
                .write_tar(Vec::new(), crate::source_date_epoch())
                .map_err(terr)?;
            tree.insert("kernel.tar", Entry::file(tar, 0o644))
                .map_err(terr)?;
        } else {
            if !d.paths.is_empty() {
                unpacked = keep_paths(&unpacked, &d.paths).map_err(terr)?;
            }
            tree.merge(&unpacked, "/").map_err(terr)?;
        }
        if let Some(to) = &d.ca_bundle {
            let bundle = ca_bundle(tree);
            if bundle.is_empty() {
                return Err(PkgError::Build {
                    package: pkg,
                    message: "ca-bundle: no usr/share/ca-certificates/**/*.crt in the package"
                        .into(),
                });
            }
            tree.insert(to, Entry::file(bundle, 0o644)).map_err(terr)?;
        }
        if let Some(bb) = &d.busybox_links {
            add_busybox_links(tree, bb).map_err(|message| PkgError::Build {
                package: pkg.clone(),
                message,
            })?;
        }
        Ok(())
    }

    fn add_cargo(&self, c: &CargoSource, arch: &str, tree: &mut Tree) -> Result<(), PkgError> {
        let pkg = self.yml.image.clone();
        let ws = self.workspace().ok_or_else(|| PkgError::Build {
            package: pkg.clone(),
            message: "a cargo source needs the package folder inside a cargo workspace".into(),
        })?;
        let triple = format!("{arch}-unknown-linux-musl");
        // A target dir of its own, so a nested build never waits on (or
        // invalidates) the build of hull that is running it.
        let target_dir = ws.join("target/pkg");
        let status = Command::new(cargo_bin())
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                &triple,
                "-p",
                &c.package,
            ])
            .env("CARGO_TARGET_DIR", &target_dir)
            .env_remove("RUSTFLAGS")
            .current_dir(&ws)
            .status()
            .map_err(|source| PkgError::Io {
                path: ws.clone(),
                source,
            })?;
        if !status.success() {
            return Err(PkgError::Build { package: pkg, message: format!("cargo build of {} for {triple} failed (is the target installed? rustup target add {triple})", c.package) });
        }
        let bin = target_dir
            .join(&triple)
            .join("release")
            .join(c.bin.as_deref().unwrap_or(&c.package));
        let data = fs::read(&bin).map_err(|source| PkgError::Io {
            path: bin.clone(),
            source,
        })?;
        tree.insert(&c.to, Entry::file(data, 0o755))
            .map_err(|source| PkgError::Tree {
                package: self.yml.image.clone(),
                source,
            })
    }
}

/// The concatenation of every certificate under usr/share/ca-certificates,
/// in path order, each ending with a newline: what update-ca-certificates
/// writes to /etc/ssl/certs/ca-certificates.crt with Debian's default
/// configuration (every certificate enabled), computed at build time so the
/// image needs no maintainer script and the bundle is the same every build.
fn ca_bundle(tree: &Tree) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, e) in tree.iter() {
        let p = path.to_string_lossy();
        if p.starts_with("usr/share/ca-certificates/") && p.ends_with(".crt") {
            if let Kind::File(data) = &e.kind {
                out.extend_from_slice(data);
                if !data.ends_with(b"\n") {
                    out.push(b'\n');
                }
            }
        }
    }
    out
}

/// The entries of `tree` at or under one of `paths` (written relative or
/// absolute), with the folders that lead to them.
fn keep_paths(tree: &Tree, paths: &[String]) -> Result<Tree, fstree::TreeError> {
    let wanted: Vec<PathBuf> = paths
        .iter()
        .map(|p| PathBuf::from(p.trim_start_matches('/')))
        .collect();
    let mut out = Tree::new();
    for (path, entry) in tree.iter() {
        if wanted.iter().any(|w| path.starts_with(w)) {
            if let Some(parent) = path.parent() {
                out.mkdir_all(parent, 0o755)?;
            }
            out.insert(path, entry.clone())?;
        }
    }
    Ok(out)
}

/// Files from a package folder belong to root in the image, whoever owns the checkout.
fn normalize_ownership(tree: &mut Tree) {
    let paths: Vec<(PathBuf, Entry)> = tree
        .iter()
        .map(|(p, e)| {
            (
                p.clone(),
                Entry {
                    uid: 0,
                    gid: 0,
                    ..e.clone()
                },
            )
        })
        .collect();
    for (p, e) in paths {
        let _ = tree.insert(p, e);
    }
}

pub fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn hash_path(h: &mut Sha256, base: &Path, path: &Path) -> Result<(), PkgError> {
    let meta = fs::symlink_metadata(path).map_err(|source| PkgError::Io {
        path: path.into(),
        source,
    })?;
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
            .map_err(|source| PkgError::Io {
                path: path.into(),
                source,
            })?
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
        let t = fs::read_link(path).map_err(|source| PkgError::Io {
            path: path.into(),
            source,
        })?;
        h.update(b"L");
        h.update(t.to_string_lossy().as_bytes());
    } else {
        use std::os::unix::fs::PermissionsExt;
        h.update(format!("F{:o}", meta.permissions().mode() & 0o111).as_bytes());
        let data = fs::read(path).map_err(|source| PkgError::Io {
            path: path.into(),
            source,
        })?;
        h.update(Sha256::digest(&data));
    }
    Ok(())
}

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

/// Creates `bin/NAME -> busybox` for every applet of a busybox binary.
///
/// The applet list is read from the binary itself (busybox keeps the names
/// as one NUL-separated, sorted string starting with "[" and "[["), because
/// running `busybox --list` is impossible for another architecture.
fn add_busybox_links(tree: &mut Tree, binary: &str) -> Result<(), String> {
    let data = match tree.get(binary).map(|e| &e.kind) {
        Some(Kind::File(d)) => d.clone(),
        _ => {
            return Err(format!(
                "busybox-links: {binary} is not a file in the package"
            ))
        }
    };
    let applets = busybox_applets(&data)
        .ok_or_else(|| format!("busybox-links: no applet table found in {binary}"))?;
    let dir = Path::new(binary)
        .parent()
        .unwrap_or(Path::new("bin"))
        .to_path_buf();
    let file = Path::new(binary)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    for a in applets {
        let link = dir.join(&a);
        if !tree.contains(&link) {
            tree.insert(&link, Entry::symlink(&file))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

pub fn busybox_applets(data: &[u8]) -> Option<Vec<String>> {
    let start = data.windows(5).position(|w| w == b"[\0[[\0")?;
    let mut names = Vec::new();
    for chunk in data[start..].split(|&b| b == 0) {
        if chunk.is_empty() || !chunk.iter().all(|b| b.is_ascii_graphic()) || chunk.len() > 32 {
            break;
        }
        names.push(String::from_utf8_lossy(chunk).into_owned());
    }
    // The table is sorted; stop where it is not (whatever string follows it).
    let sorted_len = names
        .windows(2)
        .position(|w| w[0] >= w[1])
        .map(|i| i + 1)
        .unwrap_or(names.len());
    names.truncate(sorted_len);
    names.retain(|n| n != "busybox");
    (names.len() > 10).then_some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applet_table_is_read_from_the_binary() {
        let mut bin = b"\x7fELF junk\0\0".to_vec();
        bin.extend_from_slice(
            b"[\0[[\0acpid\0ash\0cat\0echo\0ls\0mkdir\0mount\0sh\0sleep\0touch\0zcat\0",
        );
        bin.extend_from_slice(b"\x01\x02 other data");
        let names = busybox_applets(&bin).unwrap();
        assert_eq!(names.first().unwrap(), "[");
        assert!(names.contains(&"sh".to_string()));
        assert_eq!(names.last().unwrap(), "zcat");
    }

    #[test]
    fn keep_paths_takes_only_what_is_named() {
        let mut t = Tree::new();
        for p in ["usr/bin/a", "usr/bin/b", "usr/lib/x/conf", "etc/y"] {
            t.mkdir_all(Path::new(p).parent().unwrap(), 0o755).unwrap();
            t.insert(p, Entry::file(p.as_bytes().to_vec(), 0o644))
                .unwrap();
        }
        let kept = keep_paths(&t, &["/usr/bin/a".into(), "usr/lib/x".into()]).unwrap();
        assert!(kept.contains("usr/bin/a"));
        assert!(kept.contains("usr/lib/x/conf"));
        assert!(!kept.contains("usr/bin/b"));
        assert!(!kept.contains("etc/y"));
    }

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
