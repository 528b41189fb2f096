//! `hull build`: YAML files in, bootable artifacts out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use contract::{Arch, ContainerRef, ImageJson};
use fstree::{Entry, Kind, Tree};
use pkgbuild::Package;
use report::BadInput;
use serde_json::Value;
use store::Cache;

use crate::check;
use crate::cmd::validate::{self, MapArgs};
use crate::config::{self, Config, ImageEntry, Located, Pos};
use crate::ocispec;

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Output format (repeatable): kernel+initrd, tar.
    #[arg(short = 'f', long = "format", default_value = "kernel+initrd")]
    pub formats: Vec<String>,
    /// Target architecture: x86_64 (amd64) or aarch64 (arm64).
    #[arg(long, default_value = "x86_64")]
    pub arch: String,
    /// Directory for the outputs.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Base name of the outputs (default: the first YAML file's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Rebuild `@pkg:` packages even when the cache has their tag.
    #[arg(long)]
    pub force_pkg: bool,
    #[command(flatten)]
    pub map: MapArgs,
    #[command(flatten)]
    pub pull: crate::PullArgs,
    /// The YAML files; later files add to earlier ones.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

const FORMATS: &[&str] = &["kernel+initrd", "tar"];

/// Where a container of the image sits in the guest.
fn bundle_path(section: &str, index: usize, name: &str) -> String {
    match section {
        "services" => format!("/containers/services/{name}"),
        _ => format!("/containers/{section}/{index:03}-{name}"),
    }
}

/// A resolved image: the files of its root and its OCI config.
struct Resolved {
    rootfs: Tree,
    config: Value,
}

struct Resolver<'a> {
    cache: &'a Cache,
    images: &'a resolve::Resolver,
    arch: Arch,
    force: bool,
    done: BTreeMap<String, (Tree, Value)>,
}

impl Resolver<'_> {
    /// Resolves an image reference written at `pos`.
    fn resolve(&mut self, pos: &Pos, reference: &str) -> anyhow::Result<Resolved> {
        let key = reference.to_string();
        if let Some((t, c)) = self.done.get(&key) {
            return Ok(Resolved {
                rootfs: t.clone(),
                config: c.clone(),
            });
        }
        let name = if let Some(path) = reference.strip_prefix("@pkg:") {
            let dir = package_dir(pos, path)?;
            let pkg = Package::load(&dir).map_err(|e| BadInput::new(e.to_string()))?;
            pkg.build(
                self.cache,
                self.arch,
                &crate::cmd::pkg::build_options(self.force, false),
            )
            .map(|b| b.name)
            .with_context(|| format!("building package {}", dir.display()))?
        } else {
            cached_name(self.images, self.cache, pos, reference, self.arch)?
        };
        let img = self.cache.read_image(&name, self.arch)?;
        if !img.skipped.is_empty() {
            eprintln!(
                "hull: note: {reference}: {} device nodes or FIFOs skipped (e.g. /{}); the guest's /dev is a devtmpfs",
                img.skipped.len(),
                img.skipped[0].display()
            );
        }
        let config = img.config.get("config").cloned().unwrap_or(Value::Null);
        self.done.insert(key, (img.rootfs.clone(), config.clone()));
        Ok(Resolved {
            rootfs: img.rootfs,
            config,
        })
    }
}

