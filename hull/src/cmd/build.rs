//! `hull build`: YAML files in, bootable artifacts out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use fstree::{Entry, Kind, Tree};
use serde_json::Value;
use spec::{ContainerRef, ImageJson};

use crate::cache::Cache;
use crate::config::{self, ConfigError, ImageEntry};
use crate::ocispec;
use crate::pkg::{normalize_arch, Package};
use crate::UsageError;

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
    arch: &'a str,
    force: bool,
    done: BTreeMap<String, (Tree, Value)>,
}

impl Resolver<'_> {
    /// Resolves an image reference as written in `file`.
    fn resolve(
        &mut self,
        file: &Path,
        image: &marked_yaml::Spanned<String>,
    ) -> anyhow::Result<Resolved> {
        let reference = image.as_str();
        let key = reference.to_string();
        if let Some((t, c)) = self.done.get(&key) {
            return Ok(Resolved {
                rootfs: t.clone(),
                config: c.clone(),
            });
        }
        let name = if let Some(path) = reference.strip_prefix("@pkg:") {
            let dir = package_dir(file, image, path)?;
            let pkg = Package::load(&dir).map_err(|e| UsageError(e.to_string()))?;
            pkg.build(self.cache, self.arch, self.force)
                .with_context(|| format!("building package {}", dir.display()))?
        } else {
            cached_name(self.cache, file, image, self.arch)?
        };
        let img = self.cache.read_image(&name, self.arch)?;
        let config = img.config.get("config").cloned().unwrap_or(Value::Null);
        self.done.insert(key, (img.rootfs.clone(), config.clone()));
        Ok(Resolved {
            rootfs: img.rootfs,
            config,
        })
    }
}

/// Merges several files: lists append, later kernel sections win.
fn merge(files: &[config::Loaded]) -> Result<config::Config, ConfigError> {
    let mut out = config::Config::default();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for l in files {
        let c = l.config.clone();
        if c.kernel.is_some() {
            out.kernel = c.kernel;
        }
        for (section, list) in [
            ("onboot", &c.onboot),
            ("onshutdown", &c.onshutdown),
            ("services", &c.services),
        ] {
            for e in list {
                let here = format!("{} ({section})", l.path.display());
                if let Some(prev) = seen.insert(e.name.clone(), here) {
                    let image = e.image.clone().unwrap_or_else(|| {
                        marked_yaml::Spanned::new(marked_yaml::Span::new_blank(), String::new())
                    });
                    return Err(ConfigError::at(
                        &l.path,
                        &image,
                        format!("container name {:?} is also used in {prev}", e.name),
                    ));
                }
            }
        }
        out.init.extend(c.init);
        out.onboot.extend(c.onboot);
        out.onshutdown.extend(c.onshutdown);
        out.services.extend(c.services);
        out.files.extend(c.files);
    }
    Ok(out)
}

/// The file each entry came from, for error positions.
fn origin<'a>(files: &'a [config::Loaded], name: &str) -> &'a Path {
    files
        .iter()
        .find(|l| {
            l.config
                .onboot
                .iter()
                .chain(&l.config.onshutdown)
                .chain(&l.config.services)
                .any(|e| e.name == name)
        })
        .map(|l| l.path.as_path())
        .unwrap_or(Path::new("?"))
}

