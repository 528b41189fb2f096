//! One file per source kind of a `build.yml`: [`debian`] packages (with the
//! [`kernel`] layout and the [`ca_bundle`] they can produce), [`cargo`]
//! binaries built from this workspace, [`files`] from the package folder,
//! and [`busybox`] applet links.

pub mod busybox;
pub mod ca_bundle;
pub mod cargo;
pub mod debian;
pub mod files;
pub mod kernel;