pub fn run(args: BuildArgs) -> anyhow::Result<()> {
    let arch = crate::parse_arch(&args.arch)?;
    for f in &args.formats {
        if !FORMATS.contains(&f.as_str()) {
            return Err(BadInput::new(format!(
                "unknown output format {f:?}; this build knows: {}",
                FORMATS.join(", ")
            ))
            .into());
        }
    }
    // Every check that needs no image first, with all its errors at once.
    let cfg = validate::prepare(&args.files, &args.map)?;
    let first = args.files[0].clone();
    if let Some(v) = cfg.volumes.first() {
        return Err(BadInput::new(
            v.error(&[], "`volumes` are checked but not built yet by this hull")
                .to_string(),
        )
        .into());
    }
    let name = args.name.clone().unwrap_or_else(|| {
        args.files[0]
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into())
    });
    let cache = Cache::open(Cache::default_root())?;
    let images = resolve::Resolver::new(args.pull.options())?;
    let mut resolver = Resolver {
        cache: &cache,
        images: &images,
        arch,
        force: args.force_pkg,
        done: BTreeMap::new(),
    };
    check_references(&cfg, &cache, &images, arch)?;

    // The kernel: its fields merged over the files, later ones winning.
    let (kernel_section, kernel_image) = cfg.kernel().ok_or_else(|| {
        BadInput::new(format!(
            "{}: no kernel section: an image needs `kernel: {{image: ...}}`",
            first.display()
        ))
    })?;
    let kernel_pos = kernel_image.pos();
    let kernel_img = resolver.resolve(&kernel_pos, &kernel_image.value)?;
    // File names in the kernel image, as LinuxKit's `binary`, `tar` and `ucode` give them.
    let in_image = |name: &str| match kernel_img.rootfs.get(name.trim_start_matches('/')) {
        Some(Entry {
            kind: Kind::File(d),
            ..
        }) => Some(d.clone()),
        _ => None,
    };
    let binary = kernel_section.binary.as_deref().unwrap_or("kernel");
    let Some(kernel) = in_image(binary) else {
        let msg =
            format!("this image has no /{binary} file; it is not a kernel image (or set `binary`)");
        return Err(BadInput::new(kernel_pos.error(msg).to_string()).into());
    };
    let ucode = match kernel_section.ucode.as_deref() {
        None | Some("") => None,
        Some(u) => match in_image(u) {
            Some(d) => Some(d),
            None => {
                let msg = format!("the kernel image has no /{u} (`ucode`)");
                return Err(BadInput::new(kernel_pos.error(msg).to_string()).into());
            }
        },
    };

    let mut root = Tree::new();
    // init images: merged into the root in order.
    for init in &cfg.init {
        let img = resolver.resolve(&init.pos(), &init.value)?;
        root.merge(&img.rootfs, "/")?;
    }
    if !root.contains("sbin/hull-init") {
        return Err(BadInput::new(format!(
            "{}: no init image provides /sbin/hull-init; add \"@pkg:PATH/pkg/init\" to `init`",
            first.display()
        ))
        .into());
    }
    root.insert("init", Entry::symlink("sbin/hull-init"))?;
    for d in ["proc", "sys", "dev", "run", "tmp", "var", "etc/hull"] {
        root.mkdir_all(d, 0o755)?;
    }
    root.insert("tmp", Entry::dir(0o1777))?;
    if !root.contains("etc/resolv.conf") {
        root.insert(
            "etc/resolv.conf",
            Entry::symlink("/run/resolvconf/resolv.conf"),
        )?;
    }

    // Kernel modules: the VM default set plus what the YAML names.
    let mut modules_tree = Tree::new();
    // LinuxKit's `tar`: the modules tarball (optional unless named; `none` for none).
    let modules_tar = match kernel_section.tar.as_deref() {
        Some("none") | Some("") => None,
        None => in_image("kernel.tar"),
        Some(t) => match in_image(t) {
            Some(d) => Some(d),
            None => {
                let msg = format!("the kernel image has no /{t} (`tar`)");
                return Err(BadInput::new(kernel_pos.error(msg).to_string()).into());
            }
        },
    };
    let extra_modules = kernel_section.modules.clone().unwrap_or_default();
    if let Some(tar) = &modules_tar {
        modules_tree
            .apply_tar(tar.as_slice())
            .context("reading kernel.tar")?;
    }
    if !modules_tree.is_empty() {
        let mut wanted: Vec<String> = initrd::modules::default_vm_modules()
            .iter()
            .map(|s| s.to_string())
            .collect();
        wanted.extend(extra_modules.iter().cloned());
        let sel = initrd::modules::select_with(&modules_tree, &wanted, true)
            .context("choosing kernel modules")?;
        for m in &extra_modules {
            if sel
                .resolution
                .skipped
                .iter()
                .any(|s| initrd::modules::normalize_name(s) == initrd::modules::normalize_name(m))
            {
                return Err(BadInput::new(
                    kernel_pos
                        .error(format!(
                            "kernel module {m:?} is neither a module nor built into this kernel"
                        ))
                        .to_string(),
                )
                .into());
            }
        }
        root.merge(&sel.tree, "/")?;
    }

    // Containers.
    let mut image_json = ImageJson {
        name: name.clone(),
        ..Default::default()
    };
    let ids = cfg.id_map();
    for (section, list) in cfg.sections() {
        for (i, entry) in list.iter().enumerate() {
            let name = entry.value.name();
            let image = entry.value.image.clone().unwrap_or_default();
            let resolved = resolver.resolve(&entry.pos_of(&["image"]), &image)?;
            let bundle = bundle_path(section, i, name);
            add_container(
                &mut root,
                &cfg.files,
                section,
                &bundle,
                &entry.value,
                resolved,
                &ids,
            )
            .map_err(|e| BadInput::new(format!("{}: {e}", entry.pos())))?;
            let r = ContainerRef {
                name: name.to_string(),
                bundle,
            };
            match section {
                "onboot" => image_json.onboot.push(r),
                "onshutdown" => image_json.onshutdown.push(r),
                _ => image_json.services.push(r),
            }
        }
    }
    root.insert(
        "etc/hull/image.json",
        Entry::file(serde_json::to_vec_pretty(&image_json)?, 0o644),
    )?;
    let image_json_bytes = serde_json::to_vec_pretty(&image_json)?;
    add_files(&mut root, &cfg.files, &ids, &image_json_bytes)?;

    // Outputs: everything is written to temp files first and renamed at the
    // end, so a failed build leaves no partial output behind.
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let mtime = crate::source_date_epoch();
    let mut outputs: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for f in &args.formats {
        match f.as_str() {
            "kernel+initrd" => {
                let cmdline = kernel_section.cmdline.clone().unwrap_or_default();
                // A microcode cpio goes first, uncompressed: the kernel reads it
                // before it unpacks the (compressed) rest.
                let initrd =
                    initrd::write_cpio(&root, mtime as u32, ucode.clone().unwrap_or_default())
                        .context("writing the initrd")?;
                outputs.push((args.dir.join(format!("{name}-kernel")), kernel.clone()));
                outputs.push((args.dir.join(format!("{name}-initrd.img")), initrd));
                outputs.push((
                    args.dir.join(format!("{name}-cmdline")),
                    cmdline.into_bytes(),
                ));
            }
            "tar" => outputs.push((
                args.dir.join(format!("{name}.tar")),
                root.write_tar(Vec::new(), mtime)?,
            )),
            _ => {}
        }
    }
    let mut staged = Vec::new();
    for (path, data) in outputs {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("writing into {}", dir.display()))?;
        std::io::Write::write_all(&mut tmp, &data)
            .with_context(|| format!("writing {}", path.display()))?;
        // tempfile creates 0600; outputs are ordinary files others may read.
        std::fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .with_context(|| format!("chmod {}", path.display()))?;
        staged.push((tmp, path, data.len()));
    }
    for (tmp, path, len) in staged {
        tmp.persist(&path)
            .with_context(|| format!("renaming into {}", path.display()))?;
        eprintln!(
            "hull: wrote {} ({:.1} MiB)",
            path.display(),
            len as f64 / 1048576.0
        );
    }
    Ok(())
}

