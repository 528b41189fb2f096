//! Mount points in a container's rootfs. The guest's root (and so every
//! rootfs) is read-only, so the build makes every mount point, and a file
//! bound in needs a file to land on (runc would make one).

use std::path::{Path, PathBuf};

use config::{FileEntry, Located};
use fstree::{Entry, Kind, Tree, TreeError};

/// Makes each mount point (with the source of a bind) in `rootfs` that it
/// lacks; `root` (the guest's root so far) and `files` say whether a bind's
/// source is a file.
pub fn make_mount_points(
    rootfs: &mut Tree,
    points: Vec<(String, Option<String>)>,
    root: &Tree,
    files: &[Located<FileEntry>],
) -> Result<(), TreeError> {
    for (dest, bind_source) in points {
        if rootfs.contains(&dest) {
            continue;
        }
        let is_file = bind_source.is_some_and(|s| guest_path_is_file(root, files, &s));
        match Path::new(dest.trim_end_matches('/')).parent() {
            Some(parent) if is_file => {
                let parent = parent.to_string_lossy();
                if !parent.trim_matches('/').is_empty() && !rootfs.contains(parent.as_ref()) {
                    rootfs.mkdir_all(parent.as_ref(), 0o755)?;
                }
                rootfs.insert(dest.trim_matches('/'), Entry::file(Vec::new(), 0o644))?;
            }
            _ => rootfs.mkdir_all(&dest, 0o755)?,
        }
    }
    Ok(())
}

/// Whether `path` in the guest's root is a file, as far as the build knows:
/// the root assembled so far (init images) and the `files` section tell; a
/// symlink is followed inside the tree, and one leading out of it (such as
/// /etc/resolv.conf into /run) is taken for a file; a path made only at run
/// time (under /run, /var, ...) for a directory.
fn guest_path_is_file(root: &Tree, files: &[Located<FileEntry>], path: &str) -> bool {
    let mut p = PathBuf::from(path.trim_matches('/'));
    for hop in 0..16 {
        let key = p.to_string_lossy().to_string();
        if let Some(f) = files
            .iter()
            .rev()
            .find(|f| f.value.path.as_deref().map(|x| x.trim_matches('/')) == Some(key.as_str()))
        {
            return !f.value.directory;
        }
        match root.get(&key).map(|e| &e.kind) {
            Some(Kind::File(_)) | Some(Kind::Hardlink(_)) => return true,
            Some(Kind::Dir) => return false,
            Some(Kind::Symlink(t)) => {
                p = if t.is_absolute() {
                    t.strip_prefix("/").unwrap_or(t).to_path_buf()
                } else {
                    p.parent().unwrap_or(Path::new("")).join(t)
                };
            }
            None => return hop > 0 || is_device_path(&p),
        }
    }
    false
}

/// Whether a path the build cannot see names a device node: devtmpfs is
/// filled at boot, so anything under /dev except its usual subdirectories
/// (`/dev/kmsg`, `/dev/net/tun`, `/dev/fuse`, ...) is taken for a file.
fn is_device_path(path: &Path) -> bool {
    const DEV_DIRS: &[&str] = &[
        "pts",
        "shm",
        "mqueue",
        "input",
        "disk",
        "by-id",
        "by-uuid",
        "by-label",
        "by-path",
        "by-partuuid",
        "mapper",
        "net",
        "hugepages",
        "block",
        "char",
        "bus",
        "usb",
        "cpu",
        "dri",
        "snd",
        "vfio",
        "virtio-ports",
        "fd",
        "hull-notify",
    ];
    let path = path.strip_prefix("/").unwrap_or(path);
    path.starts_with("dev")
        && path != Path::new("dev")
        && path
            .file_name()
            .is_some_and(|n| !DEV_DIRS.contains(&n.to_string_lossy().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_nodes_are_files_and_dev_subdirectories_are_not() {
        let root = Tree::new();
        for dev in ["/dev/kmsg", "/dev/net/tun", "/dev/fuse", "/dev/console"] {
            assert!(guest_path_is_file(&root, &[], dev), "{dev}");
        }
        for dir in [
            "/dev",
            "/dev/net",
            "/dev/pts",
            "/dev/disk/by-id",
            "/var/run",
        ] {
            assert!(!guest_path_is_file(&root, &[], dir), "{dir}");
        }
    }
}
