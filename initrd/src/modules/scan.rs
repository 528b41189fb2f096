//! Finding the modules of a kernel tree (`lib/modules/VERSION`, as a
//! LinuxKit-style `kernel.tar` holds them) and what each one declares.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use fstree::{Entry, Kind, Tree};

use super::modinfo::{decompress, modinfo_of};
use super::{normalize_name, ModuleInfo, ModulesError};

/// Finds `lib/modules/VERSION` (or `usr/lib/modules/VERSION`) in the tree:
/// returns VERSION and the directory's path in the tree.
pub(crate) fn modules_dir(tree: &Tree) -> Result<(String, PathBuf), ModulesError> {
    for base in ["lib/modules", "usr/lib/modules"] {
        // Follows a `lib -> usr/lib` symlink.
        let Some(dir) = tree
            .resolve_parent(&Path::new(base).join("x"))
            .and_then(|p| p.parent().map(Path::to_path_buf))
        else {
            continue;
        };
        let mut versions = Vec::new();
        for (path, entry) in tree.subtree(&dir).iter() {
            if path.components().count() == 1 && matches!(entry.kind, Kind::Dir) {
                versions.push(path.to_string_lossy().into_owned());
            }
        }
        match versions.len() {
            0 => continue,
            1 => {
                let v = versions.remove(0);
                let d = dir.join(&v);
                return Ok((v, d));
            }
            _ => return Err(ModulesError::SeveralVersions(versions)),
        }
    }
    Err(ModulesError::NoModules)
}

/// Returns the installed name of a module file (`x.ko` for `x.ko.xz`) if it is one.
fn module_file_name(name: &str) -> Option<&str> {
    for ext in [".ko", ".ko.xz", ".ko.zst", ".ko.gz"] {
        if let Some(stem) = name.strip_suffix(ext) {
            if !stem.is_empty() {
                return Some(&name[..stem.len() + 3]);
            }
        }
    }
    None
}

/// Reads every module below `lib/modules/VERSION` in `kernel_modules` (the
/// tree of the kernel's modules, i.e. the contents of a LinuxKit-style
/// `kernel.tar` applied to a [`Tree`]), parsing each ELF's `.modinfo`
/// section. Returns VERSION and the modules sorted by name.
pub fn scan(kernel_modules: &Tree) -> Result<(String, Vec<ModuleInfo>), ModulesError> {
    let (version, dir) = modules_dir(kernel_modules)?;
    let (modules, _) = scan_dir(kernel_modules, &dir)?;
    Ok((version, modules.into_values().collect()))
}

/// The modules below `dir`, by name, plus each one's decompressed ELF.
pub(crate) type Scanned = (BTreeMap<String, ModuleInfo>, HashMap<String, Vec<u8>>);

pub(crate) fn scan_dir(tree: &Tree, dir: &Path) -> Result<Scanned, ModulesError> {
    let mut modules: BTreeMap<String, ModuleInfo> = BTreeMap::new();
    let mut elves = HashMap::new();
    for (rel, entry) in tree.subtree(dir).iter() {
        let Some(file_name) = rel.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(installed) = module_file_name(file_name) else {
            continue;
        };
        let data = match &entry.kind {
            Kind::File(d) => d,
            Kind::Hardlink(t) => match tree.get(t) {
                Some(Entry {
                    kind: Kind::File(d),
                    ..
                }) => d,
                _ => return Err(ModulesError::NotAFile(rel.clone())),
            },
            Kind::Dir | Kind::Symlink(_) => continue,
        };
        let elf = decompress(rel, data)?;
        let mi = modinfo_of(rel, &elf)?;
        let path = rel.with_file_name(installed);
        let name = mi
            .name
            .unwrap_or_else(|| normalize_name(installed.strip_suffix(".ko").unwrap_or(installed)));
        if let Some(first) = modules.get(&name) {
            return Err(ModulesError::Duplicate {
                name,
                first: first.source.clone(),
                second: rel.clone(),
            });
        }
        elves.insert(name.clone(), elf);
        modules.insert(
            name.clone(),
            ModuleInfo {
                name,
                path,
                source: rel.clone(),
                depends: mi.depends,
                aliases: mi.aliases,
                softdeps_pre: mi.softdeps_pre,
            },
        );
    }
    Ok((modules, elves))
}

/// The names listed in a `modules.builtin` file (`kernel/fs/ext4/ext4.ko` -> `ext4`).
pub fn parse_builtin(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| {
            let file = l.trim().rsplit('/').next()?;
            let stem = file.strip_suffix(".ko").unwrap_or(file);
            (!stem.is_empty()).then(|| normalize_name(stem))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names() {
        let b = parse_builtin("kernel/fs/ext4/ext4.ko\nkernel/net/packet/af_packet.ko\nkernel/drivers/char/hw_random/virtio-rng.ko\n");
        assert!(b.contains("ext4") && b.contains("af_packet") && b.contains("virtio_rng"));
    }
}