/// Checks every image reference before any work starts (package builds can
/// take minutes), so that a typo fails at once with its position; registry
/// images missing from the cache are pulled here.
fn check_references(
    cfg: &Config,
    cache: &Cache,
    images: &resolve::Resolver,
    arch: Arch,
) -> anyhow::Result<()> {
    for (pos, reference) in cfg.image_refs() {
        if let Some(path) = reference.strip_prefix("@pkg:") {
            package_dir(&pos, path)?;
        } else {
            cached_name(images, cache, &pos, &reference, arch)?;
        }
    }
    Ok(())
}

/// The folder an `@pkg:PATH` reference written at `pos` names, if it is a package.
fn package_dir(pos: &Pos, path: &str) -> anyhow::Result<PathBuf> {
    let dir = pos.file.parent().unwrap_or(Path::new(".")).join(path);
    if !dir.join("build.yml").is_file() {
        let msg = format!(
            "no package at {} (a package is a folder with a build.yml)",
            dir.display()
        );
        return Err(BadInput::new(pos.error(msg).to_string()).into());
    }
    Ok(dir)
}

/// The cache name of a non-package reference for `arch`: cached already,
/// or pulled now (see `hull-resolve`). Errors carry the reference's position.
fn cached_name(
    images: &resolve::Resolver,
    cache: &Cache,
    pos: &Pos,
    reference: &str,
    arch: Arch,
) -> anyhow::Result<String> {
    images.ensure(cache, reference, arch).map_err(|e| {
        let line = pos.error(e.to_string()).to_string();
        if e.is_bad_input() {
            BadInput::new(line).into()
        } else {
            anyhow::anyhow!(line)
        }
    })
}

