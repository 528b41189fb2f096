//! One file per verb, and the flags two verbs share.
pub mod build;
pub mod cache;
pub mod ctl;
pub mod pkg;
pub mod run_qemu;
pub mod validate;

use std::path::PathBuf;

/// The image map flags of `hull validate` and `hull build`.
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

/// `config::load_and_check` for a verb: notes on stderr, mistakes in the
/// files as they are (one `FILE:LINE:COL: message` per line), a bad flag as
/// bad usage.
pub fn load_and_check(files: &[PathBuf], map: &MapArgs) -> anyhow::Result<config::Config> {
    let inputs = config::Inputs {
        files: files.to_vec(),
        image_map: map.image_map.clone(),
        image_map_files: map.image_map_file.clone(),
        hull_init: config::hull_init_reference(),
    };
    let mut note = |n: &str| eprintln!("hull: note: {n}");
    config::load_and_check(&inputs, &mut note).map_err(|e| match e {
        config::LoadError::ImageMapFlag(m) => report::BadInput::new(m).into(),
        config::LoadError::Config(errs) => errs.into(),
    })
}
