//! `hull validate`: every check that needs no image, on one file or several
//! merged (the same as `hull build` runs first). Prints each mistake as
//! `FILE:LINE:COL: message` on its own line; exit code 2 when there is one.

use std::path::{Path, PathBuf};

use crate::check;
use crate::config::{self, Config, ConfigErrors};
use crate::image_map::{repository, ImageMap};

#[derive(clap::Args, Clone, Default)]
pub struct MapArgs {
    /// Serve an image reference from elsewhere: FROM=TO (repeatable), e.g.
    /// linuxkit/getty=@pkg:pkg/getty. A FROM without a tag matches every tag.
    #[arg(long = "image-map", value_name = "FROM=TO")]
    pub image_map: Vec<String>,
    /// A YAML file of FROM: TO image map entries (`@pkg:` paths relative to it).
    #[arg(long = "image-map-file", value_name = "FILE")]
    pub image_map_file: Vec<PathBuf>,
}

#[derive(clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub map: MapArgs,
    /// The YAML files; later files add to earlier ones.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// LinuxKit's own init, runtime and containerd: hull-init does their job.
pub fn is_linuxkit_builtin(reference: &str) -> bool {
    matches!(
        repository(reference),
        "linuxkit/init" | "linuxkit/runc" | "linuxkit/containerd"
    )
}

/// hull's init package, which takes the place of LinuxKit's: `HULL_INIT`
/// when set, else the `pkg/init` of the source tree hull was built from.
fn hull_init_reference() -> String {
    std::env::var("HULL_INIT").unwrap_or_else(|_| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pkg/init");
        format!("@pkg:{}", p.canonicalize().unwrap_or(p).display())
    })
}

/// Loads, merges, maps and checks the files. Notes for the user (LinuxKit
/// parts replaced or ignored) go to stderr, each once.
pub fn prepare(files: &[PathBuf], map: &MapArgs) -> Result<Config, anyhow::Error> {
    let mut errs = ConfigErrors::default();
    let mut image_map = ImageMap::default();
    for f in &map.image_map {
        image_map
            .add_flag(f)
            .map_err(|e| report::BadInput::new(e.to_string()))?;
    }
    for f in &map.image_map_file {
        if let Err(e) = image_map.add_file(f) {
            errs.0.extend(e.0);
        }
    }
    let mut parsed = Vec::new();
    for f in files {
        let (c, e) = config::load(f);
        parsed.push(c);
        errs.0.extend(e.0);
    }
    let mut cfg = Config::merge(parsed);
    cfg.map_images(|r| image_map.lookup(r));
    // LinuxKit's init, runc and containerd become hull's init, once.
    let builtins: Vec<String> = cfg
        .init
        .iter()
        .filter(|i| is_linuxkit_builtin(&i.value))
        .map(|i| i.value.clone())
        .collect();
    if !builtins.is_empty() {
        let first = cfg
            .init
            .iter()
            .position(|i| is_linuxkit_builtin(&i.value))
            .unwrap_or(0);
        let mut replacement = cfg.init[first].clone();
        replacement.value = hull_init_reference();
        cfg.init.retain(|i| !is_linuxkit_builtin(&i.value));
        let already = cfg.init.iter().any(|i| i.value == replacement.value);
        if !already {
            cfg.init.insert(first.min(cfg.init.len()), replacement);
        }
        eprintln!(
            "hull: note: {} in `init` replaced by hull's init (hull-init runs the containers itself)",
            builtins.join(", ")
        );
    }
    if let Some(t) = cfg.trust.first() {
        eprintln!("hull: note: {t}: `trust` (LinuxKit's old content trust) is ignored; hull verifies every blob by its digest");
    }
    check::check(&cfg, &mut errs);
    check::check_packages(&cfg, &mut errs);
    errs.sort(files);
    if errs.is_empty() {
        Ok(cfg)
    } else {
        Err(errs.into())
    }
}

pub fn run(args: ValidateArgs) -> anyhow::Result<()> {
    let cfg = prepare(&args.files, &args.map)?;
    let n = cfg.onboot.len() + cfg.onshutdown.len() + cfg.services.len();
    eprintln!(
        "hull: {} valid ({n} containers, {} files)",
        args.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(" + "),
        cfg.files.len()
    );
    Ok(())
}
