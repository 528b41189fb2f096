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
pub mod files;
pub mod image;
pub mod kernel;
pub mod merge;
pub mod mount_points;
pub mod root;
pub mod runtime_json;
pub mod spec;

pub use container::{bundle_path, BundleError, Container};
pub use files::FileError;
pub use image::{Image, ImageConfig};
pub use kernel::{KernelError, KernelFiles};
pub use root::{Root, RootError};
