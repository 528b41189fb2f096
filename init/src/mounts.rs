//! The filesystems PID 1 mounts itself, in the order it needs them.

use std::fs;
use std::os::unix::fs::{symlink, DirBuilderExt};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// A filesystem PID 1 needs could not be mounted.
#[derive(Debug, thiserror::Error)]
#[error("mount {fstype} on {target}")]
pub struct MountError {
    fstype: String,
    target: String,
    #[source]
    errno: nix::Error,
}

impl MountError {
    pub fn new(fstype: &str, target: &str, errno: nix::Error) -> Self {
        MountError {
            fstype: fstype.to_string(),
            target: target.to_string(),
            errno,
        }
    }
}

fn mkdir(path: &str, mode: u32) {
    let _ = fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path);
}

fn mnt(
    source: &str,
    target: &str,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), MountError> {
    mount(Some(source), target, Some(fstype), flags, data)
        .map_err(|errno| MountError::new(fstype, target, errno))
}

/// Stage 1: /dev first (so the console exists), then /proc and /sys.
pub fn early() -> Result<(), MountError> {
    mkdir("/dev", 0o755);
    // devtmpfs may already be mounted by the kernel (CONFIG_DEVTMPFS_MOUNT); EBUSY is fine.
    let _ = mount(
        Some("devtmpfs"),
        "/dev",
        Some("devtmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=0755"),
    );
    crate::sys::attach_console();
    mkdir("/proc", 0o555);
    mkdir("/sys", 0o555);
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mnt("proc", "/proc", "proc", nosuid, None)?;
    mnt("sysfs", "/sys", "sysfs", nosuid, None)?;
    Ok(())
}

/// Stage 2: the writable scratch space of a read-only root, and the rest of /dev.
pub fn scratch() -> Result<(), MountError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mnt("tmpfs", "/run", "tmpfs", flags, Some("mode=0755"))?;
    mnt("tmpfs", "/tmp", "tmpfs", flags, Some("mode=1777"))?;
    mnt("tmpfs", "/var", "tmpfs", flags, Some("mode=0755"))?;
    for d in [
        "/run/hull",
        "/run/resolvconf",
        "/var/log",
        "/var/lib",
        "/var/tmp",
    ] {
        mkdir(d, 0o755);
    }
    let _ = fs::write("/run/resolvconf/resolv.conf", b"");
    mkdir("/dev/pts", 0o755);
    mkdir("/dev/shm", 0o1777);
    mkdir("/dev/mqueue", 0o1777);
    mnt(
        "devpts",
        "/dev/pts",
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    mnt("shm", "/dev/shm", "tmpfs", flags, Some("mode=1777"))?;
    mnt(
        "mqueue",
        "/dev/mqueue",
        "mqueue",
        flags | MsFlags::MS_NOEXEC,
        None,
    )?;
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        let _ = symlink(target, link);
    }
    mnt(
        "cgroup2",
        "/sys/fs/cgroup",
        "cgroup2",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("nsdelegate"),
    )?;
    // Hand every controller down so containers' cgroups can use them.
    if let Ok(controllers) = fs::read_to_string("/sys/fs/cgroup/cgroup.controllers") {
        let enable: Vec<String> = controllers
            .split_whitespace()
            .map(|c| format!("+{c}"))
            .collect();
        let _ = fs::write("/sys/fs/cgroup/cgroup.subtree_control", enable.join(" "));
    }
    Ok(())
}

/// Every filesystem but the root and the kernel's own (/proc, /sys, /dev),
/// deepest first (the reverse of /proc/self/mounts), so that a persistent
/// disk mounted by a container is cleanly unmounted before the poweroff; a
/// busy one is detached as a last resort (it was synced just before).
pub fn unmount_writable() {
    let table = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let targets: Vec<String> = table
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        // /proc/self/mounts escapes spaces and such as octal.
        .map(|t| t.replace("\\040", " "))
        .filter(|t| !matches!(t.as_str(), "/" | "/proc" | "/sys" | "/dev"))
        .collect();
    for target in targets.iter().rev() {
        if umount2(target.as_str(), MntFlags::empty()).is_err() {
            let _ = umount2(target.as_str(), MntFlags::MNT_DETACH);
        }
    }
}
