//! The image cache lives in the `hull-store` crate; this keeps the paths
//! (`crate::cache::Cache`) the rest of hull uses.
pub use store::cache::*;
