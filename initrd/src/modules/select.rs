//! Writing the chosen modules and their tables (`modules.dep`,
//! `modules.alias`, `modules.order`, `hull-modules.json`) as a tree for the
//! initramfs, and the default set for VMs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use fstree::{Entry, Kind, Tree};

use super::order::{resolve, Resolution};
use super::scan::{modules_dir, parse_builtin, scan_dir};
use super::{ModuleInfo, ModulesError};

/// The full transitive `depends=` of `name` in the `modules.dep` order: as
/// depmod writes it, the reverse of the load order (modprobe loads the list
/// from its end).
pub(crate) fn dep_line(
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
    use std::io::Read;

    use super::*;
    use crate::modules::test_util::strings;
    use crate::modules::{normalize_name, scan};

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
        let kernel = fstree::tree_from_dir(&dir).unwrap();
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