fn add_container(
    root: &mut Tree,
    files: &[Located<config::FileEntry>],
    section: &str,
    bundle: &str,
    entry: &ImageEntry,
    resolved: Resolved,
    ids: &BTreeMap<String, u32>,
) -> anyhow::Result<()> {
    let name = entry.name();
    let label = resolved.config["Labels"]["org.mobyproject.config"]
        .as_str()
        .map(String::from);
    let merged = ocispec::merge_label(name, label.as_deref(), entry)?;
    let spec = ocispec::runtime_spec(name, section, &merged, &resolved.config, ids)?;
    let runtime = ocispec::runtime_json(&merged, bundle);
    let mut rootfs = resolved.rootfs;
    // The rootfs is read-only in the guest: every mount point must exist now,
    // and a file bound in needs a file to land on (runc would make one).
    let mut dests = ocispec::mount_destinations(&spec);
    dests.extend(
        ocispec::runtime_rootfs_dirs(&merged)
            .into_iter()
            .map(|d| (d, None)),
    );
    for (dest, bind_source) in dests {
        if rootfs.contains(&dest) {
            continue;
        }
        let is_file = bind_source.is_some_and(|s| guest_path_is_file(root, files, &s));
        match Path::new(dest.trim_end_matches('/')).parent() {
            Some(parent) if is_file => {
                let parent = parent.to_string_lossy();
                if !parent.trim_matches('/').is_empty() && !rootfs.contains(parent.as_ref()) {
                    rootfs.mkdir_all(parent.as_ref(), 0o755)?;
                }
                rootfs.insert(dest.trim_matches('/'), Entry::file(Vec::new(), 0o644))?;
            }
            _ => rootfs.mkdir_all(&dest, 0o755)?,
        }
    }
    let b = bundle.trim_start_matches('/');
    root.merge(&rootfs, format!("{b}/rootfs"))?;
    root.mkdir_all(format!("{b}/rootfs"), 0o755)?;
    root.insert(
        format!("{b}/config.json"),
        Entry::file(serde_json::to_vec_pretty(&spec)?, 0o644),
    )?;
    root.insert(
        format!("{b}/runtime.json"),
        Entry::file(serde_json::to_vec_pretty(&runtime)?, 0o644),
    )?;
    Ok(())
}

/// Whether `path` in the guest's root is a file, as far as the build knows:
/// the root assembled so far (init images) and the `files` section tell; a
/// symlink is followed inside the tree, and one leading out of it (such as
/// /etc/resolv.conf into /run) is taken for a file; a path made only at run
/// time (under /run, /var, ...) for a directory.
fn guest_path_is_file(root: &Tree, files: &[Located<config::FileEntry>], path: &str) -> bool {
    let mut p = PathBuf::from(path.trim_matches('/'));
    for hop in 0..16 {
        let key = p.to_string_lossy().to_string();
        if let Some(f) = files
            .iter()
            .rev()
            .find(|f| f.value.path.as_deref().map(|x| x.trim_matches('/')) == Some(key.as_str()))
        {
            return !f.value.directory;
        }
        match root.get(&key).map(|e| &e.kind) {
            Some(Kind::File(_)) | Some(Kind::Hardlink(_)) => return true,
            Some(Kind::Dir) => return false,
            Some(Kind::Symlink(t)) => {
                p = if t.is_absolute() {
                    t.strip_prefix("/").unwrap_or(t).to_path_buf()
                } else {
                    p.parent().unwrap_or(Path::new("")).join(t)
                };
            }
            None => return hop > 0 || is_device_path(&p),
        }
    }
    false
}

