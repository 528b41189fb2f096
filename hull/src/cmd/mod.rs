//! One file per verb.
pub mod build;
pub mod cache;
pub mod ctl;
pub mod pkg;
pub mod run_qemu;
pub mod validate;