pub fn run(args: BuildArgs) -> anyhow::Result<()> {
    let arch = normalize_arch(&args.arch).ok_or_else(|| {
        UsageError(format!(
            "unknown arch {:?}: use x86_64 (amd64) or aarch64 (arm64)",
            args.arch
        ))
    })?;
    for f in &args.formats {
        if !FORMATS.contains(&f.as_str()) {
            return Err(UsageError(format!(
                "unknown output format {f:?}; this build knows: {}",
                FORMATS.join(", ")
            ))
            .into());
        }
    }
    let mut loaded = Vec::new();
    for f in &args.files {
        loaded.push(config::load(f).map_err(|e| UsageError(e.to_string()))?);
    }
    let cfg = merge(&loaded).map_err(|e| UsageError(e.to_string()))?;
    if cfg.trust.is_some() || loaded.iter().any(|l| l.config.trust.is_some()) {
        eprintln!("hull: note: the `trust` section is LinuxKit's old content trust; hull verifies every blob by digest and ignores it");
    }
    let name = args.name.clone().unwrap_or_else(|| {
        args.files[0]
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into())
    });
    let cache = Cache::open(Cache::default_root())?;
    let mut resolver = Resolver {
        cache: &cache,
        arch,
        force: args.force_pkg,
        done: BTreeMap::new(),
    };
    let first = &loaded[0].path;
    check_references(&loaded, &cache, arch)?;

    // The kernel.
    let kernel_section = cfg.kernel.clone().ok_or_else(|| {
        UsageError(format!(
            "{}: no kernel section: an image needs `kernel: {{image: ...}}`",
            first.display()
        ))
    })?;
    let kernel_file = loaded
        .iter()
        .rev()
        .find(|l| l.config.kernel.is_some())
        .map(|l| l.path.clone())
        .unwrap_or_else(|| first.clone());
    let kernel_img = resolver.resolve(&kernel_file, &kernel_section.image)?;
    let kernel = match kernel_img.rootfs.get("kernel").map(|e| &e.kind) {
        Some(Kind::File(d)) => d.clone(),
        _ => {
            return Err(UsageError(
                ConfigError::at(
                    &kernel_file,
                    &kernel_section.image,
                    "this image has no /kernel file; it is not a kernel image",
                )
                .to_string(),
            )
            .into())
        }
    };

    let mut root = Tree::new();
    // init images: merged into the root in order.
    for init in &cfg.init {
        let file = loaded
            .iter()
            .find(|l| l.config.init.iter().any(|i| i.as_str() == init.as_str()))
            .map(|l| l.path.clone())
            .unwrap_or_else(|| first.clone());
        if is_linuxkit_builtin(init.as_str()) {
            eprintln!(
                "hull: note: {} is built into hull-init; skipped",
                init.as_str()
            );
            continue;
        }
        let img = resolver.resolve(&file, init)?;
        root.merge(&img.rootfs, "/")?;
    }
    if !root.contains("sbin/hull-init") {
        return Err(UsageError(format!(
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
    if let Some(Kind::File(tar)) = kernel_img.rootfs.get("kernel.tar").map(|e| &e.kind) {
        modules_tree
            .apply_tar(tar.as_slice())
            .context("reading kernel.tar")?;
    }
    if !modules_tree.is_empty() {
        let mut wanted: Vec<String> = initrd::modules::default_vm_modules()
            .iter()
            .map(|s| s.to_string())
            .collect();
        wanted.extend(kernel_section.modules.iter().cloned());
        let sel = initrd::modules::select_with(&modules_tree, &wanted, true)
            .context("choosing kernel modules")?;
        for m in &kernel_section.modules {
            if sel
                .resolution
                .skipped
                .iter()
                .any(|s| initrd::modules::normalize_name(s) == initrd::modules::normalize_name(m))
            {
                return Err(UsageError(format!(
                    "{}: kernel module {m:?} is neither a module nor built into this kernel",
                    kernel_file.display()
                ))
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
    for (section, list) in [
        ("onboot", &cfg.onboot),
        ("onshutdown", &cfg.onshutdown),
        ("services", &cfg.services),
    ] {
        for (i, entry) in list.iter().enumerate() {
            let file = origin(&loaded, &entry.name);
            let image = entry.image.clone().unwrap_or_else(|| {
                marked_yaml::Spanned::new(marked_yaml::Span::new_blank(), String::new())
            });
            let resolved = resolver.resolve(file, &image)?;
            let bundle = bundle_path(section, i, &entry.name);
            add_container(&mut root, section, &bundle, entry, resolved)
                .map_err(|e| UsageError(format!("{}: {e}", file.display())))?;
            let r = ContainerRef {
                name: entry.name.clone(),
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
    add_files(&mut root, &cfg.files, &loaded)?;

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
                let initrd = initrd::write_cpio(&root, mtime as u32, Vec::new())
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
/// take minutes), so that a typo fails at once with its position.
fn check_references(files: &[config::Loaded], cache: &Cache, arch: &str) -> anyhow::Result<()> {
    for l in files {
        let c = &l.config;
        let refs = c
            .kernel
            .iter()
            .map(|k| &k.image)
            .chain(c.init.iter())
            .chain(
                c.onboot
                    .iter()
                    .chain(&c.onshutdown)
                    .chain(&c.services)
                    .filter_map(|e| e.image.as_ref()),
            );
        for image in refs {
            let reference = image.as_str();
            if let Some(path) = reference.strip_prefix("@pkg:") {
                package_dir(&l.path, image, path)?;
            } else if !is_linuxkit_builtin(reference) {
                cached_name(cache, &l.path, image, arch)?;
            }
        }
    }
    Ok(())
}

/// The folder an `@pkg:PATH` reference in `file` names, if it is a package.
fn package_dir(
    file: &Path,
    image: &marked_yaml::Spanned<String>,
    path: &str,
) -> anyhow::Result<PathBuf> {
    let dir = file.parent().unwrap_or(Path::new(".")).join(path);
    if !dir.join("build.yml").is_file() {
        let msg = format!(
            "no package at {} (a package is a folder with a build.yml)",
            dir.display()
        );
        return Err(UsageError(ConfigError::at(file, image, msg).to_string()).into());
    }
    Ok(dir)
}

/// The cache name of a non-package reference (`:latest` added when it has
/// no tag or digest), if the cache has it for `arch`.
fn cached_name(
    cache: &Cache,
    file: &Path,
    image: &marked_yaml::Spanned<String>,
    arch: &str,
) -> anyhow::Result<String> {
    let reference = image.as_str();
    let mut name = reference.to_string();
    if cache.lookup(&name, arch)?.is_none()
        && !name.rsplit('/').next().unwrap_or("").contains(':')
        && !name.contains('@')
    {
        name.push_str(":latest");
    }
    if cache.lookup(&name, arch)?.is_none() {
        let msg = format!("image {reference} for {arch} is not in the cache; registry pulls come with issue 4 — use a local package (\"@pkg:PATH\")");
        return Err(UsageError(ConfigError::at(file, image, msg).to_string()).into());
    }
    Ok(name)
}

/// LinuxKit's own init, runtime and containerd: hull-init does their job.
fn is_linuxkit_builtin(reference: &str) -> bool {
    let base = reference.split(['@', ':']).next().unwrap_or(reference);
    matches!(
        base,
        "linuxkit/init" | "linuxkit/runc" | "linuxkit/containerd"
    )
}

fn add_container(
    root: &mut Tree,
    section: &str,
    bundle: &str,
    entry: &ImageEntry,
    resolved: Resolved,
) -> anyhow::Result<()> {
    let label = resolved.config["Labels"]["org.mobyproject.config"]
        .as_str()
        .map(String::from);
    let merged = ocispec::merge_label(&entry.name, label.as_deref(), entry)?;
    let cgroup = format!("/hull/{section}/{}", entry.name);
    let spec = ocispec::runtime_spec(&entry.name, &cgroup, &merged, &resolved.config)?;
    let runtime = ocispec::runtime_json(&merged);
    let mut rootfs = resolved.rootfs;
    // The rootfs is read-only in the guest: every mount point must exist now.
    for dest in ocispec::mount_destinations(&spec) {
        if !rootfs.contains(&dest) {
            rootfs.mkdir_all(&dest, 0o755)?;
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

fn add_files(
    root: &mut Tree,
    files: &[config::FileEntry],
    loaded: &[config::Loaded],
) -> anyhow::Result<()> {
    for f in files {
        let file = loaded
            .iter()
            .find(|l| {
                l.config
                    .files
                    .iter()
                    .any(|x| x.path.as_str() == f.path.as_str())
            })
            .map(|l| l.path.clone())
            .unwrap_or_default();
        let bad = |m: &str| UsageError(ConfigError::at(&file, &f.path, m).to_string());
        let mode = match &f.mode {
            Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8)
                .map_err(|_| bad(&format!("mode {m:?} is not an octal number")))?,
            None if f.directory => 0o755,
            None => 0o600,
        };
        let path = f.path.as_str();
        let entry = if f.directory {
            Entry::dir(mode)
        } else if let Some(t) = &f.symlink {
            Entry::symlink(t)
        } else if let Some(c) = &f.contents {
            Entry::file(c.as_bytes().to_vec(), mode)
        } else if let Some(src) = &f.source {
            let p = file
                .parent()
                .unwrap_or(Path::new("."))
                .join(src.trim_start_matches("~/"));
            match std::fs::read(&p) {
                Ok(d) => Entry::file(d, mode),
                Err(_) if f.optional => continue,
                Err(e) => return Err(bad(&format!("source {}: {e}", p.display())).into()),
            }
        } else {
            return Err(bad("a file needs one of contents, source, symlink or directory").into());
        };
        let entry = Entry {
            uid: f.uid.unwrap_or(0),
            gid: f.gid.unwrap_or(0),
            ..entry
        };
        root.insert(path, entry)?;
    }
    Ok(())
}