/// Whether a path the build cannot see names a device node: devtmpfs is
/// filled at boot, so anything under /dev except its usual subdirectories
/// (`/dev/kmsg`, `/dev/net/tun`, `/dev/fuse`, ...) is taken for a file.
fn is_device_path(path: &Path) -> bool {
    const DEV_DIRS: &[&str] = &[
        "pts",
        "shm",
        "mqueue",
        "input",
        "disk",
        "by-id",
        "by-uuid",
        "by-label",
        "by-path",
        "by-partuuid",
        "mapper",
        "net",
        "hugepages",
        "block",
        "char",
        "bus",
        "usb",
        "cpu",
        "dri",
        "snd",
        "vfio",
        "virtio-ports",
        "fd",
        "hull-notify",
    ];
    let path = path.strip_prefix("/").unwrap_or(path);
    path.starts_with("dev")
        && path != Path::new("dev")
        && path
            .file_name()
            .is_some_and(|n| !DEV_DIRS.contains(&n.to_string_lossy().as_ref()))
}

/// The `files` section. Values were checked by `check`; what is left to
/// fail here is reading a `source`.
fn add_files(
    root: &mut Tree,
    files: &[Located<config::FileEntry>],
    ids: &BTreeMap<String, u32>,
    metadata: &[u8],
) -> anyhow::Result<()> {
    for f in files {
        let v = &f.value;
        let bad = |m: String| BadInput::new(f.error(&["path"], m).to_string());
        // LinuxKit's defaults: 0600, a directory 0700 (metadata included).
        let mode = match v.mode.as_deref().and_then(check::parse_mode) {
            Some(m) => m,
            None if v.directory => 0o700,
            None => 0o600,
        };
        let path = v.path.clone().unwrap_or_default();
        let path = path.trim_start_matches('/');
        let entry = if v.directory {
            Entry::dir(mode)
        } else if let Some(t) = &v.symlink {
            Entry::symlink(t)
        } else if let Some(c) = &v.contents {
            Entry::file(c.as_bytes().to_vec(), mode)
        } else if v.metadata.is_some() {
            // LinuxKit writes the resolved YAML here; hull's resolved
            // description is image.json (JSON is valid YAML).
            Entry::file(metadata.to_vec(), mode)
        } else if let Some(src) = &v.source {
            let p = match src.strip_prefix("~/") {
                Some(rest) => std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_default()
                    .join(rest),
                None => f.file.parent().unwrap_or(Path::new(".")).join(src),
            };
            match std::fs::read(&p) {
                Ok(d) => Entry::file(d, mode),
                Err(_) if v.optional => continue,
                Err(e) => return Err(bad(format!("source {}: {e}", p.display())).into()),
            }
        } else {
            return Err(bad(
                "a file needs one of contents, source, symlink, metadata or directory".into(),
            )
            .into());
        };
        let id = |v: &Option<config::IdValue>| {
            v.as_ref()
                .and_then(|v| check::resolve_id(v, ids).ok())
                .unwrap_or(0)
        };
        let entry = Entry {
            uid: id(&v.uid),
            gid: id(&v.gid),
            ..entry
        };
        if path.is_empty() {
            return Err(bad("a file cannot replace the root directory".into()).into());
        }
        if let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            if !root.contains(parent.to_string_lossy().as_ref()) {
                root.mkdir_all(parent.to_string_lossy().as_ref(), 0o755)?;
            }
        }
        root.insert(path, entry)?;
    }
    Ok(())
}

#[cfg(test)]
mod device_path_tests {
    use super::*;

    #[test]
    fn device_nodes_are_files_and_dev_subdirectories_are_not() {
        let root = Tree::new();
        for dev in ["/dev/kmsg", "/dev/net/tun", "/dev/fuse", "/dev/console"] {
            assert!(guest_path_is_file(&root, &[], dev), "{dev}");
        }
        for dir in [
            "/dev",
            "/dev/net",
            "/dev/pts",
            "/dev/disk/by-id",
            "/var/run",
        ] {
            assert!(!guest_path_is_file(&root, &[], dir), "{dir}");
        }
    }
}
