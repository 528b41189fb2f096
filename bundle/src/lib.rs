//! The bundle builder: from the typed description (`hull-config`) and the
//! resolved images, each container's OCI bundle (a typed
//! `oci_spec::runtime::Spec` written as `config.json`, and
//! `contract::RuntimeJson`), and the guest's root tree that holds them.
//!
//! A container's spec comes from its image's config, then the image's
//! `org.mobyproject.config` label, then the YAML entry, with LinuxKit's
//! precedence ([`merge`]). [`Container::new`] is the one step that can fail
//! (on what the image brings: its label, or no command anywhere); writing
//! the bundle from a [`Container`] cannot. Everything the guest needs is
//! decided here and written down, so the guest starts a bundle as written
//! ([`spec`] says what that takes for a bind of `/dev` and for
//! `readiness: notify`).
//!
//! Neighbours: `hull build` resolves the images (pulling, building
//! packages) and writes the outputs; this crate reads no file but the
//! `files` section's sources, and never the network.

pub mod container;
mod files;
pub mod image;
pub mod kernel;
pub mod merge;
pub mod mount_points;
pub mod root;
pub mod runtime_json;
pub mod spec;

pub use container::{bundle_path, Container};
pub use image::{Image, ImageConfig};
pub use kernel::{KernelError, KernelFiles};
pub use root::Root;

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

/// Why the root tree cannot be assembled.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("no init image provides /sbin/hull-init; add \"@pkg:PATH/pkg/init\" to `init`")]
    NoInit,
    /// A `files` entry that cannot be written, at its position.
    #[error("{0}")]
    File(config::ConfigError),
    #[error(transparent)]
    Tree(#[from] fstree::TreeError),
}
