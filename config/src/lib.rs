//! The image description (the YAML file a user writes): read with the
//! position of every value, into typed values, and checked as far as it
//! can be without any image.
//!
//! The schema is LinuxKit's (`kernel`, `init`, `onboot`, `onshutdown`,
//! `services`, `files`, `volumes`, and every per-image field of its
//! reference), so that LinuxKit files work unchanged, plus hull's own keys
//! (supervision, readiness). Every mistake is reported as
//! `FILE:LINE:COL: message`, all of a run's at once.
//!
//! The way through: [`yaml`] reads text into nodes with positions; [`load`]
//! reads each entry's shape with serde ([`raw`]) and its values into
//! [`values`] ([`entry`]); [`schema`] merges files; [`check`] runs what
//! spans entries; [`prepare::load_and_check`] does it all for `hull
//! validate` and `hull build`. Neighbours: the bundle builder
//! (`hull-bundle`) consumes the typed entries and an image's label
//! ([`label`]); nothing here reads an image.

pub mod check;
pub mod entry;
pub mod image_map;
pub mod label;
pub mod load;
pub mod position;
pub mod prepare;
mod raw;
pub mod runtime_section;
pub mod schema;
pub mod suggest;
pub mod values;
pub mod yaml;

pub use entry::{ImageEntry, Propagation};
pub use image_map::ImageMap;
pub use label::{parse_entry, parse_label};
pub use position::{ConfigError, ConfigErrors, Located, Pos, Problem};
pub use prepare::{hull_init_reference, is_linuxkit_builtin, load_and_check, Inputs, LoadError};
pub use raw::IdMapping;
pub use runtime_section::RuntimeSection;
pub use schema::{Config, FileEntry, Kernel, Section, Volume};
