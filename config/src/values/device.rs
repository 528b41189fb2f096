//! `devices`: device nodes made in the container, and the device cgroup.

pub use oci_spec::runtime::LinuxDeviceType;

use super::mode::FileMode;
use crate::raw::RawDevice;

/// One `devices` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// `path: all`: a whole class allowed in the device cgroup, no node made.
    All { kind: LinuxDeviceType },
    /// A node made in the container (and allowed in the device cgroup).
    Node {
        path: String,
        kind: LinuxDeviceType,
        major: i64,
        minor: i64,
        /// Default 0600.
        mode: FileMode,
    },
}

impl Device {
    pub(crate) fn parse(d: &RawDevice) -> Result<Device, String> {
        let kind = match d.kind.as_str() {
            "b" => LinuxDeviceType::B,
            "c" => LinuxDeviceType::C,
            "u" => LinuxDeviceType::U,
            "p" => LinuxDeviceType::P,
            "a" => LinuxDeviceType::A,
            other => return Err(format!("device type {other:?}: use b, c, u, p or a")),
        };
        if d.path == "all" {
            return Ok(Device::All { kind });
        }
        if !d.path.starts_with('/') {
            return Err(format!(
                "device path {:?} must be absolute (or `all`)",
                d.path
            ));
        }
        let mode = d.mode.as_deref().unwrap_or("0600");
        let mode =
            FileMode::parse(mode).ok_or_else(|| format!("device mode {mode:?} is not octal"))?;
        Ok(Device::Node {
            path: d.path.clone(),
            kind,
            major: d.major,
            minor: d.minor,
            mode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(path: &str, kind: &str, mode: Option<&str>) -> RawDevice {
        RawDevice {
            path: path.into(),
            kind: kind.into(),
            major: 10,
            minor: 229,
            mode: mode.map(String::from),
        }
    }

    #[test]
    fn nodes_and_whole_classes() {
        assert_eq!(
            Device::parse(&raw("/dev/fuse", "c", Some("0666"))),
            Ok(Device::Node {
                path: "/dev/fuse".into(),
                kind: LinuxDeviceType::C,
                major: 10,
                minor: 229,
                mode: FileMode(0o666)
            })
        );
        assert!(matches!(
            Device::parse(&raw("/dev/x", "b", None)),
            Ok(Device::Node {
                mode: FileMode(0o600),
                ..
            })
        ));
        // `all` needs no mode, so a bad one is not looked at.
        assert_eq!(
            Device::parse(&raw("all", "b", Some("x"))),
            Ok(Device::All {
                kind: LinuxDeviceType::B
            })
        );
        assert_eq!(
            Device::parse(&raw("/dev/x", "x", None)).unwrap_err(),
            "device type \"x\": use b, c, u, p or a"
        );
        assert!(Device::parse(&raw("dev/x", "c", None))
            .unwrap_err()
            .contains("must be absolute"));
        assert!(Device::parse(&raw("/dev/x", "c", Some("rw")))
            .unwrap_err()
            .contains("is not octal"));
    }
}
