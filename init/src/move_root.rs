//! Makes the real root: the initramfs content moves into a tmpfs, which is
//! then moved onto `/` and made read-only.
//!
//! Why not keep the initramfs as root: `pivot_root(2)` refuses to leave it,
//! and every container pivots (no-pivot isolates less). Why delete while
//! copying: the initramfs is RAM, so each file copied and removed keeps the
//! peak at one copy of the image plus one file (what switch_root does).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{lchown, symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

const NEW_ROOT: &str = "/hullroot";
/// Mounted filesystems that are moved, not copied.
const MOVED: [&str; 3] = ["dev", "proc", "sys"];

pub fn into_tmpfs() -> Result<(), String> {
    fs::create_dir_all(NEW_ROOT).map_err(|e| format!("mkdir {NEW_ROOT}: {e}"))?;
    mount(
        Some("rootfs"),
        NEW_ROOT,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0755"),
    )
    .map_err(|e| format!("mount tmpfs on {NEW_ROOT}: {e}"))?;
    let mut links = HashMap::new();
    let entries = fs::read_dir("/").map_err(|e| format!("reading /: {e}"))?;
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
        .map_err(|e| format!("moving /{m}: {e}"))?;
    }
    nix::unistd::chdir(NEW_ROOT).map_err(|e| format!("chdir {NEW_ROOT}: {e}"))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(|e| format!("moving the new root onto /: {e}"))?;
    nix::unistd::chroot(".").map_err(|e| format!("chroot: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|e| format!("remounting / read-only: {e}"))?;
    Ok(())
}

/// Copies `from` to `to` with mode and ownership, then removes `from`.
/// Hard links stay hard links (`links` maps inode to the first copy).
fn move_entry(from: &Path, to: &Path, links: &mut HashMap<u64, PathBuf>) -> Result<(), String> {
    let meta = fs::symlink_metadata(from).map_err(|e| format!("{}: {e}", from.display()))?;
    let ft = meta.file_type();
    let err = |what: &str, e: std::io::Error| format!("{what} {}: {e}", to.display());
    if ft.is_dir() {
        fs::create_dir(to).map_err(|e| err("mkdir", e))?;
        let mut names: Vec<_> = fs::read_dir(from)
            .map_err(|e| err("read_dir", e))?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for name in names {
            move_entry(&from.join(&name), &to.join(&name), links)?;
        }
        let _ = fs::remove_dir(from);
    } else if ft.is_symlink() {
        let target = fs::read_link(from).map_err(|e| err("readlink", e))?;
        symlink(&target, to).map_err(|e| err("symlink", e))?;
        let _ = fs::remove_file(from);
    } else if ft.is_file() {
        if meta.nlink() > 1 {
            if let Some(first) = links.get(&meta.ino()) {
                fs::hard_link(first, to).map_err(|e| err("link", e))?;
                let _ = fs::remove_file(from);
                return Ok(());
            }
            links.insert(meta.ino(), to.to_path_buf());
        }
        fs::copy(from, to).map_err(|e| err("copy", e))?;
        let _ = fs::remove_file(from);
    } else {
        // Device nodes, FIFOs and sockets have no place in an image root.
        return Ok(());
    }
    lchown(to, Some(meta.uid()), Some(meta.gid())).map_err(|e| err("chown", e))?;
    if !ft.is_symlink() {
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| err("chmod", e))?;
    }
    Ok(())
}
