//! The guest's root tree (DESIGN's build step 4), assembled from resolved
//! images, in a fixed order so that the same inputs give the same tree:
//!
//! ```text
//! /init -> sbin/hull-init          /etc/hull/image.json   (the resolved description)
//! /containers/onboot/000-NAME/{config.json,runtime.json,rootfs/}
//! /containers/onshutdown/000-NAME/...
//! /containers/services/NAME/...
//! /lib/modules/VERSION/...         (see [`crate::kernel`])
//! ```

use std::collections::BTreeMap;

use config::{FileEntry, Located, Section};
use contract::{ContainerRef, ImageJson, IMAGE_JSON_PATH, INIT_PATH};
use fstree::{Entry, Tree};

use crate::container::Container;
use crate::files::{add_files, FileError};
use crate::mount_points::make_mount_points;

/// Why the root tree cannot be assembled.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("no init image provides /sbin/hull-init; add \"@pkg:PATH/pkg/init\" to `init`")]
    NoInit,
    #[error(transparent)]
    Files(#[from] FileError),
    #[error(transparent)]
    Tree(#[from] fstree::TreeError),
}

/// A root being assembled: the init images first, then the skeleton, the
/// kernel modules, the containers, and last the `files` section.
pub struct Root {
    tree: Tree,
    image: ImageJson,
}

impl Root {
    /// An empty root for the image called `name`.
    pub fn new(name: &str) -> Root {
        Root {
            tree: Tree::new(),
            image: ImageJson {
                name: name.to_string(),
                ..Default::default()
            },
        }
    }

    /// Merges an `init` image into the root (in the order of `init`).
    pub fn add_init(&mut self, rootfs: &Tree) -> Result<(), RootError> {
        Ok(self.tree.merge(rootfs, "/")?)
    }

    /// After the init images: `/init`, the directories stage 2 mounts on,
    /// and `/etc/resolv.conf` into /run unless an image gave one.
    pub fn add_skeleton(&mut self) -> Result<(), RootError> {
        let init = INIT_PATH.trim_start_matches('/');
        if !self.tree.contains(init) {
            return Err(RootError::NoInit);
        }
        self.tree.insert("init", Entry::symlink(init))?;
        for d in ["proc", "sys", "dev", "run", "tmp", "var", "etc/hull"] {
            self.tree.mkdir_all(d, 0o755)?;
        }
        self.tree.insert("tmp", Entry::dir(0o1777))?;
        if !self.tree.contains("etc/resolv.conf") {
            self.tree.insert(
                "etc/resolv.conf",
                Entry::symlink("/run/resolvconf/resolv.conf"),
            )?;
        }
        Ok(())
    }

    /// Kernel modules (rooted at `/`, see [`crate::kernel::modules`]).
    pub fn add_modules(&mut self, modules: &Tree) -> Result<(), RootError> {
        Ok(self.tree.merge(modules, "/")?)
    }

    /// A container's bundle: its image's files with the mount points it
    /// needs, `config.json` and `runtime.json`; and its place in the boot
    /// order. `files` is the description's `files` section (a bind of one
    /// of them needs a file to land on).
    pub fn add_container(
        &mut self,
        container: &Container,
        mut rootfs: Tree,
        files: &[Located<FileEntry>],
    ) -> Result<(), RootError> {
        make_mount_points(&mut rootfs, container.mount_points(), &self.tree, files)?;
        let b = container.bundle.trim_start_matches('/');
        self.tree.merge(&rootfs, format!("{b}/rootfs"))?;
        self.tree.mkdir_all(format!("{b}/rootfs"), 0o755)?;
        self.tree.insert(
            format!("{b}/config.json"),
            Entry::file(container.config_json(), 0o644),
        )?;
        self.tree.insert(
            format!("{b}/{}", contract::RUNTIME_JSON),
            Entry::file(pretty(&container.runtime_json()), 0o644),
        )?;
        let r = ContainerRef {
            name: container.name.clone(),
            bundle: container.bundle.clone(),
        };
        match container.section {
            Section::Onboot => self.image.onboot.push(r),
            Section::Onshutdown => self.image.onshutdown.push(r),
            Section::Services => self.image.services.push(r),
        }
        Ok(())
    }

    /// The finished root: `/etc/hull/image.json`, then the `files` section
    /// (a `metadata: yaml` file holds image.json's content). `ids` gives
    /// every container's uid by name, for files owned by one.
    pub fn finish(
        mut self,
        files: &[Located<FileEntry>],
        ids: &BTreeMap<String, u32>,
    ) -> Result<Tree, RootError> {
        let image_json = pretty(&self.image);
        self.tree.insert(
            IMAGE_JSON_PATH.trim_start_matches('/'),
            Entry::file(image_json.clone(), 0o644),
        )?;
        add_files(&mut self.tree, files, ids, &image_json)?;
        Ok(self.tree)
    }
}

/// JSON as the guest's files hold it. Serializing these types cannot fail
/// (no map has keys other than strings).
fn pretty<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
}
