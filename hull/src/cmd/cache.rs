//! `hull cache`: what is in the image cache, and moving images in and out of
//! it (registries, OCI layouts, docker archives, directories).

use std::path::PathBuf;

use std::io::IsTerminal;

use anyhow::Context;
use contract::Arch;
use report::BadInput;
use store::archive::{self, ExportFormat};
use store::registry::{self, Registry, RegistryError};
use store::Cache;

#[derive(clap::Subcommand)]
pub enum CacheCmd {
    /// List the images in the cache.
    Ls {
        /// One JSON object per image, in a list.
        #[arg(long)]
        json: bool,
    },
    /// Remove an image's name (every arch unless --arch); `clean` frees its blobs.
    Rm {
        reference: String,
        #[arg(long)]
        arch: Option<String>,
    },
    /// Remove blobs no image names, and leftover downloads.
    Clean,
    /// Check every blob every image needs: present and matching its digest.
    Verify,
    /// Fetch an image from its registry (always asks the registry).
    Pull {
        reference: String,
        #[arg(long, default_value = "x86_64")]
        arch: String,
        #[arg(long = "mirror", value_name = "REGISTRY=URL")]
        mirrors: Vec<String>,
    },
    /// Push a cached image (every arch it has; several go up as an index).
    Push {
        reference: String,
        /// Where to push (default: the reference itself).
        #[arg(long)]
        to: Option<String>,
        #[arg(long = "mirror", value_name = "REGISTRY=URL")]
        mirrors: Vec<String>,
    },
    /// Import an OCI image layout (directory or tar) or a `docker save` archive.
    Import {
        file: PathBuf,
        /// Name the image(s) this instead of what the archive says.
        #[arg(long)]
        name: Option<String>,
    },
    /// Write a cached image as an OCI layout tar, a docker archive, or a directory.
    Export {
        reference: String,
        /// oci, docker or filesystem.
        #[arg(long)]
        format: String,
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        #[arg(long, default_value = "x86_64")]
        arch: String,
    },
}

/// The registry client with the `--mirror`s given (a bad one is bad
/// input); `check`: ask the registry even for cached names.
pub fn registry(mirrors: &[String], check: bool) -> Result<Registry, RegistryError> {
    Ok(Registry::new(registry::Options {
        mirrors: registry::Options::parse_mirrors(mirrors)?,
        check,
        progress: std::io::stderr().is_terminal(),
    }))
}

/// The cached name `reference` stands for; none is bad input.
fn cached(cache: &Cache, reference: &str) -> anyhow::Result<String> {
    resolve::any_arch_name(cache, reference)?.ok_or_else(|| {
        BadInput::new(format!(
            "no image {reference} in the cache (see `hull cache ls`)"
        ))
        .into()
    })
}

pub fn run(cmd: CacheCmd) -> anyhow::Result<i32> {
    let root = Cache::default_root();
    let cache = Cache::open(&root)?;
    match cmd {
        CacheCmd::Ls { json } => {
            let list = cache.images()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<50} {:<6} {:<19} {:>10}",
                    "NAME", "ARCH", "DIGEST", "SIZE"
                );
                for r in list {
                    println!(
                        "{:<50} {:<6} {:<19} {:>8.1}MB",
                        r.name,
                        r.arch,
                        resolve::short(&r.digest),
                        r.size as f64 / 1e6
                    );
                }
            }
        }
        CacheCmd::Rm { reference, arch: a } => {
            let a = a.as_deref().map(crate::parse_arch).transpose()?;
            let name = cached(&cache, &reference)?;
            let n = cache.remove(&name, a)?;
            if n == 0 {
                return Err(BadInput::new(format!(
                    "no image {reference} for {} in the cache",
                    a.map(Arch::oci).unwrap_or("any arch")
                ))
                .into());
            }
            println!(
                "removed {name} ({n} arch{})",
                if n == 1 { "" } else { "es" }
            );
        }
        CacheCmd::Clean => {
            let c = cache.clean()?;
            println!("removed {} blobs ({:.1} MB)", c.blobs, c.bytes as f64 / 1e6);
        }
        CacheCmd::Verify => {
            let problems = cache.verify()?;
            let n = cache.images()?.len();
            if problems.is_empty() {
                println!("cache {} ok: {n} images verified", root.display());
            } else {
                for p in &problems {
                    crate::say(p);
                }
                return Ok(1);
            }
        }
        CacheCmd::Pull {
            reference,
            arch: a,
            mirrors,
        } => {
            let a = crate::parse_arch(&a)?;
            let p = registry(&mirrors, true)?.pull(&cache, &reference, a)?;
            println!(
                "{} ({}) {}: {}",
                p.name,
                a.oci(),
                p.digest,
                if p.fetched > 0 {
                    format!("fetched {} bytes", p.fetched)
                } else {
                    "up to date".into()
                }
            );
        }
        CacheCmd::Push {
            reference,
            to,
            mirrors,
        } => {
            let name = cached(&cache, &reference)?;
            let dest = to.unwrap_or_else(|| name.clone());
            let d = registry(&mirrors, false)?.push(&cache, &name, &dest)?;
            println!("pushed {name} to {dest} ({d})");
        }
        CacheCmd::Import { file, name } => {
            let done = archive::import(&cache, &file, name.as_deref())?;
            for i in done {
                println!("{} ({}) {}", i.name, i.arch, i.digest);
            }
        }
        CacheCmd::Export {
            reference,
            format,
            output,
            arch: a,
        } => {
            let a = crate::parse_arch(&a)?;
            let format: ExportFormat = format.parse()?;
            let name = cached(&cache, &reference)?;
            let done = archive::export(&cache, &name, a, format, &output)
                .with_context(|| format!("exporting {name}"))?;
            if let Some(first) = done.skipped.first() {
                crate::say(&format!(
                    "note: {} device nodes or FIFOs skipped (e.g. /{})",
                    done.skipped.len(),
                    first.display()
                ));
            }
            if done.xattrs_refused > 0 {
                crate::say(&format!(
                    "note: {} extended attributes not set: the filesystem or our privileges do not allow them",
                    done.xattrs_refused
                ));
            }
            println!("wrote {}", output.display());
        }
    }
    Ok(0)
}
