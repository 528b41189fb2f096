//! The kernel module subset that goes into the initramfs.
//!
//! Debian's kernel packages ship ~1,100 modules and no `modules.dep` or
//! `modules.alias` (depmod runs at install time). [`scan`] reads each
//! module's `.modinfo` ELF section (x86_64 and aarch64 alike: it is parsed
//! generically), [`select`] closes a wanted set over `depends=` (and
//! `softdep=` pre-dependencies), and writes the tables for that subset plus
//! `hull-modules.json`, the load order the guest's init follows.
//!
//! Compressed modules (`.ko.xz`, `.ko.zst`, `.ko.gz`) are decompressed here,
//! at build time: the guest's init loads plain ELF with `finit_module`.
//!
//! One job per file: [`modinfo`] reads one module's `.modinfo`, [`scan`]
//! finds every module of a kernel tree, [`order`] closes a wanted set over
//! its dependencies and orders it, [`select`] writes the subset and its
//! tables.

pub mod modinfo;
pub mod order;
pub mod scan;
pub mod select;

use std::path::PathBuf;

use fstree::TreeError;

pub use modinfo::{parse_modinfo, Modinfo};
pub use order::{resolve, Resolution};
pub use scan::{parse_builtin, scan};
pub use select::{default_vm_modules, select, select_with, Selection, HULL_MODULES_JSON};

/// What one module's `.modinfo` says, plus where the module is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    /// The module name, `-` normalised to `_` (as the kernel names it).
    pub name: String,
    /// Where the module is installed, relative to `lib/modules/VERSION`: always
    /// ends in `.ko` (a compressed module is shipped decompressed).
    pub path: PathBuf,
    /// Where the module is in the kernel's tree, relative to `lib/modules/VERSION`
    /// (may end in `.ko.xz`, `.ko.zst` or `.ko.gz`).
    pub source: PathBuf,
    /// `depends=`: modules that must be loaded first (normalised names).
    pub depends: Vec<String>,
    /// `alias=` patterns (`pci:v00001AF4d00001001sv*sd*bc*sc*i*`, `fs-ext4`, ...).
    pub aliases: Vec<String>,
    /// The `pre:` names of `softdep=` (module names or aliases; normalised).
    pub softdeps_pre: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModulesError {
    #[error("no lib/modules/VERSION directory in the kernel's tree")]
    NoModules,
    #[error("several kernel versions in lib/modules ({0:?}): expected one")]
    SeveralVersions(Vec<String>),
    #[error("decompressing {path:?}")]
    Decompress {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path:?} is not an ELF kernel module")]
    Elf {
        path: PathBuf,
        #[source]
        source: object::Error,
    },
    #[error("{0:?} has no .modinfo section")]
    NoModinfo(PathBuf),
    #[error("{0:?} is not a regular file (hard links and symlinks to modules aren't expected)")]
    NotAFile(PathBuf),
    #[error("two modules are named {name}: {first:?} and {second:?}")]
    Duplicate {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("module {0} is neither a module of this kernel nor built into it")]
    Unknown(String),
    #[error("module {module} depends on {dep}, which is not a module of this kernel")]
    MissingDependency { module: String, dep: String },
    #[error("modules depend on each other in a cycle: {0:?}")]
    Cycle(Vec<String>),
    #[error("building the module tree")]
    Tree(#[from] TreeError),
    #[error("writing hull-modules.json")]
    Json(#[from] serde_json::Error),
}

/// `-` and `_` are the same in module names; the kernel uses `_`.
pub fn normalize_name(name: &str) -> String {
    name.replace('-', "_")
}

/// Module sets written by hand for the unit tests of this module's files.
#[cfg(test)]
pub(crate) mod test_util {
    use std::collections::BTreeMap;

    use super::ModuleInfo;

    pub(crate) fn m(name: &str, depends: &[&str], soft: &[&str], aliases: &[&str]) -> ModuleInfo {
        ModuleInfo {
            name: name.into(),
            path: format!("kernel/x/{}.ko", name.replace('_', "-")).into(),
            source: format!("kernel/x/{}.ko", name.replace('_', "-")).into(),
            depends: depends.iter().map(|s| s.to_string()).collect(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            softdeps_pre: soft.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub(crate) fn set(ms: Vec<ModuleInfo>) -> BTreeMap<String, ModuleInfo> {
        ms.into_iter().map(|m| (m.name.clone(), m)).collect()
    }

    pub(crate) fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }
}
