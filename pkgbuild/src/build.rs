//! Running a build: the tag, the store lookup, `build.lock` brought up to
//! date with what the archive serves, then each source into one tree, stored
//! as a one-layer image.

use std::collections::BTreeMap;

use contract::Arch;
use fstree::Tree;
use store::Cache;

use crate::lock::{self, LockFile, LOCK_FILE};
use crate::sources::{self, debian::Resolved};
use crate::{BuildOptions, Built, Package, PkgError};

/// What [`Package::update_lock`] does with differences: a build warns (or
/// fails when `locked`), `hull pkg lock` collects them.
enum LockMode<'a> {
    Build { locked: bool },
    Rewrite(&'a mut Vec<String>),
}

impl Package {
    /// Builds the package for `arch` unless the store has this tag already
    /// (or `force`). Before a build, the Debian sources of every arch of the
    /// package are resolved and compared with `build.lock`: where the archive
    /// serves other versions the lock is updated with a warning (an error with
    /// `locked`), and the image is tagged after the updated lock (which may
    /// then turn out to be in the store already).
    pub fn build(&self, cache: &Cache, arch: Arch, opts: &BuildOptions) -> Result<Built, PkgError> {
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
            let mut arches = self.yml.arches.clone();
            if !arches.contains(&arch) {
                arches.push(arch);
            }
            let mut all = self.update_lock(
                cache,
                &arches,
                LockMode::Build {
                    locked: opts.locked,
                },
                opts,
            )?;
            resolved = all.remove(&arch).unwrap_or_default();
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
        opts.say(&format!(
            "building package {} for {arch} ({name})",
            self.dir.display()
        ));
        let mut resolved = resolved.into_iter();
        let mut tree = Tree::new();
        for source in &self.yml.sources {
            match (&source.debian, &source.cargo, &source.files) {
                (Some(_), None, None) => {
                    let r = resolved.next().ok_or_else(|| PkgError::Build {
                        package: self.yml.image.clone(),
                        message: "internal: a debian source was not resolved".into(),
                    })?;
                    sources::debian::add(self, &r, source, opts.mtime, &mut tree)?;
                }
                (None, Some(c), None) => sources::cargo::add(self, c, arch, &mut tree)?,
                (None, None, Some(folder)) => {
                    sources::files::add(self, folder, source.to.as_deref(), &mut tree)?
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
        let digest = cache.write_image(&name, arch, &tree, &labels, opts.mtime)?;
        Ok(Built {
            name,
            digest,
            fresh: true,
        })
    }

    /// Resolves every `debian` source for each of `arches` against the archive
    /// as it is now and rewrites `build.lock` (nothing is downloaded but the
    /// indexes). Returns the lines that changed.
    pub fn lock(
        &self,
        cache: &Cache,
        arches: &[Arch],
        opts: &BuildOptions,
    ) -> Result<Vec<String>, PkgError> {
        for &a in arches {
            self.check_arch(a)?;
        }
        let mut changes = Vec::new();
        self.update_lock(cache, arches, LockMode::Rewrite(&mut changes), opts)?;
        Ok(changes)
    }

    /// Resolves the `debian` sources for `arches`, compares them with
    /// `build.lock` and writes the lock when it changed (a build with
    /// `locked` fails instead). Returns, per arch, each source's archive and
    /// package closure.
    fn update_lock(
        &self,
        cache: &Cache,
        arches: &[Arch],
        mut mode: LockMode,
        opts: &BuildOptions,
    ) -> Result<BTreeMap<Arch, Vec<Resolved>>, PkgError> {
        let mut lockfile = LockFile::read(&self.dir)?;
        let before = lockfile.clone();
        let mut out = BTreeMap::new();
        for &arch in arches {
            let old = lockfile
                .arches
                .get(arch.as_str())
                .cloned()
                .unwrap_or_default();
            let mut new = Vec::new();
            let mut resolved = Vec::new();
            for source in &self.yml.sources {
                let Some(names) = &source.debian else {
                    continue;
                };
                let r = sources::debian::resolve(self, cache, source, names, arch, opts)?;
                let previous = old.get(new.len());
                let changes = lock::differences(previous, &r.locked);
                match &mut mode {
                    LockMode::Build { locked: true } if !changes.is_empty() => {
                        return Err(PkgError::Locked {
                            package: self.yml.image.clone(),
                            arch,
                            changes,
                        })
                    }
                    LockMode::Build { .. } if previous.is_some() => {
                        for c in &changes {
                            opts.say(&format!(
                                "warning: {} ({arch}): {c}; updating {LOCK_FILE}",
                                self.yml.image
                            ));
                        }
                    }
                    LockMode::Build { .. } => {}
                    LockMode::Rewrite(list) => {
                        list.extend(changes.into_iter().map(|c| format!("{arch}: {c}")))
                    }
                }
                new.push(r.locked.clone());
                resolved.push(r);
            }
            if new.is_empty() {
                lockfile.arches.remove(arch.as_str());
            } else {
                lockfile.arches.insert(arch.as_str().to_string(), new);
            }
            out.insert(arch, resolved);
        }
        if lockfile != before {
            lockfile.write(&self.dir)?;
        }
        Ok(out)
    }
}
