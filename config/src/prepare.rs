//! The one entry point `hull validate` and `hull build` share: load the
//! files, merge them, apply the image map, put hull's init in place of
//! LinuxKit's, and run every check that needs no image.

use std::path::{Path, PathBuf};

use crate::check;
use crate::image_map::{repository, ImageMap};
use crate::load;
use crate::position::ConfigErrors;
use crate::schema::Config;

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The YAML files; later files add to earlier ones.
    pub files: Vec<PathBuf>,
    /// `--image-map FROM=TO` flags.
    pub image_map: Vec<String>,
    /// `--image-map-file` files.
    pub image_map_files: Vec<PathBuf>,
    /// The reference that takes the place of LinuxKit's init, runc and
    /// containerd in `init` (see [`hull_init_reference`]).
    pub hull_init: String,
}

/// Why the files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A malformed `--image-map` flag.
    #[error("{0}")]
    ImageMapFlag(String),
    /// Mistakes in the files, each at its position.
    #[error("{0}")]
    Config(ConfigErrors),
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
pub fn hull_init_reference() -> String {
    std::env::var("HULL_INIT").unwrap_or_else(|_| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pkg/init");
        format!("@pkg:{}", p.canonicalize().unwrap_or(p).display())
    })
}

/// Loads, merges, maps and checks the files. Notes for the user (LinuxKit
/// parts replaced or ignored) go to `note`, each once.
pub fn load_and_check(inputs: &Inputs, note: &mut dyn FnMut(&str)) -> Result<Config, LoadError> {
    let mut errs = ConfigErrors::default();
    let mut image_map = ImageMap::default();
    for f in &inputs.image_map {
        image_map.add_flag(f).map_err(LoadError::ImageMapFlag)?;
    }
    for f in &inputs.image_map_files {
        if let Err(e) = image_map.add_file(f) {
            errs.0.extend(e.0);
        }
    }
    let mut parsed = Vec::new();
    for f in &inputs.files {
        let (c, e) = load::load(f);
        parsed.push(c);
        errs.0.extend(e.0);
    }
    let mut cfg = Config::merge(parsed);
    cfg.map_images(|r| image_map.lookup(r));
    replace_linuxkit_init(&mut cfg, &inputs.hull_init, note);
    if let Some(t) = cfg.trust.first() {
        note(&format!("{t}: `trust` (LinuxKit's old content trust) is ignored; hull verifies every blob by its digest"));
    }
    check::check(&cfg, &mut errs);
    check::check_packages(&cfg, &mut errs);
    errs.sort(&inputs.files);
    if errs.is_empty() {
        Ok(cfg)
    } else {
        Err(LoadError::Config(errs))
    }
}

/// LinuxKit's init, runc and containerd become hull's init, once, where
/// the first of them was.
fn replace_linuxkit_init(cfg: &mut Config, hull_init: &str, note: &mut dyn FnMut(&str)) {
    let builtins: Vec<String> = cfg
        .init
        .iter()
        .filter(|i| is_linuxkit_builtin(&i.value))
        .map(|i| i.value.clone())
        .collect();
    let Some(first) = cfg.init.iter().position(|i| is_linuxkit_builtin(&i.value)) else {
        return;
    };
    let mut replacement = cfg.init.remove(first);
    replacement.value = hull_init.to_string();
    cfg.init.retain(|i| !is_linuxkit_builtin(&i.value));
    let already = cfg.init.iter().any(|i| i.value == replacement.value);
    if !already {
        cfg.init.insert(first.min(cfg.init.len()), replacement);
    }
    note(&format!(
        "{} in `init` replaced by hull's init (hull-init runs the containers itself)",
        builtins.join(", ")
    ));
}
