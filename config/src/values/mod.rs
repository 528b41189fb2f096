//! The typed values of an image entry: one type per field family, each
//! with the one parser that reads it. A parser returns the message of a
//! mistake; the entry it belongs to puts it at its key.

pub mod bind;
pub mod caps;
pub mod device;
pub mod duration;
pub mod id;
pub mod mode;
pub mod mount;
pub mod namespace;
pub mod rlimit;
pub mod signal;

pub use bind::{volume_name_syntax, Bind, BindSource, Tmpfs};
pub use caps::{capability_name, Capabilities, Capability, CAPABILITIES};
pub use device::{Device, LinuxDeviceType};
pub use duration::{Backoff, Millis};
pub use id::Id;
pub use mode::FileMode;
pub use mount::Mount;
pub use namespace::Namespace;
pub use rlimit::{PosixRlimitType, Rlimit};
pub use signal::Signal;
