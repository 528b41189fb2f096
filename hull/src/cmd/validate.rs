//! `hull validate`: every check that needs no image, on one file or several
//! merged (the same as `hull build` runs first). Prints each mistake as
//! `FILE:LINE:COL: message` on its own line; exit code 2 when there is one.

use std::path::PathBuf;

use super::MapArgs;

#[derive(clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub map: MapArgs,
    /// The YAML files; later files add to earlier ones.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<()> {
    let cfg = super::load_and_check(&args.files, &args.map)?;
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
