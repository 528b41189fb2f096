//! The whole description: one file, or several merged (lists append, later
//! kernel fields win).

use std::collections::BTreeMap;

use marked_yaml::Node;
use serde::Deserialize;

use crate::entry::ImageEntry;
use crate::position::{Located, Pos};
use crate::values::{FileMode, Id};

/// The whole description: one file, or several merged.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Each file's `kernel` section, in order; [`Config::kernel`] merges them.
    pub kernels: Vec<Located<Kernel>>,
    pub init: Vec<Located<String>>,
    pub onboot: Vec<Located<ImageEntry>>,
    pub onshutdown: Vec<Located<ImageEntry>>,
    pub services: Vec<Located<ImageEntry>>,
    pub files: Vec<Located<FileEntry>>,
    pub volumes: Vec<Located<Volume>>,
    /// Where LinuxKit's old `trust:` section was written, if anywhere.
    pub trust: Vec<Pos>,
}

/// The container sections, in the order the guest runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Onboot,
    Onshutdown,
    Services,
}

impl Section {
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Onboot => "onboot",
            Section::Onshutdown => "onshutdown",
            Section::Services => "services",
        }
    }
}

impl std::fmt::Display for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Config {
    /// The kernel section after merging: a later file's field wins, field by
    /// field (LinuxKit's `AppendConfig`). With it, where its image was named.
    pub fn kernel(&self) -> Option<(Kernel, Located<String>)> {
        let mut out = Kernel::default();
        let mut image: Option<Located<String>> = None;
        for k in &self.kernels {
            let v = &k.value;
            if let Some(i) = &v.image {
                out.image = Some(i.clone());
                image = Some(Located {
                    value: i.clone(),
                    file: k.file.clone(),
                    node: field_node(&k.node, "image"),
                    keys: Vec::new(),
                    problems: Vec::new(),
                });
            }
            macro_rules! later_wins {
                ($($f:ident),*) => { $( if v.$f.is_some() { out.$f = v.$f.clone(); } )* };
            }
            later_wins!(cmdline, binary, tar, ucode, modules);
        }
        image.map(|i| (out, i))
    }

    /// The container sections.
    pub fn sections(&self) -> [(Section, &Vec<Located<ImageEntry>>); 3] {
        [
            (Section::Onboot, &self.onboot),
            (Section::Onshutdown, &self.onshutdown),
            (Section::Services, &self.services),
        ]
    }

    /// Every container, in uid order (onboot, onshutdown, services).
    pub fn containers(&self) -> impl Iterator<Item = (Section, &Located<ImageEntry>)> {
        self.sections()
            .into_iter()
            .flat_map(|(s, l)| l.iter().map(move |e| (s, e)))
    }

    /// LinuxKit gives every container a uid and gid, from 100 in the order
    /// onboot, onshutdown, services, so that `uid: NAME` (and files'
    /// `uid:`/`gid:`) can name a container instead of a number.
    pub fn id_map(&self) -> BTreeMap<String, u32> {
        let mut map = BTreeMap::new();
        for (i, (_, e)) in self.containers().enumerate() {
            map.insert(e.value.name.clone().unwrap_or_default(), 100 + i as u32);
        }
        map
    }

    /// Every image reference with where it is written: kernel, init,
    /// containers, volumes.
    pub fn image_refs(&self) -> Vec<(Pos, String)> {
        let mut out = Vec::new();
        for k in &self.kernels {
            if let Some(i) = &k.value.image {
                out.push((k.pos_of(&["image"]), i.clone()));
            }
        }
        for i in &self.init {
            out.push((i.pos(), i.value.clone()));
        }
        for (_, e) in self.containers() {
            if let Some(i) = &e.value.image {
                out.push((e.pos_of(&["image"]), i.clone()));
            }
        }
        for v in &self.volumes {
            if let Some(i) = &v.value.image {
                out.push((v.pos_of(&["image"]), i.clone()));
            }
        }
        out
    }

    /// Rewrites every image reference (the image map).
    pub fn map_images(&mut self, mut f: impl FnMut(&str) -> Option<String>) {
        let mut apply = |s: &mut String| {
            if let Some(n) = f(s) {
                *s = n;
            }
        };
        for k in &mut self.kernels {
            if let Some(i) = &mut k.value.image {
                apply(i);
            }
        }
        for i in &mut self.init {
            apply(&mut i.value);
        }
        for list in [&mut self.onboot, &mut self.onshutdown, &mut self.services] {
            for e in list.iter_mut() {
                if let Some(i) = &mut e.value.image {
                    apply(i);
                }
            }
        }
        for v in &mut self.volumes {
            if let Some(i) = &mut v.value.image {
                apply(i);
            }
        }
    }

    /// Several files into one: lists append, later kernel fields win.
    /// Duplicate names are found by the checks, which see every entry with
    /// its own file.
    pub fn merge(files: Vec<Config>) -> Config {
        let mut out = Config::default();
        for c in files {
            out.kernels.extend(c.kernels);
            out.init.extend(c.init);
            out.onboot.extend(c.onboot);
            out.onshutdown.extend(c.onshutdown);
            out.services.extend(c.services);
            out.files.extend(c.files);
            out.volumes.extend(c.volumes);
            out.trust.extend(c.trust);
        }
        out
    }
}

fn field_node(node: &Node, key: &str) -> Node {
    node.as_mapping()
        .and_then(|m| m.iter().find(|(k, _)| k.as_str() == key))
        .map(|(k, _)| Node::Scalar(k.clone()))
        .unwrap_or_else(|| node.clone())
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub cmdline: Option<String>,
    /// The kernel's file name in the image (default `kernel`).
    #[serde(default)]
    pub binary: Option<String>,
    /// The modules tarball's file name in the image (default `kernel.tar`; `none` for none).
    #[serde(default)]
    pub tar: Option<String>,
    /// A CPU microcode cpio in the image, put in front of the initrd.
    #[serde(default)]
    pub ucode: Option<String>,
    /// hull: extra kernel modules to ship and load, beyond the VM default set.
    #[serde(default)]
    pub modules: Option<Vec<String>>,
}

/// One entry of `files`.
#[derive(Debug, Clone, Default)]
pub struct FileEntry {
    pub path: Option<String>,
    pub directory: bool,
    pub symlink: Option<String>,
    pub contents: Option<String>,
    /// A file on the host, relative to the YAML file (or `~/`).
    pub source: Option<String>,
    /// `yaml`: the file holds the resolved description (LinuxKit writes the
    /// merged YAML; hull writes `/etc/hull/image.json`'s content as YAML-compatible JSON).
    pub metadata: Option<String>,
    pub optional: bool,
    pub mode: Option<FileMode>,
    pub uid: Option<Id>,
    pub gid: Option<Id>,
}

impl FileEntry {
    /// The guest path, without its leading `/`.
    pub fn guest_path(&self) -> &str {
        self.path.as_deref().unwrap_or("").trim_start_matches('/')
    }
}

/// One entry of `volumes` (checked; building them is not there yet, and
/// `hull build` says so).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub readonly: bool,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub platforms: Option<Vec<String>>,
}
