//! The devices a user adds on the command line: port forwards from the host
//! into the guest (`--publish`) and disks (`--disk`).

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use report::BadInput;

/// Why a `--publish` or `--disk` value is not understood, or a disk cannot be
/// created. A value that does not parse is the user's mistake: it carries a
/// [`BadInput`] marker (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "--publish {value:?}: expected [ADDRESS:]HOST_PORT:GUEST_PORT[/tcp|/udp], e.g. 6379:6379"
    )]
    Publish {
        value: String,
        #[source]
        input: BadInput,
    },
    #[error("--disk {value:?}: expected FILE[,size=SIZE] with SIZE such as 512M or 4G")]
    Disk {
        value: String,
        #[source]
        input: BadInput,
    },
    #[error("creating disk {path}")]
    CreateDisk {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// A port forward from the host into the guest (QEMU user networking).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// The host address to bind: 127.0.0.1 unless the user names one, so a
    /// debugging port is never opened to the network by accident.
    pub address: String,
    pub host_port: u16,
    pub guest_port: u16,
    pub protocol: Protocol,
}

impl FromStr for Publish {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Publish, DeviceError> {
        let bad = || DeviceError::Publish {
            value: s.to_string(),
            input: report::BadInput::marker(),
        };
        let (ports, protocol) = match s.rsplit_once('/') {
            Some((p, "tcp")) => (p, Protocol::Tcp),
            Some((p, "udp")) => (p, Protocol::Udp),
            Some(_) => return Err(bad()),
            None => (s, Protocol::Tcp),
        };
        let parts: Vec<&str> = ports.rsplitn(3, ':').collect();
        let port = |p: &str| p.parse::<u16>().ok().filter(|&n| n != 0).ok_or_else(bad);
        let (address, host, guest) = match parts.as_slice() {
            [guest, host] => ("127.0.0.1".to_string(), port(host)?, port(guest)?),
            [guest, host, addr] if !addr.is_empty() => {
                let addr = addr.trim_start_matches('[').trim_end_matches(']');
                (addr.to_string(), port(host)?, port(guest)?)
            }
            _ => return Err(bad()),
        };
        Ok(Publish {
            address,
            host_port: host,
            guest_port: guest,
            protocol,
        })
    }
}

impl Publish {
    /// The `hostfwd=` option of `-nic user`.
    pub fn hostfwd(&self) -> String {
        let proto = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        format!(
            "hostfwd={proto}:{}:{}-:{}",
            self.address, self.host_port, self.guest_port
        )
    }
}

/// A disk image attached as a virtio block device (`/dev/vda`, `/dev/vdb`...
/// in the order given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub path: PathBuf,
    /// Bytes; used only to create the file when it does not exist.
    pub size: Option<u64>,
}

/// Size of a disk created without `size=`.
pub const DEFAULT_DISK_SIZE: u64 = 1 << 30;

impl FromStr for Disk {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Disk, DeviceError> {
        let bad = || DeviceError::Disk {
            value: s.to_string(),
            input: report::BadInput::marker(),
        };
        let mut parts = s.split(',');
        let path = parts.next().filter(|p| !p.is_empty()).ok_or_else(bad)?;
        let mut size = None;
        for opt in parts {
            let v = opt.strip_prefix("size=").ok_or_else(bad)?;
            size = Some(parse_size(v).ok_or_else(bad)?);
        }
        Ok(Disk {
            path: path.into(),
            size,
        })
    }
}

/// `4G`, `512M`, `100K` or a number of bytes.
fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&s[..i], 1 << 20),
        (i, 'G' | 'g') => (&s[..i], 1 << 30),
        (i, 'T' | 't') => (&s[..i], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
}

impl Disk {
    /// Creates the file (sparse, all zeros: a blank disk) when it is missing;
    /// an existing file is left exactly as it is.
    pub fn ensure(&self) -> Result<(), DeviceError> {
        let err = |source| DeviceError::CreateDisk {
            path: self.path.clone(),
            source,
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.path)
        {
            Ok(f) => f
                .set_len(self.size.unwrap_or(DEFAULT_DISK_SIZE))
                .map_err(err),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    /// The `-drive` argument: raw unless the file is named `.qcow2`.
    pub fn drive(&self) -> OsString {
        let format = if self.path.extension().is_some_and(|e| e == "qcow2") {
            "qcow2"
        } else {
            "raw"
        };
        // A comma in a path must be doubled for QEMU's option parser.
        let path = self.path.to_string_lossy().replace(',', ",,");
        OsString::from(format!("file={path},format={format},if=virtio"))
    }
}

impl fmt::Display for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path.display().to_string())
    }
}

/// The guest's network: user networking with the forwards, on a virtio NIC
/// without its option ROM (iPXE: seconds of firmware time for nothing,
/// since the kernel is loaded directly).
pub fn nic_args(publish: &[Publish]) -> Vec<OsString> {
    let mut netdev = String::from("user,id=net0");
    for p in publish {
        netdev.push(',');
        netdev.push_str(&p.hostfwd());
    }
    vec![
        "-netdev".into(),
        netdev.into(),
        "-device".into(),
        "virtio-net-pci,netdev=net0,romfile=".into(),
    ]
}

pub fn disk_args(disks: &[Disk]) -> Vec<OsString> {
    disks
        .iter()
        .flat_map(|d| [OsString::from("-drive"), d.drive()])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_forms() {
        let p: Publish = "6379:6379".parse().unwrap();
        assert_eq!(p.hostfwd(), "hostfwd=tcp:127.0.0.1:6379-:6379");
        let p: Publish = "0.0.0.0:8080:80/tcp".parse().unwrap();
        assert_eq!(p.hostfwd(), "hostfwd=tcp:0.0.0.0:8080-:80");
        let p: Publish = "5353:53/udp".parse().unwrap();
        assert_eq!(p.hostfwd(), "hostfwd=udp:127.0.0.1:5353-:53");
        for bad in ["80", "a:b", "80:80/sctp", "0:80", "70000:80", ":80:80"] {
            let e = bad.parse::<Publish>().unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn disk_forms_and_creation() {
        let d: Disk = "data.img,size=4G".parse().unwrap();
        assert_eq!(d.size, Some(4 << 30));
        assert_eq!(d.drive(), "file=data.img,format=raw,if=virtio");
        assert!("x.img,size=lots".parse::<Disk>().is_err());
        assert!(",size=1G".parse::<Disk>().is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.img");
        let d = Disk {
            path: path.clone(),
            size: Some(1 << 20),
        };
        d.ensure().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);
        std::fs::write(&path, b"keep").unwrap();
        d.ensure().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"keep", "never overwritten");
    }
}
