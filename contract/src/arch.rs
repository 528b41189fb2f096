//! The two architectures hull builds for, and every spelling of them that
//! the tools around hull use: hull's and the kernel's (`x86_64`, `aarch64`),
//! OCI's and Debian's (`amd64`, `arm64`), Rust's target triples and QEMU's
//! emulator names. One type, so no module guesses a default for a name it
//! does not know.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A guest architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    Aarch64,
}

/// A name that is none of the spellings [`Arch`] accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown arch {0:?}: use x86_64 (amd64) or aarch64 (arm64)")]
pub struct UnknownArch(pub String);

impl Arch {
    /// Every architecture, in a fixed order.
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// hull's (and the kernel's) name: `x86_64`, `aarch64`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The OCI image-spec `architecture` (`amd64`, `arm64`).
    pub fn oci(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// Debian's architecture name (`amd64`, `arm64`).
    pub fn debian(self) -> &'static str {
        // The same words as OCI's today; kept apart because they are two
        // vocabularies (Debian has `armhf`, OCI has `arm` + variant).
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// The Rust target guest binaries are built for (static musl).
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Aarch64 => "aarch64-unknown-linux-musl",
        }
    }

    /// The QEMU system emulator.
    pub fn qemu_binary(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Aarch64 => "qemu-system-aarch64",
        }
    }

    /// The serial console the kernel prints on (`console=` default).
    pub fn serial_console(self) -> &'static str {
        match self {
            Arch::X86_64 => "ttyS0",
            Arch::Aarch64 => "ttyAMA0",
        }
    }

    /// The architecture of the machine this runs on, when hull knows it.
    pub fn host() -> Option<Arch> {
        std::env::consts::ARCH.parse().ok()
    }
}

impl FromStr for Arch {
    type Err = UnknownArch;
    /// Accepts hull's, Debian's and OCI's spellings (`x86_64`, `amd64`,
    /// `aarch64`, `arm64`), and `linux/` in front of any of them.
    fn from_str(s: &str) -> Result<Arch, UnknownArch> {
        match s.strip_prefix("linux/").unwrap_or(s) {
            "x86_64" | "amd64" => Ok(Arch::X86_64),
            "aarch64" | "arm64" => Ok(Arch::Aarch64),
            _ => Err(UnknownArch(s.to_string())),
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Arch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Arch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Arch, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_names_one_arch() {
        for (s, a) in [
            ("x86_64", Arch::X86_64),
            ("amd64", Arch::X86_64),
            ("linux/amd64", Arch::X86_64),
            ("aarch64", Arch::Aarch64),
            ("arm64", Arch::Aarch64),
            ("linux/arm64", Arch::Aarch64),
        ] {
            assert_eq!(s.parse::<Arch>(), Ok(a), "{s}");
        }
        for a in Arch::ALL {
            assert_eq!(a.as_str().parse::<Arch>(), Ok(a));
            assert_eq!(a.oci().parse::<Arch>(), Ok(a));
            assert_eq!(a.debian().parse::<Arch>(), Ok(a));
        }
    }

    #[test]
    fn an_unknown_arch_is_an_error_not_a_default() {
        let e = "riscv64".parse::<Arch>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown arch \"riscv64\": use x86_64 (amd64) or aarch64 (arm64)"
        );
        assert!("".parse::<Arch>().is_err());
        assert!("X86_64".parse::<Arch>().is_err());
    }

    #[test]
    fn serde_writes_hulls_name_and_reads_any() {
        assert_eq!(
            serde_json::to_string(&Arch::Aarch64).unwrap(),
            "\"aarch64\""
        );
        assert_eq!(
            serde_json::from_str::<Arch>("\"amd64\"").unwrap(),
            Arch::X86_64
        );
        assert!(serde_json::from_str::<Arch>("\"s390x\"").is_err());
    }
}
