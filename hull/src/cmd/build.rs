//! `hull build`: YAML files in, bootable artifacts out. The description is
//! read and checked by `hull-config`, the images resolved here (cached,
//! pulled or built from `@pkg:` packages), the root assembled by
//! `hull-bundle`, and the outputs written all at once at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bundle::{
    kernel, Container, FileError, Image, ImageConfig, KernelError, KernelFiles, Root, RootError,
};
use config::{Config, Pos};
use serde_json::Value;

use super::MapArgs;
use contract::Arch;
use pkgbuild::Package;
use report::BadInput;
use store::Cache;

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

struct Resolver<'a> {
    cache: &'a Cache,
    images: &'a resolve::Resolver,
    arch: Arch,
    force: bool,
    done: BTreeMap<String, Image>,
}

impl Resolver<'_> {
    /// Resolves an image reference written at `pos`.
    fn resolve(&mut self, pos: &Pos, reference: &str) -> anyhow::Result<Image> {
        if let Some(image) = self.done.get(reference) {
            return Ok(image.clone());
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
        let image = Image {
            config: ImageConfig::from_oci(img.config.get("config").unwrap_or(&Value::Null)),
            rootfs: img.rootfs,
        };
        self.done.insert(reference.to_string(), image.clone());
        Ok(image)
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
    let cfg = super::load_and_check(&args.files, &args.map)?;
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
    let kernel_err = |e: KernelError| -> anyhow::Error {
        if e.is_bad_input() {
            BadInput::new(kernel_pos.error(e.to_string()).to_string()).into()
        } else {
            e.into()
        }
    };
    let kernel_img = resolver.resolve(&kernel_pos, &kernel_image.value)?;
    let kernel_files =
        KernelFiles::pick(&kernel_section, &kernel_img.rootfs).map_err(kernel_err)?;

    let mut root = Root::new(&name);
    for init in &cfg.init {
        let img = resolver.resolve(&init.pos(), &init.value)?;
        root.add_init(&img.rootfs)?;
    }
    root.add_skeleton().map_err(|e| match e {
        RootError::NoInit => BadInput::new(format!("{}: {e}", first.display())).into(),
        e => anyhow::Error::from(e),
    })?;
    let modules = kernel::modules(&kernel_section, &kernel_img.rootfs).map_err(kernel_err)?;
    root.add_modules(&modules)?;

    let ids = cfg.id_map();
    for (section, list) in cfg.sections() {
        for (i, entry) in list.iter().enumerate() {
            let reference = entry.value.image.clone().unwrap_or_default();
            let image = resolver.resolve(&entry.pos_of(&["image"]), &reference)?;
            let at = |e: &dyn std::fmt::Display| BadInput::new(format!("{}: {e}", entry.pos()));
            let container = Container::new(section, i, &entry.value, &image.config, &ids)
                .map_err(|e| at(&e))?;
            root.add_container(&container, image.rootfs, &cfg.files)
                .map_err(|e| at(&e))?;
        }
    }
    let root = root.finish(&cfg.files, &ids).map_err(|e| match e {
        RootError::Files(FileError::Bad(e)) => BadInput::new(e.to_string()).into(),
        e => anyhow::Error::from(e),
    })?;
    write_outputs(&args, &name, &root, &kernel_section, &kernel_files)
}

/// Writes every output: to temp files first, renamed at the end, so a
/// failed build leaves no partial output behind.
fn write_outputs(
    args: &BuildArgs,
    name: &str,
    root: &fstree::Tree,
    kernel_section: &config::Kernel,
    kernel: &KernelFiles,
) -> anyhow::Result<()> {
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
                let initrd = initrd::write_cpio(
                    root,
                    mtime as u32,
                    kernel.ucode.clone().unwrap_or_default(),
                )
                .context("writing the initrd")?;
                outputs.push((
                    args.dir.join(format!("{name}-kernel")),
                    kernel.kernel.clone(),
                ));
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
