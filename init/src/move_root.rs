//! Makes the real root: the initramfs content moves into a tmpfs, which is
//! then moved onto `/` and made read-only.
//!
//! Why not keep the initramfs as root: `pivot_root(2)` refuses to leave it,
//! and every container pivots (no-pivot isolates less). Why delete while
//! copying: the initramfs is RAM, so each file copied and removed keeps the
//! peak at one copy of the image plus one file (what switch_root does).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{lchown, symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

const NEW_ROOT: &str = "/hullroot";
/// Mounted filesystems that are moved, not copied.
const MOVED: [&str; 3] = ["dev", "proc", "sys"];

/// A step of making the root that failed.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("mkdir {NEW_ROOT}")]
    MountPoint(#[source] io::Error),
    #[error("mount tmpfs on {NEW_ROOT}")]
    Tmpfs(#[source] nix::Error),
    #[error("reading /")]
    ReadRoot(#[source] io::Error),
    #[error("{}", .0.display())]
    Stat(PathBuf, #[source] io::Error),
    #[error("mkdir {}", .0.display())]
    Mkdir(PathBuf, #[source] io::Error),
    #[error("read_dir {}", .0.display())]
    ReadDir(PathBuf, #[source] io::Error),
    #[error("readlink {}", .0.display())]
    Readlink(PathBuf, #[source] io::Error),
    #[error("symlink {}", .0.display())]
    Symlink(PathBuf, #[source] io::Error),
    #[error("link {}", .0.display())]
    Link(PathBuf, #[source] io::Error),
    #[error("copy {}", .0.display())]
    Copy(PathBuf, #[source] io::Error),
    #[error("chown {}", .0.display())]
    Chown(PathBuf, #[source] io::Error),
    #[error("chmod {}", .0.display())]
    Chmod(PathBuf, #[source] io::Error),
    #[error("moving /{0}")]
    Move(&'static str, #[source] nix::Error),
    #[error("chdir {0}")]
    Chdir(&'static str, #[source] nix::Error),
    #[error("moving the new root onto /")]
    MoveRoot(#[source] nix::Error),
    #[error("chroot")]
    Chroot(#[source] nix::Error),
    #[error("remounting / read-only")]
    ReadOnly(#[source] nix::Error),
}

pub fn into_tmpfs() -> Result<(), RootError> {
    fs::create_dir_all(NEW_ROOT).map_err(RootError::MountPoint)?;
    mount(
        Some("rootfs"),
        NEW_ROOT,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0755"),
    )
    .map_err(RootError::Tmpfs)?;
    let mut links = HashMap::new();
    let entries = fs::read_dir("/").map_err(RootError::ReadRoot)?;
    let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        let n = name.to_string_lossy();
        if n == NEW_ROOT.trim_start_matches('/') || MOVED.contains(&n.as_ref()) {
            continue;
        }
        let from = Path::new("/").join(&name);
        move_entry(&from, &Path::new(NEW_ROOT).join(&name), &mut links)?;
    }
    for m in MOVED {
        let target = format!("{NEW_ROOT}/{m}");
        let _ = fs::create_dir_all(&target);
        mount(
            Some(format!("/{m}").as_str()),
            target.as_str(),
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(|e| RootError::Move(m, e))?;
    }
    nix::unistd::chdir(NEW_ROOT).map_err(|e| RootError::Chdir(NEW_ROOT, e))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(RootError::MoveRoot)?;
    nix::unistd::chroot(".").map_err(RootError::Chroot)?;
    nix::unistd::chdir("/").map_err(|e| RootError::Chdir("/", e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(RootError::ReadOnly)?;
    Ok(())
}

/// Copies `from` to `to` with mode and ownership, then removes `from`.
/// Hard links stay hard links (`links` maps inode to the first copy).
fn move_entry(from: &Path, to: &Path, links: &mut HashMap<u64, PathBuf>) -> Result<(), RootError> {
    let meta = fs::symlink_metadata(from).map_err(|e| RootError::Stat(from.to_path_buf(), e))?;
    let ft = meta.file_type();
    let at = |step: fn(PathBuf, io::Error) -> RootError| move |e| step(to.to_path_buf(), e);
    if ft.is_dir() {
        fs::create_dir(to).map_err(at(RootError::Mkdir))?;
        let mut names: Vec<_> = fs::read_dir(from)
            .map_err(at(RootError::ReadDir))?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for name in names {
            move_entry(&from.join(&name), &to.join(&name), links)?;
        }
        let _ = fs::remove_dir(from);
    } else if ft.is_symlink() {
        let target = fs::read_link(from).map_err(at(RootError::Readlink))?;
        symlink(&target, to).map_err(at(RootError::Symlink))?;
        let _ = fs::remove_file(from);
    } else if ft.is_file() {
        if meta.nlink() > 1 {
            if let Some(first) = links.get(&meta.ino()) {
                fs::hard_link(first, to).map_err(at(RootError::Link))?;
                let _ = fs::remove_file(from);
                return Ok(());
            }
            links.insert(meta.ino(), to.to_path_buf());
        }
        fs::copy(from, to).map_err(at(RootError::Copy))?;
        let _ = fs::remove_file(from);
    } else {
        // Device nodes, FIFOs and sockets have no place in an image root.
        return Ok(());
    }
    lchown(to, Some(meta.uid()), Some(meta.gid())).map_err(at(RootError::Chown))?;
    if !ft.is_symlink() {
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(at(RootError::Chmod))?;
    }
    Ok(())
}
