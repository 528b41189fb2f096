//! The guest's initramfs: a deterministic, gzip-compressed **newc** cpio
//! archive of a [`fstree::Tree`] ([`cpio`]), and ([`modules`]) the subset of
//! the kernel's modules that goes into it. Its neighbours: `hull build`
//! assembles the root as a tree and calls both; the guest's `hull-init`
//! reads `hull-modules.json` at boot.
//!
//! # Why the cpio writer is hand-written
//! The `cpio` crate (0.4) can set every newc field, but it takes entry names as
//! `&str`, so a non-UTF-8 file name from a container image could not be
//! written, and it leaves hard-link grouping, inode numbering and `nlink` to the
//! caller anyway. The format itself is a 110-byte ASCII header, the name and
//! the data, each padded to 4 bytes: writing it here is shorter than adapting
//! the crate. The crate is still used by the tests as an independent reader.
//!
//! # What the archive looks like
//! - entries in tree order (parents before children), without a `.` entry (the
//!   kernel's rootfs already exists);
//! - inode numbers assigned sequentially from 1 in that order; hard links share
//!   the inode of their target, `nlink` counts every name, and, as GNU cpio
//!   does for newc, the data goes with the *last* name of the group (the
//!   others have size 0). The kernel's unpacker (`init/initramfs.c`,
//!   `maybe_link`) links later names to the first and writes the data into
//!   the shared inode when it arrives; `cpio -i` defers the empty names until
//!   the data comes;
//! - a directory's `nlink` is 2 plus its subdirectories, every other `nlink`
//!   is 1 (or the group size for hard links);
//! - device numbers 0, `mtime` fixed, uid/gid/permissions from the entry, the
//!   file type bits from the entry's kind; a symlink's data is its target;
//! - then `TRAILER!!!`. No padding to a 512-byte block: the kernel doesn't
//!   need it.

pub mod cpio;
pub mod modules;

use std::path::PathBuf;

pub use cpio::{write_cpio, write_cpio_uncompressed, GZIP_LEVEL};

#[derive(Debug, thiserror::Error)]
pub enum InitrdError {
    #[error("writing the initramfs")]
    Io(#[from] std::io::Error),
    #[error("{path:?} is {size} bytes: newc cpio can't hold a file of 4 GiB or more")]
    TooLarge { path: PathBuf, size: u64 },
    #[error("hard link {link:?} points at {target:?}, which is not a regular file in the tree")]
    BadHardlink { link: PathBuf, target: PathBuf },
    #[error("the tree has more entries than newc's 32-bit inode numbers can count")]
    TooManyEntries,
}
