//! hull's image store. Everything a build runs comes through here: images
//! pulled from registries ([`registry`]), imported from OCI layouts and
//! `docker save` archives ([`archive`]), or built by `hull pkg build` (through
//! [`cache::Cache::write_image`]). They all land in one content-addressed,
//! verified OCI image layout ([`cache`]); [`unpack`] writes an image's root
//! filesystem to disk for `hull cache export --format filesystem`.
//!
//! Host only: the guest never links this crate (it brings tokio and a TLS
//! stack for the registry client).

pub mod archive;
pub mod cache;
pub mod registry;
pub mod unpack;

pub use cache::{Cache, CacheError};
