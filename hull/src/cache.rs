//! The image cache lives in the `hull-oci` crate; this keeps the paths
//! (`crate::cache::Cache`) the rest of hull uses.
pub use oci::cache::*;
