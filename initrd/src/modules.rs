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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use fstree::{Entry, Kind, Tree, TreeError};

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
    #[error("decompressing {path:?}: {source}")]
    Decompress {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path:?} is not an ELF kernel module: {source}")]
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
    #[error("building the module tree: {0}")]
    Tree(#[from] TreeError),
    #[error("writing hull-modules.json: {0}")]
    Json(#[from] serde_json::Error),
}

/// `-` and `_` are the same in module names; the kernel uses `_`.
pub fn normalize_name(name: &str) -> String {
    name.replace('-', "_")
}

/// The parts of a `.modinfo` section [`select`] needs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Modinfo {
    pub name: Option<String>,
    pub depends: Vec<String>,
    pub aliases: Vec<String>,
    pub softdeps_pre: Vec<String>,
}

/// Parses the contents of a `.modinfo` section: NUL-separated `key=value`
/// strings (runs of NULs from alignment padding are skipped). Keys `name`,
/// `depends` (comma-separated), `alias` (repeatable) and `softdep`
/// (`pre: a b post: c`, repeatable) are kept; the rest is ignored.
pub fn parse_modinfo(section: &[u8]) -> Modinfo {
    let mut info = Modinfo::default();
    for raw in section.split(|b| *b == 0) {
        let Ok(s) = std::str::from_utf8(raw) else {
            continue;
        };
        let Some((key, value)) = s.split_once('=') else {
            continue;
        };
        match key {
            "name" => info.name = Some(normalize_name(value.trim())),
            "depends" => info.depends.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(normalize_name),
            ),
            "alias" => info.aliases.push(value.to_string()),
            "softdep" => {
                let mut in_pre = false;
                for word in value.split_whitespace() {
                    match word {
                        "pre:" => in_pre = true,
                        "post:" => in_pre = false,
                        w if in_pre => info.softdeps_pre.push(normalize_name(w)),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    info
}

/// Finds `lib/modules/VERSION` (or `usr/lib/modules/VERSION`) in the tree:
/// returns VERSION and the directory's path in the tree.
fn modules_dir(tree: &Tree) -> Result<(String, PathBuf), ModulesError> {
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

/// A module file's contents, decompressed according to its name.
fn decompress(path: &Path, data: &[u8]) -> Result<Vec<u8>, ModulesError> {
    let name = path.to_string_lossy();
    let err = |source| ModulesError::Decompress {
        path: path.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    if name.ends_with(".xz") {
        liblzma::read::XzDecoder::new(data)
            .read_to_end(&mut out)
            .map_err(err)?;
    } else if name.ends_with(".zst") {
        out = zstd::stream::decode_all(data).map_err(err)?;
    } else if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .map_err(err)?;
    } else {
        out = data.to_vec();
    }
    Ok(out)
}

/// The `.modinfo` section of an ELF object (any class, any endianness).
fn modinfo_of(path: &Path, elf: &[u8]) -> Result<Modinfo, ModulesError> {
    use object::{Object, ObjectSection};
    let file = object::File::parse(elf).map_err(|source| ModulesError::Elf {
        path: path.to_path_buf(),
        source,
    })?;
    let section = file
        .section_by_name(".modinfo")
        .ok_or_else(|| ModulesError::NoModinfo(path.to_path_buf()))?;
    let data = section.data().map_err(|source| ModulesError::Elf {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_modinfo(data))
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
type Scanned = (BTreeMap<String, ModuleInfo>, HashMap<String, Vec<u8>>);

fn scan_dir(tree: &Tree, dir: &Path) -> Result<Scanned, ModulesError> {
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

/// The outcome of resolving a wanted set against a kernel: what to ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Module names in a valid load order (dependencies first).
    pub order: Vec<String>,
    /// For each module of `order`, what must be loaded before it: its
    /// `depends=` plus the `softdep` pre-dependencies that were selected
    /// (a softdep that would close a cycle is dropped).
    pub load_after: BTreeMap<String, Vec<String>>,
    /// Wanted names that are built into the kernel (nothing to load).
    pub builtin: Vec<String>,
    /// Wanted names that are neither modules nor built in (only when
    /// skipping them was asked for; otherwise they are an error).
    pub skipped: Vec<String>,
}

/// Closes `wanted` over `depends=` and softdep `pre:` names and orders the
/// result (dependencies first; otherwise in `wanted` order, a module's own
/// dependencies in name order). A softdep name that is no module is looked up
/// among the modules' aliases (every module with that exact alias is taken,
/// `crc32c` -> `crc32c_generic`, `crc32c_intel`) and is ignored if nothing matches.
pub fn resolve(
    modules: &BTreeMap<String, ModuleInfo>,
    builtin: &BTreeSet<String>,
    wanted: &[String],
    skip_unknown: bool,
) -> Result<Resolution, ModulesError> {
    let mut by_alias: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in modules.values() {
        for a in &m.aliases {
            by_alias
                .entry(a.as_str())
                .or_default()
                .push(m.name.as_str());
        }
    }
    let soft_targets = |m: &ModuleInfo| -> Vec<String> {
        let mut out = BTreeSet::new();
        for s in &m.softdeps_pre {
            if modules.contains_key(s) {
                out.insert(s.clone());
            } else if let Some(ms) = by_alias.get(s.as_str()) {
                out.extend(ms.iter().map(|n| n.to_string()));
            } else if let Some(ms) = by_alias.get(s.replace('_', "-").as_str()) {
                out.extend(ms.iter().map(|n| n.to_string()));
            }
        }
        out.remove(&m.name);
        out.into_iter().collect()
    };

    let mut res = Resolution {
        order: Vec::new(),
        load_after: BTreeMap::new(),
        builtin: Vec::new(),
        skipped: Vec::new(),
    };
    let mut roots = Vec::new();
    let mut seen_wanted = HashSet::new();
    for w in wanted {
        let n = normalize_name(w.trim());
        if !seen_wanted.insert(n.clone()) {
            continue;
        }
        if modules.contains_key(&n) {
            roots.push(n);
        } else if builtin.contains(&n) {
            res.builtin.push(n);
        } else if skip_unknown {
            res.skipped.push(n);
        } else {
            return Err(ModulesError::Unknown(n));
        }
    }

    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Visiting,
        Done,
    }
    let mut state: HashMap<String, State> = HashMap::new();
    // Iterative DFS: (module, its pending prerequisites, hard-dependency flags).
    struct Frame {
        name: String,
        pending: std::vec::IntoIter<(String, bool)>,
        after: Vec<String>,
    }
    for root in roots {
        if state.contains_key(&root) {
            continue;
        }
        let mut stack: Vec<Frame> = Vec::new();
        let open = |name: &str| -> Result<Frame, ModulesError> {
            let m = &modules[name];
            let mut prereqs: Vec<(String, bool)> = Vec::new();
            let mut hard: Vec<&String> = m.depends.iter().collect();
            hard.sort();
            hard.dedup();
            for d in hard {
                if !modules.contains_key(d) {
                    if builtin.contains(d) {
                        continue;
                    }
                    return Err(ModulesError::MissingDependency {
                        module: name.to_string(),
                        dep: d.clone(),
                    });
                }
                prereqs.push((d.clone(), true));
            }
            for s in soft_targets(m) {
                if !prereqs.iter().any(|(p, _)| *p == s) {
                    prereqs.push((s, false));
                }
            }
            Ok(Frame {
                name: name.to_string(),
                pending: prereqs.into_iter(),
                after: Vec::new(),
            })
        };
        state.insert(root.clone(), State::Visiting);
        stack.push(open(&root)?);
        while let Some(top) = stack.last_mut() {
            match top.pending.next() {
                Some((dep, is_hard)) => match state.get(&dep) {
                    Some(State::Done) => top.after.push(dep),
                    Some(State::Visiting) => {
                        if is_hard {
                            let mut cycle: Vec<String> =
                                stack.iter().map(|f| f.name.clone()).collect();
                            if let Some(i) = cycle.iter().position(|n| *n == dep) {
                                cycle.drain(..i);
                            }
                            cycle.push(dep);
                            return Err(ModulesError::Cycle(cycle));
                        }
                        // A softdep closing a cycle: dropped.
                    }
                    None => {
                        top.after.push(dep.clone());
                        state.insert(dep.clone(), State::Visiting);
                        let f = open(&dep)?;
                        stack.push(f);
                    }
                },
                None => {
                    if let Some(done) = stack.pop() {
                        state.insert(done.name.clone(), State::Done);
                        res.order.push(done.name.clone());
                        res.load_after.insert(done.name, done.after);
                    }
                }
            }
        }
    }
    Ok(res)
}

/// The full transitive `depends=` of `name` in the `modules.dep` order: as
/// depmod writes it, the reverse of the load order (modprobe loads the list
/// from its end).
fn dep_line(
    name: &str,
    modules: &BTreeMap<String, ModuleInfo>,
    position: &HashMap<&str, usize>,
) -> Vec<String> {
    let mut all = BTreeSet::new();
    let mut todo: Vec<&str> = vec![name];
    while let Some(n) = todo.pop() {
        if let Some(m) = modules.get(n) {
            for d in &m.depends {
                if modules.contains_key(d) && all.insert(d.as_str()) {
                    todo.push(d);
                }
            }
        }
    }
    let mut deps: Vec<&str> = all.into_iter().collect();
    deps.sort_by_key(|d| std::cmp::Reverse(position.get(d).copied().unwrap_or(0)));
    deps.into_iter().map(str::to_string).collect()
}

#[derive(serde::Serialize)]
struct JsonModule<'a> {
    name: &'a str,
    path: String,
    depends: &'a [String],
}

/// The name of the load-order file the guest's init reads, in `lib/modules/VERSION`.
pub const HULL_MODULES_JSON: &str = "hull-modules.json";

/// What [`select_with`] produced.
#[derive(Debug, Clone)]
pub struct Selection {
    /// `lib/modules/VERSION/...`, rooted at `/`.
    pub tree: Tree,
    pub version: String,
    pub resolution: Resolution,
}

/// The modules to ship: `wanted` names (`-` and `_` equivalent) closed over
/// `depends=` (and softdep `pre:`). An unknown wanted name is an error unless
/// it is built into the kernel (`modules.builtin`).
///
/// Returns a tree rooted at `/` with `lib/modules/VERSION/<path>.ko`
/// (decompressed), `modules.dep`, `modules.alias`, `modules.order`,
/// `modules.builtin` (copied if present) and [`HULL_MODULES_JSON`].
pub fn select(kernel_modules: &Tree, wanted: &[String]) -> Result<Tree, ModulesError> {
    Ok(select_with(kernel_modules, wanted, false)?.tree)
}

/// [`select`], also returning the resolution; with `skip_unknown`, wanted
/// names that are neither modules nor built in are skipped (and listed in
/// `resolution.skipped`) instead of being an error.
pub fn select_with(
    kernel_modules: &Tree,
    wanted: &[String],
    skip_unknown: bool,
) -> Result<Selection, ModulesError> {
    let (version, dir) = modules_dir(kernel_modules)?;
    let (modules, mut elves) = scan_dir(kernel_modules, &dir)?;
    let builtin_file = kernel_modules
        .get(dir.join("modules.builtin"))
        .and_then(|e| match &e.kind {
            Kind::File(d) => Some(d.clone()),
            _ => None,
        });
    let builtin = builtin_file
        .as_deref()
        .map(|d| parse_builtin(&String::from_utf8_lossy(d)))
        .unwrap_or_default();
    let resolution = resolve(&modules, &builtin, wanted, skip_unknown)?;

    let base = Path::new("lib/modules").join(&version);
    let mut tree = Tree::new();
    tree.mkdir_all(&base, 0o755)?;
    let position: HashMap<&str, usize> = resolution
        .order
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut dep = String::new();
    let mut alias = String::new();
    let mut order = String::new();
    let mut json = Vec::new();
    for name in &resolution.order {
        let m = &modules[name];
        let path = m.path.to_string_lossy();
        let elf = elves.remove(name).unwrap_or_default();
        tree.insert(base.join(&m.path), Entry::file(elf, 0o644))?;
        let deps: Vec<String> = dep_line(name, &modules, &position)
            .iter()
            .map(|d| modules[d].path.to_string_lossy().into_owned())
            .collect();
        dep.push_str(&format!("{path}:"));
        for d in &deps {
            dep.push(' ');
            dep.push_str(d);
        }
        dep.push('\n');
        for a in &m.aliases {
            alias.push_str(&format!("alias {a} {name}\n"));
        }
        order.push_str(&format!("{path}\n"));
        json.push(JsonModule {
            name,
            path: path.into_owned(),
            depends: resolution
                .load_after
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        });
    }
    let text = |s: String| Entry::file(s.into_bytes(), 0o644);
    tree.insert(base.join("modules.dep"), text(dep))?;
    tree.insert(base.join("modules.alias"), text(alias))?;
    tree.insert(base.join("modules.order"), text(order))?;
    if let Some(b) = builtin_file {
        tree.insert(base.join("modules.builtin"), Entry::file(b, 0o644))?;
    }
    let mut j = serde_json::to_vec_pretty(&json)?;
    j.push(b'\n');
    tree.insert(base.join(HULL_MODULES_JSON), Entry::file(j, 0o644))?;
    Ok(Selection {
        tree,
        version,
        resolution,
    })
}

/// The default set for VMs (module names). Some are built into some kernels
/// (`ext4`, `af_packet` on Debian's cloud kernels) and some don't exist on
/// others (`9p` isn't in the cloud kernels, `button` is x86 ACPI): use
/// [`select_with`] with `skip_unknown` for this list.
pub fn default_vm_modules() -> &'static [&'static str] {
    &[
        // Buses first: on Debian's kernels every virtio driver is a module.
        "virtio_pci",
        "virtio_mmio",
        // Disks and the root.
        "virtio_blk",
        "virtio_scsi",
        "sd_mod",
        "nvme",
        "loop",
        "squashfs",
        "overlay",
        "ext4",
        "dm_mod",
        "dm_verity",
        // Devices.
        "virtio_net",
        "virtio_console",
        "virtio_rng",
        "virtio_balloon",
        "virtio_input",
        "evdev",
        "button",
        "vmw_vsock_virtio_transport",
        "af_packet",
        // Host shares.
        "9p",
        "9pnet_virtio",
        "virtiofs",
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, depends: &[&str], soft: &[&str], aliases: &[&str]) -> ModuleInfo {
        ModuleInfo {
            name: name.into(),
            path: format!("kernel/x/{}.ko", name.replace('_', "-")).into(),
            source: format!("kernel/x/{}.ko", name.replace('_', "-")).into(),
            depends: depends.iter().map(|s| s.to_string()).collect(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            softdeps_pre: soft.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn set(ms: Vec<ModuleInfo>) -> BTreeMap<String, ModuleInfo> {
        ms.into_iter().map(|m| (m.name.clone(), m)).collect()
    }

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_modinfo() {
        let raw = b"\0\0version=1\0license=GPL\0alias=pci:v00001AF4d*sv*sd*bc*sc*i*\0\
                    depends=virtio,virtio_ring,dm-mod\0softdep=pre: crc32c  foo-bar post: baz\0\
                    alias=virtio:d00000002v*\0\0\0name=virtio_blk\0vermagic=6.1.0 SMP mod_unload \0";
        let mi = parse_modinfo(raw);
        assert_eq!(mi.name.as_deref(), Some("virtio_blk"));
        assert_eq!(mi.depends, ["virtio", "virtio_ring", "dm_mod"]);
        assert_eq!(
            mi.aliases,
            ["pci:v00001AF4d*sv*sd*bc*sc*i*", "virtio:d00000002v*"]
        );
        assert_eq!(mi.softdeps_pre, ["crc32c", "foo_bar"]);
        let empty = parse_modinfo(b"depends=\0name=x\0");
        assert!(empty.depends.is_empty());
    }

    #[test]
    fn builtin_names() {
        let b = parse_builtin("kernel/fs/ext4/ext4.ko\nkernel/net/packet/af_packet.ko\nkernel/drivers/char/hw_random/virtio-rng.ko\n");
        assert!(b.contains("ext4") && b.contains("af_packet") && b.contains("virtio_rng"));
    }

    #[test]
    fn closure_and_load_order() {
        let mods = set(vec![
            m("virtio", &[], &[], &[]),
            m("virtio_ring", &[], &[], &[]),
            m("virtio_pci_modern_dev", &[], &[], &[]),
            m(
                "virtio_pci",
                &["virtio_pci_modern_dev", "virtio_ring", "virtio"],
                &[],
                &["pci:v00001AF4d*"],
            ),
            m(
                "virtio_blk",
                &["virtio", "virtio_ring"],
                &[],
                &["virtio:d00000002v*"],
            ),
            m("dm_mod", &[], &[], &[]),
            m("dm_bufio", &[], &[], &[]),
            m("dm_verity", &["dm_bufio", "dm_mod"], &[], &[]),
            m("libcrc32c", &[], &["crc32c"], &[]),
            m("crc32c_generic", &[], &[], &["crc32c", "crypto-crc32c"]),
            m("unused", &[], &[], &[]),
        ]);
        let builtin = BTreeSet::from(["ext4".to_string()]);
        let r = resolve(
            &mods,
            &builtin,
            &strings(&[
                "virtio-pci",
                "virtio_blk",
                "ext4",
                "dm-verity",
                "libcrc32c",
                "virtio_pci",
            ]),
            false,
        )
        .unwrap();
        assert_eq!(
            r.order,
            [
                "virtio",
                "virtio_pci_modern_dev",
                "virtio_ring",
                "virtio_pci",
                "virtio_blk",
                "dm_bufio",
                "dm_mod",
                "dm_verity",
                "crc32c_generic",
                "libcrc32c",
            ]
        );
        assert_eq!(r.builtin, ["ext4"]);
        assert_eq!(r.load_after["libcrc32c"], ["crc32c_generic"]);
        assert_eq!(r.load_after["virtio_blk"], ["virtio", "virtio_ring"]);
        // Every module comes after what it needs.
        let pos = |n: &str| r.order.iter().position(|o| o == n).unwrap();
        for (n, after) in &r.load_after {
            for a in after {
                assert!(pos(a) < pos(n), "{a} before {n}");
            }
        }
        let position: HashMap<&str, usize> = r
            .order
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        // modules.dep order: reverse load order, transitive.
        assert_eq!(
            dep_line("virtio_pci", &mods, &position),
            ["virtio_ring", "virtio_pci_modern_dev", "virtio"]
        );
    }

    #[test]
    fn unknown_missing_and_cycles() {
        let mods = set(vec![
            m("a", &["b"], &[], &[]),
            m("b", &["a"], &[], &[]),
            m("c", &["gone"], &[], &[]),
            m("d", &[], &["e"], &[]),
            m("e", &[], &["d"], &[]),
        ]);
        let none = BTreeSet::new();
        assert!(matches!(
            resolve(&mods, &none, &strings(&["zzz"]), false),
            Err(ModulesError::Unknown(n)) if n == "zzz"
        ));
        let r = resolve(&mods, &none, &strings(&["zzz", "d"]), true).unwrap();
        assert_eq!(r.skipped, ["zzz"]);
        // A softdep cycle is broken, not an error.
        assert_eq!(r.order, ["e", "d"]);
        assert!(matches!(
            resolve(&mods, &none, &strings(&["a"]), false),
            Err(ModulesError::Cycle(c)) if c == ["a", "b", "a"]
        ));
        assert!(matches!(
            resolve(&mods, &none, &strings(&["c"]), false),
            Err(ModulesError::MissingDependency { .. })
        ));
    }

    /// Builds the output tree from a fake kernel tree whose "modules" are
    /// minimal ELF files made by hand (one relocatable with a .modinfo section).
    #[test]
    fn select_writes_tables() {
        let mut k = Tree::new();
        let v = "lib/modules/6.1.0-test";
        k.insert(
            format!("{v}/kernel/a/virtio.ko"),
            Entry::file(fake_elf(b"name=virtio\0depends=\0"), 0o644),
        )
        .unwrap();
        k.insert(
            format!("{v}/kernel/a/virtio_blk.ko.xz"),
            Entry::file(
                xz(&fake_elf(
                    b"alias=virtio:d00000002v*\0depends=virtio\0name=virtio_blk\0",
                )),
                0o644,
            ),
        )
        .unwrap();
        k.insert(
            format!("{v}/kernel/b/virtio-rng.ko.zst"),
            Entry::file(
                zstd::stream::encode_all(&fake_elf(b"depends=virtio\0name=virtio_rng\0")[..], 3)
                    .unwrap(),
                0o644,
            ),
        )
        .unwrap();
        k.insert(
            format!("{v}/modules.builtin"),
            Entry::file(b"kernel/fs/ext4/ext4.ko\n".to_vec(), 0o644),
        )
        .unwrap();

        let (version, scanned) = scan(&k).unwrap();
        assert_eq!(version, "6.1.0-test");
        assert_eq!(scanned.len(), 3);
        assert_eq!(scanned[2].name, "virtio_rng");
        assert_eq!(scanned[2].path, Path::new("kernel/b/virtio-rng.ko"));

        let out = select(&k, &strings(&["virtio-blk", "ext4", "virtio-rng"])).unwrap();
        let file = |p: &str| match &out.get(format!("{v}/{p}")).unwrap().kind {
            Kind::File(d) => String::from_utf8_lossy(d).into_owned(),
            _ => panic!("{p} not a file"),
        };
        assert!(file("kernel/a/virtio_blk.ko").starts_with("\x7fELF"));
        assert!(file("kernel/b/virtio-rng.ko").starts_with("\x7fELF"));
        assert_eq!(
            file("modules.dep"),
            "kernel/a/virtio.ko:\nkernel/a/virtio_blk.ko: kernel/a/virtio.ko\nkernel/b/virtio-rng.ko: kernel/a/virtio.ko\n"
        );
        assert_eq!(
            file("modules.alias"),
            "alias virtio:d00000002v* virtio_blk\n"
        );
        assert_eq!(
            file("modules.order"),
            "kernel/a/virtio.ko\nkernel/a/virtio_blk.ko\nkernel/b/virtio-rng.ko\n"
        );
        assert_eq!(file("modules.builtin"), "kernel/fs/ext4/ext4.ko\n");
        let json: serde_json::Value = serde_json::from_str(&file(HULL_MODULES_JSON)).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"name": "virtio", "path": "kernel/a/virtio.ko", "depends": []},
                {"name": "virtio_blk", "path": "kernel/a/virtio_blk.ko", "depends": ["virtio"]},
                {"name": "virtio_rng", "path": "kernel/b/virtio-rng.ko", "depends": ["virtio"]},
            ])
        );
        assert!(matches!(
            select(&k, &strings(&["nope"])),
            Err(ModulesError::Unknown(_))
        ));
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        liblzma::read::XzEncoder::new(data, 6)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// A minimal little-endian ELF64 relocatable with sections
    /// [null, .modinfo, .shstrtab]: enough for `object` and for `scan`.
    fn fake_elf(modinfo: &[u8]) -> Vec<u8> {
        let shstrtab = b"\0.modinfo\0.shstrtab\0";
        let modinfo_off = 64u64;
        let shstr_off = modinfo_off + modinfo.len() as u64;
        let sh_off = (shstr_off + shstrtab.len() as u64).next_multiple_of(8);
        let mut f = Vec::new();
        f.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        f.extend_from_slice(&1u16.to_le_bytes()); // ET_REL
        f.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&0u64.to_le_bytes()); // entry
        f.extend_from_slice(&0u64.to_le_bytes()); // phoff
        f.extend_from_slice(&sh_off.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes()); // flags
        f.extend_from_slice(&64u16.to_le_bytes()); // ehsize
        f.extend_from_slice(&0u16.to_le_bytes()); // phentsize
        f.extend_from_slice(&0u16.to_le_bytes()); // phnum
        f.extend_from_slice(&64u16.to_le_bytes()); // shentsize
        f.extend_from_slice(&3u16.to_le_bytes()); // shnum
        f.extend_from_slice(&2u16.to_le_bytes()); // shstrndx
        assert_eq!(f.len(), 64);
        f.extend_from_slice(modinfo);
        f.extend_from_slice(shstrtab);
        f.resize(sh_off as usize, 0);
        let sh = |f: &mut Vec<u8>, name: u32, ty: u32, off: u64, size: u64| {
            f.extend_from_slice(&name.to_le_bytes());
            f.extend_from_slice(&ty.to_le_bytes());
            f.extend_from_slice(&0u64.to_le_bytes()); // flags
            f.extend_from_slice(&0u64.to_le_bytes()); // addr
            f.extend_from_slice(&off.to_le_bytes());
            f.extend_from_slice(&size.to_le_bytes());
            f.extend_from_slice(&0u32.to_le_bytes()); // link
            f.extend_from_slice(&0u32.to_le_bytes()); // info
            f.extend_from_slice(&1u64.to_le_bytes()); // addralign
            f.extend_from_slice(&0u64.to_le_bytes()); // entsize
        };
        sh(&mut f, 0, 0, 0, 0);
        sh(&mut f, 1, 1, modinfo_off, modinfo.len() as u64); // PROGBITS
        sh(&mut f, 10, 3, shstr_off, shstrtab.len() as u64); // STRTAB
        f
    }

    /// Measures the default set against a real Debian kernel unpacked in
    /// `HULL_TEST_KERNEL_DIR` (`dpkg-deb -x linux-image-*.deb DIR`).
    #[test]
    #[ignore = "needs a real kernel package unpacked in HULL_TEST_KERNEL_DIR"]
    fn real_kernel_default_set() {
        let Some(dir) = std::env::var_os("HULL_TEST_KERNEL_DIR") else {
            panic!("set HULL_TEST_KERNEL_DIR");
        };
        let t0 = std::time::Instant::now();
        let kernel = crate::tree_from_dir(&dir).unwrap();
        let (version, all) = scan(&kernel).unwrap();
        let all_size: usize = kernel
            .iter()
            .filter(|(p, _)| p.to_string_lossy().contains(".ko"))
            .map(|(_, e)| match &e.kind {
                Kind::File(d) => d.len(),
                _ => 0,
            })
            .sum();
        eprintln!("kernel {version}: {} modules, {all_size} bytes", all.len());
        let wanted: Vec<String> = default_vm_modules().iter().map(|s| s.to_string()).collect();
        let sel = select_with(&kernel, &wanted, true).unwrap();
        let r = &sel.resolution;
        let wanted_norm: Vec<String> = wanted.iter().map(|w| normalize_name(w)).collect();
        let as_modules: Vec<&String> = wanted_norm.iter().filter(|w| r.order.contains(w)).collect();
        let size: usize = sel
            .tree
            .iter()
            .filter(|(p, _)| p.extension().is_some_and(|e| e == "ko"))
            .map(|(_, e)| match &e.kind {
                Kind::File(d) => d.len(),
                _ => 0,
            })
            .sum();
        eprintln!(
            "selected {} modules, {size} bytes: {:?}",
            r.order.len(),
            r.order
        );
        eprintln!("wanted, resolved as modules: {as_modules:?}");
        eprintln!("wanted, built in: {:?}", r.builtin);
        eprintln!("wanted, skipped: {:?}", r.skipped);
        let cpio = crate::write_cpio(&sel.tree, 0, Vec::new()).unwrap();
        eprintln!(
            "as gzip'd cpio: {} bytes; took {:?}",
            cpio.len(),
            t0.elapsed()
        );
        let base = format!("lib/modules/{version}");
        for f in [
            "modules.dep",
            "modules.alias",
            "modules.order",
            HULL_MODULES_JSON,
        ] {
            assert!(sel.tree.contains(format!("{base}/{f}")), "{f}");
        }
        assert!(
            r.order.iter().any(|n| n == "virtio_pci")
                || r.builtin.iter().any(|n| n == "virtio_pci")
        );
        if let Some(out) = std::env::var_os("HULL_TEST_MODULES_OUT") {
            std::fs::write(out, cpio).unwrap();
        }
    }
}
