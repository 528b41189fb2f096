//! The newc cpio writer (see the crate docs for the exact layout).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use fstree::{Entry, Kind, Tree};

use crate::InitrdError;

const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

/// The gzip level of [`write_cpio`]. Fixed: the output must not depend on the host.
pub const GZIP_LEVEL: u32 = 9;

/// Writes `tree` as a gzip-compressed newc cpio archive for the kernel's
/// initramfs unpacker, with every mtime set to `mtime`, and returns the writer.
///
/// The gzip stream is deterministic: no file name and mtime 0 in its header,
/// level [`GZIP_LEVEL`], and the pure-Rust backend pinned by `Cargo.lock`
/// (another deflate implementation could compress differently).
pub fn write_cpio<W: Write>(tree: &Tree, mtime: u32, out: W) -> Result<W, InitrdError> {
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(out, flate2::Compression::new(GZIP_LEVEL));
    let gz = write_cpio_uncompressed(tree, mtime, gz)?;
    Ok(gz.finish()?)
}

/// One resolved entry of the archive, before it is written.
struct Record<'a> {
    path: &'a Path,
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    data: &'a [u8],
}

/// Writes `tree` as an uncompressed newc cpio archive (see the crate docs for
/// the exact layout) and returns the writer.
pub fn write_cpio_uncompressed<W: Write>(
    tree: &Tree,
    mtime: u32,
    mut out: W,
) -> Result<W, InitrdError> {
    // Hard-link groups: the target file's path (as the tree spells it) -> every
    // name of the group, target included, in tree order.
    let mut groups: BTreeMap<PathBuf, Vec<&Path>> = BTreeMap::new();
    for (path, entry) in tree.iter() {
        if let Kind::Hardlink(target) = &entry.kind {
            let bad = || InitrdError::BadHardlink {
                link: path.clone(),
                target: target.clone(),
            };
            let key = fstree::clean_path(target).ok_or_else(bad)?;
            if !matches!(
                tree.get(&key),
                Some(Entry {
                    kind: Kind::File(_),
                    ..
                })
            ) {
                return Err(bad());
            }
            groups.entry(key).or_default().push(path);
        }
    }
    let mut group_of: HashMap<&Path, &Path> = HashMap::new();
    for (path, entry) in tree.iter() {
        if let (Kind::File(_), Some(links)) = (&entry.kind, groups.get_mut(path)) {
            links.push(path);
        }
    }
    for links in groups.values_mut() {
        links.sort();
    }
    for (target, links) in &groups {
        for l in links {
            group_of.insert(l, target.as_path());
        }
    }
    // The last name (in tree order) of each group carries the data.
    let last_of: HashMap<&Path, &Path> = groups
        .iter()
        .filter_map(|(t, links)| links.last().map(|l| (t.as_path(), *l)))
        .collect();

    // Directory link counts: 2 + subdirectories.
    let mut subdirs: HashMap<&Path, u32> = HashMap::new();
    for (path, entry) in tree.iter() {
        if matches!(entry.kind, Kind::Dir) {
            if let Some(parent) = path.parent() {
                *subdirs.entry(parent).or_default() += 1;
            }
        }
    }

    let mut next_ino: u32 = 1;
    let mut group_ino: HashMap<&Path, u32> = HashMap::new();
    for (path, entry) in tree.iter() {
        let rec = match &entry.kind {
            Kind::Dir => Record {
                path,
                ino: take_ino(&mut next_ino)?,
                mode: S_IFDIR | (entry.mode & 0o7777),
                uid: entry.uid,
                gid: entry.gid,
                nlink: 2 + subdirs.get(path.as_path()).copied().unwrap_or(0),
                data: &[],
            },
            Kind::Symlink(target) => Record {
                path,
                ino: take_ino(&mut next_ino)?,
                mode: S_IFLNK | (entry.mode & 0o7777),
                uid: entry.uid,
                gid: entry.gid,
                nlink: 1,
                data: target.as_os_str().as_bytes(),
            },
            Kind::File(_) | Kind::Hardlink(_) => {
                match group_of.get(path.as_path()) {
                    None => {
                        let Kind::File(data) = &entry.kind else {
                            // Unreachable: every hard link is in a group.
                            continue;
                        };
                        Record {
                            path,
                            ino: take_ino(&mut next_ino)?,
                            mode: S_IFREG | (entry.mode & 0o7777),
                            uid: entry.uid,
                            gid: entry.gid,
                            nlink: 1,
                            data,
                        }
                    }
                    Some(target) => {
                        // Every name of the group carries the target's metadata:
                        // they are one inode (and the kernel matches links by mode).
                        let (meta, data) = match tree.get(target) {
                            Some(
                                e @ Entry {
                                    kind: Kind::File(d),
                                    ..
                                },
                            ) => (e, d.as_slice()),
                            _ => {
                                return Err(InitrdError::BadHardlink {
                                    link: path.clone(),
                                    target: target.to_path_buf(),
                                })
                            }
                        };
                        let ino = match group_ino.get(target) {
                            Some(i) => *i,
                            None => {
                                let i = take_ino(&mut next_ino)?;
                                group_ino.insert(target, i);
                                i
                            }
                        };
                        let links = groups.get(*target).map_or(1, Vec::len);
                        let is_last = last_of.get(target).copied() == Some(path.as_path());
                        Record {
                            path,
                            ino,
                            mode: S_IFREG | (meta.mode & 0o7777),
                            uid: meta.uid,
                            gid: meta.gid,
                            nlink: u32::try_from(links).map_err(|_| InitrdError::TooManyEntries)?,
                            data: if is_last { data } else { &[] },
                        }
                    }
                }
            }
        };
        write_record(&mut out, &rec, mtime)?;
    }
    write_header(&mut out, b"TRAILER!!!", 0, 0, 0, 0, 1, 0, 0)?;
    Ok(out)
}

