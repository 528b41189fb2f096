//! The few system calls hull-init makes that nix has no safe wrapper for,
//! plus small helpers around the ones it has.

use std::ffi::CString;
use std::os::fd::AsRawFd;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

/// Makes /dev/console our stdin, stdout and stderr. The kernel opens it
/// before starting /init only if the initramfs has the node; ours does not
/// (devtmpfs provides it), so stage 1 does it once /dev is mounted.
pub fn attach_console() {
    if let Ok(fd) = open(
        "/dev/console",
        OFlag::O_RDWR | OFlag::O_NOCTTY,
        Mode::empty(),
    ) {
        for target in 0..3 {
            let _ = nix::unistd::dup2(fd, target);
        }
        if fd > 2 {
            let _ = nix::unistd::close(fd);
        }
    }
}

/// Replaces this process (still PID 1) with `/sbin/hull-init ARG` in the new root.
/// Returns only on failure.
pub fn exec_self_stage2(arg: &str, extra: &[String]) -> nix::Error {
    let path = CString::new("/sbin/hull-init").unwrap_or_default();
    let mut argv = vec![path.clone(), CString::new(arg).unwrap_or_default()];
    argv.extend(
        extra
            .iter()
            .map(|a| CString::new(a.as_str()).unwrap_or_default()),
    );
    match nix::unistd::execv(&path, &argv) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

pub fn set_hostname(name: &str) {
    let name = std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| name.to_string());
    let _ = nix::unistd::sethostname(name);
}

/// Sets IFF_UP on `lo`. An ioctl is enough for this; a netlink client would
/// be a dependency for one flag.
pub fn loopback_up() -> std::io::Result<()> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is a plain C struct for which all-zero bytes is a valid value.
    let mut req: nix::libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as nix::libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags member of the
    // ifreq we own; the fd is a valid socket for the duration of the call.
    if unsafe { nix::libc::ioctl(sock.as_raw_fd(), nix::libc::SIOCGIFFLAGS as _, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the flags member of the union is the one SIOCGIFFLAGS just filled.
    unsafe { req.ifr_ifru.ifru_flags |= nix::libc::IFF_UP as nix::libc::c_short };
    // SAFETY: as above; SIOCSIFFLAGS only reads the ifreq.
    if unsafe { nix::libc::ioctl(sock.as_raw_fd(), nix::libc::SIOCSIFFLAGS as _, &req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
