//! One container, with everything its bundle needs decided: the YAML entry
//! over its image's label, its command, environment, directory and ids.
//! This is the only step that can fail; writing its `config.json` and
//! `runtime.json` then cannot.

use std::collections::BTreeMap;

use config::{ImageEntry, Section};

use crate::image::ImageConfig;
use crate::merge::merge;

/// Why a container's bundle cannot be made from its image.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(
        "container {name}: the org.mobyproject.config label is not a valid image entry: {message}"
    )]
    BadLabel { name: String, message: String },
    #[error("container {name}: {message}")]
    BadValue { name: String, message: String },
    #[error(
        "container {name}: has no command (neither the YAML, the label nor the image gives one)"
    )]
    NoCommand { name: String },
}

/// `PATH` when neither the YAML nor the image sets one. Not LinuxKit's:
/// without it the runtime cannot find a bare argv[0].
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A container ready to be written as a bundle.
#[derive(Debug, Clone)]
pub struct Container {
    pub name: String,
    pub section: Section,
    /// Where the bundle sits in the guest (`/containers/...`).
    pub bundle: String,
    /// The YAML entry over the label: every value read and checked.
    pub entry: ImageEntry,
    pub args: Vec<String>,
    /// `PATH` first when nothing else set it.
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Where a container of the image sits in the guest: services by name,
/// run-once steps numbered in their order (their names may repeat).
pub fn bundle_path(section: Section, index: usize, name: &str) -> String {
    match section {
        Section::Services => format!("/containers/services/{name}"),
        _ => format!("/containers/{section}/{index:03}-{name}"),
    }
}

impl Container {
    /// The container of a YAML entry (checked already) run from an image
    /// with `image` config; `ids` gives every container's uid by name
    /// ([`config::Config::id_map`]). What can still be wrong comes from
    /// the image: its label, or no command anywhere.
    pub fn new(
        section: Section,
        index: usize,
        yaml: &ImageEntry,
        image: &ImageConfig,
        ids: &BTreeMap<String, u32>,
    ) -> Result<Container, BundleError> {
        let name = yaml.name().to_string();
        let bad = |message: String| BundleError::BadValue {
            name: name.clone(),
            message,
        };
        let (label, label_problems) = match image.label.as_deref() {
            Some(l) if !l.trim().is_empty() => {
                config::parse_label(l).map_err(|message| BundleError::BadLabel {
                    name: name.clone(),
                    message,
                })?
            }
            _ => (ImageEntry::default(), Vec::new()),
        };
        let (entry, problems) = merge(&label, &label_problems, yaml);
        if let Some(p) = problems.first() {
            return Err(bad(format!("{}: {}", p.dotted(), p.message)));
        }
        let id = |key: &str, v: &Option<config::values::Id>| -> Result<u32, BundleError> {
            match v {
                Some(v) => v.resolve(ids).map_err(|m| bad(format!("{key}: {m}"))),
                None => Ok(0),
            }
        };
        let uid = id("uid", &entry.uid)?;
        let gid = id("gid", &entry.gid)?;
        let mut additional_gids = Vec::new();
        for (i, g) in entry.additional_gids.iter().flatten().enumerate() {
            additional_gids.push(
                g.resolve(ids)
                    .map_err(|m| bad(format!("additionalGids.{i}: {m}")))?,
            );
        }
        // Command, env and cwd may come from the image (a Dockerfile sets them).
        let args = match &entry.command {
            Some(c) => c.clone(),
            None => image.entrypoint.iter().chain(&image.cmd).cloned().collect(),
        };
        if args.is_empty() {
            return Err(BundleError::NoCommand { name });
        }
        let mut env = entry
            .env
            .clone()
            .unwrap_or_else(|| image.env.clone().unwrap_or_default());
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.to_string());
        }
        let cwd = entry
            .cwd
            .clone()
            .filter(|c| !c.is_empty())
            .or_else(|| image.working_dir.clone())
            .unwrap_or_else(|| "/".into());
        Ok(Container {
            bundle: bundle_path(section, index, &name),
            name,
            section,
            entry,
            args,
            env,
            cwd,
            uid,
            gid,
            additional_gids,
        })
    }
}
