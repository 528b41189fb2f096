//! A tiny `newc` cpio writer, so tests can build an initramfs without hull
//! (or the host's `cpio`).

use std::io::Write;

/// Path, mode (type and permissions), content, device numbers.
type Entry = (String, u32, Vec<u8>, (u32, u32));

/// Files of an initramfs, written in the order they were added.
#[derive(Debug, Default)]
pub struct Initramfs {
    entries: Vec<Entry>,
}

impl Initramfs {
    pub fn new() -> Initramfs {
        Initramfs::default()
    }

    /// A directory (mode 0755).
    pub fn dir(mut self, path: &str) -> Self {
        self.entries
            .push((path.into(), 0o040755, Vec::new(), (0, 0)));
        self
    }

    /// A regular file with permission bits `perm` (e.g. 0o755).
    pub fn file(mut self, path: &str, perm: u32, data: impl Into<Vec<u8>>) -> Self {
        self.entries
            .push((path.into(), 0o100000 | (perm & 0o7777), data.into(), (0, 0)));
        self
    }

    /// A symbolic link `path` -> `target`.
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.entries
            .push((path.into(), 0o120777, target.as_bytes().to_vec(), (0, 0)));
        self
    }

    /// A character device node, e.g. `/dev/console` (5, 1).
    pub fn chardev(mut self, path: &str, major: u32, minor: u32) -> Self {
        self.entries
            .push((path.into(), 0o020600, Vec::new(), (major, minor)));
        self
    }

    /// The uncompressed archive (the kernel accepts it as is).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (name, mode, data, rdev)) in self.entries.iter().enumerate() {
            header(&mut out, i as u32 + 1, *mode, name, data, *rdev);
        }
        header(&mut out, 0, 0, "TRAILER!!!", &[], (0, 0));
        out
    }
}

fn header(out: &mut Vec<u8>, ino: u32, mode: u32, name: &str, data: &[u8], rdev: (u32, u32)) {
    let name = name.trim_start_matches('/');
    let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
    let fields = [
        ino,
        mode,
        0,
        0,
        nlink,
        0,
        data.len() as u32,
        0,
        0,
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        let _ = write!(out, "{f:08x}");
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() & 3 != 0 {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_layout() {
        let b = Initramfs::new().file("/init", 0o755, "hi").to_bytes();
        assert_eq!(&b[..6], b"070701");
        // Header is 110 bytes, then "init\0" padded to 4 -> 116, then data.
        assert_eq!(&b[116..118], b"hi");
        assert!(b.windows(10).any(|w| w == b"TRAILER!!!"));
        assert_eq!(b.len() % 4, 0);
    }
}