fn take_ino(next: &mut u32) -> Result<u32, InitrdError> {
    let i = *next;
    *next = next.checked_add(1).ok_or(InitrdError::TooManyEntries)?;
    Ok(i)
}

fn write_record<W: Write>(out: &mut W, r: &Record<'_>, mtime: u32) -> Result<(), InitrdError> {
    let size = u32::try_from(r.data.len()).map_err(|_| InitrdError::TooLarge {
        path: r.path.to_path_buf(),
        size: r.data.len() as u64,
    })?;
    write_header(
        out,
        r.path.as_os_str().as_bytes(),
        r.ino,
        r.mode,
        r.uid,
        r.gid,
        r.nlink,
        mtime,
        size,
    )?;
    out.write_all(r.data)?;
    out.write_all(&[0u8; 3][..pad4(r.data.len())])?;
    Ok(())
}

/// Bytes needed to bring `len` up to a multiple of 4.
fn pad4(len: usize) -> usize {
    (4 - len % 4) % 4
}

#[allow(clippy::too_many_arguments)]
fn write_header<W: Write>(
    out: &mut W,
    name: &[u8],
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    filesize: u32,
) -> Result<(), InitrdError> {
    let namesize = name.len() + 1;
    let fields = [
        ino,
        mode,
        uid,
        gid,
        nlink,
        mtime,
        filesize,
        0, // devmajor
        0, // devminor
        0, // rdevmajor
        0, // rdevminor
        u32::try_from(namesize).map_err(|_| InitrdError::TooManyEntries)?,
        0, // check (only used by the "070702" crc format)
    ];
    let mut header = Vec::with_capacity(110 + namesize + 3);
    header.extend_from_slice(b"070701");
    for f in fields {
        header.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    header.extend_from_slice(name);
    header.push(0);
    // The header (110 bytes) plus the name is padded to a multiple of 4.
    header.resize(header.len() + pad4(header.len()), 0);
    out.write_all(&header)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::process::Command;

    fn sample() -> Tree {
        let mut t = Tree::new();
        t.insert("etc", Entry::dir(0o755)).unwrap();
        t.insert(
            "etc/hostname",
            Entry {
                kind: Kind::File(b"hull\n".to_vec()),
                mode: 0o640,
                uid: 0,
                gid: 42,
            },
        )
        .unwrap();
        t.insert(
            "sbin/hull-init",
            Entry::file(b"#!/bin/sh\necho hi\n".to_vec(), 0o755),
        )
        .unwrap();
        t.insert("init", Entry::symlink("sbin/hull-init")).unwrap();
        // "aa-link" sorts before its target, "zz-link" after: the data must go with zz-link.
        t.insert(
            "bin/aa-link",
            Entry {
                kind: Kind::Hardlink("sbin/hull-init".into()),
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
        )
        .unwrap();
        t.insert(
            "zz-link",
            Entry {
                kind: Kind::Hardlink("sbin/hull-init".into()),
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
        )
        .unwrap();
        t.insert("empty", Entry::file(Vec::new(), 0o600)).unwrap();
        t.insert("tmp", Entry::dir(0o1777)).unwrap();
        t
    }

    /// Parses an uncompressed archive with the `cpio` crate (an independent reader).
    fn read_back(data: &[u8]) -> Vec<(String, u32, u32, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rest = data;
        loop {
            let mut r = cpio::NewcReader::new(rest).unwrap();
            let e = r.entry();
            if e.is_trailer() {
                rest = r.finish().unwrap();
                break;
            }
            let (name, ino, mode, nlink, mtime) = (
                e.name().to_string(),
                e.ino(),
                e.mode(),
                e.nlink(),
                e.mtime(),
            );
            assert_eq!((e.dev_major(), e.dev_minor(), e.rdev_major()), (0, 0, 0));
            let mut body = Vec::new();
            r.read_to_end(&mut body).unwrap();
            out.push((name, ino, mode, nlink, mtime, body));
            rest = r.finish().unwrap();
        }
        assert!(rest.is_empty(), "bytes after the trailer");
        out
    }

    #[test]
    fn newc_layout_inodes_and_hardlinks() {
        let raw = write_cpio_uncompressed(&sample(), 1234, Vec::new()).unwrap();
        assert_eq!(raw.len() % 4, 0);
        assert_eq!(&raw[..6], b"070701");
        let entries = read_back(&raw);
        let names: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/aa-link",
                "empty",
                "etc",
                "etc/hostname",
                "init",
                "sbin",
                "sbin/hull-init",
                "tmp",
                "zz-link"
            ]
        );
        let get = |n: &str| entries.iter().find(|e| e.0 == n).unwrap();
        // Sequential inodes; the hard-link group takes its number at its first name.
        assert_eq!(get("bin").1, 1);
        assert_eq!(get("bin/aa-link").1, 2);
        assert_eq!(get("empty").1, 3);
        assert_eq!(get("sbin/hull-init").1, 2);
        assert_eq!(get("zz-link").1, 2);
        assert_eq!(get("sbin").1, 7);
        assert_eq!(get("tmp").1, 8);
        for n in ["bin/aa-link", "sbin/hull-init", "zz-link"] {
            assert_eq!(get(n).2, 0o100755);
            assert_eq!(get(n).3, 3);
        }
        assert!(get("bin/aa-link").5.is_empty());
        assert!(get("sbin/hull-init").5.is_empty());
        assert_eq!(get("zz-link").5, b"#!/bin/sh\necho hi\n");
        assert_eq!(get("init").2, 0o120777);
        assert_eq!(get("init").5, b"sbin/hull-init");
        assert_eq!(get("tmp").2, 0o041777);
        assert_eq!(get("tmp").3, 2);
        assert_eq!(get("etc/hostname").2, 0o100640);
        assert!(entries.iter().all(|e| e.4 == 1234));
    }

    #[test]
    fn gzip_output_is_deterministic() {
        let a = write_cpio(&sample(), 0, Vec::new()).unwrap();
        let b = write_cpio(&sample().clone(), 0, Vec::new()).unwrap();
        assert_eq!(a, b);
        // gzip magic, deflate, no FNAME flag, mtime 0.
        assert_eq!(&a[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&a[4..8], &[0, 0, 0, 0]);
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(a.as_slice())
            .read_to_end(&mut raw)
            .unwrap();
        assert_eq!(
            raw,
            write_cpio_uncompressed(&sample(), 0, Vec::new()).unwrap()
        );
    }

    #[test]
    fn dangling_hardlink_is_an_error() {
        let mut t = Tree::new();
        t.insert(
            "x",
            Entry {
                kind: Kind::Hardlink("nope".into()),
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
        )
        .unwrap();
        assert!(matches!(
            write_cpio_uncompressed(&t, 0, Vec::new()),
            Err(InitrdError::BadHardlink { .. })
        ));
    }

    fn have(tool: &str) -> bool {
        Command::new(tool).arg("--version").output().is_ok()
    }

    /// Extracts with GNU cpio and checks what lands on disk;
    /// then reads the result back with `fstree::tree_from_dir`.
    #[test]
    fn gnu_cpio_extracts_it() {
        // A test that skipped itself would report ok without checking
        // anything: scripts/bootstrap installs cpio.
        assert!(
            have("cpio"),
            "GNU cpio is not installed (scripts/bootstrap installs it)"
        );
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("initrd.img");
        std::fs::write(
            &img,
            write_cpio(&sample(), 1_000_000_000, Vec::new()).unwrap(),
        )
        .unwrap();
        if have("file") {
            let out = Command::new("file").arg(&img).output().unwrap();
            let s = String::from_utf8_lossy(&out.stdout);
            assert!(s.contains("gzip compressed data"), "{s}");
        }
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let raw = write_cpio_uncompressed(&sample(), 1_000_000_000, Vec::new()).unwrap();
        let mut child = Command::new("cpio")
            .args(["-idm", "--quiet", "--no-absolute-filenames"])
            .current_dir(&root)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&raw).unwrap();
        assert!(child.wait().unwrap().success());

        use std::os::unix::fs::MetadataExt;
        let md = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap();
        assert_eq!(std::fs::read(root.join("etc/hostname")).unwrap(), b"hull\n");
        assert_eq!(md("etc/hostname").mode() & 0o7777, 0o640);
        assert_eq!(md("tmp").mode() & 0o7777, 0o1777);
        assert_eq!(
            std::fs::read_link(root.join("init")).unwrap(),
            Path::new("sbin/hull-init")
        );
        for p in ["sbin/hull-init", "bin/aa-link", "zz-link"] {
            assert_eq!(
                std::fs::read(root.join(p)).unwrap(),
                b"#!/bin/sh\necho hi\n"
            );
            assert_eq!(md(p).nlink(), 3);
            assert_eq!(md(p).ino(), md("sbin/hull-init").ino());
            assert_eq!(md(p).mode() & 0o7777, 0o755);
        }
        assert_eq!(md("etc/hostname").mtime(), 1_000_000_000);

        // Round trip through the host: same tree (hard links point at the first name).
        let back = fstree::tree_from_dir(&root).unwrap();
        let mut expected = Tree::new();
        for (p, e) in sample().iter() {
            let mut e = e.clone();
            if p == Path::new("bin/aa-link") {
                e.kind = Kind::File(b"#!/bin/sh\necho hi\n".to_vec());
            } else if matches!(e.kind, Kind::Hardlink(_)) || p == Path::new("sbin/hull-init") {
                e.kind = Kind::Hardlink("bin/aa-link".into());
            }
            // Running as another user, cpio can't chown.
            e.uid = back.get(p).map_or(0, |b| b.uid);
            e.gid = back.get(p).map_or(0, |b| b.gid);
            expected.insert(p, e).unwrap();
        }
        assert_eq!(back, expected);
    }
}
