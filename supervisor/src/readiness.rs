//! Readiness checks: the sd_notify socket, a file appearing, a TCP port
//! accepting connections.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;

use nix::sched::CloneFlags;

/// The guest-side directory holding a service's notify socket; the build
/// binds it into the container at [`contract::control::NOTIFY_SOCKET_IN_CONTAINER`]'s folder.
pub fn notify_dir(name: &str) -> String {
    contract::control::notify_dir(name)
}

/// Creates the service's notify socket (a datagram socket, as systemd's).
pub fn notify_socket(name: &str) -> std::io::Result<UnixDatagram> {
    let dir = notify_dir(name);
    fs::create_dir_all(&dir)?;
    let path = format!("{dir}/notify.sock");
    let _ = fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path)?;
    sock.set_nonblocking(true)?;
    // Only this service sees the socket; its user may not be root.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666))?;
    Ok(sock)
}

/// Reads pending notify messages; true when one says `READY=1`.
pub fn notified_ready(sock: &UnixDatagram) -> bool {
    let mut buf = [0u8; 4096];
    let mut ready = false;
    while let Ok(n) = sock.recv(&mut buf) {
        let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
        if text.lines().any(|l| l.trim() == "READY=1") {
            ready = true;
        }
    }
    ready
}

/// Whether 127.0.0.1:PORT accepts a connection in the network namespace of
/// `pid` (entered for the duration of the connect, then left again).
pub fn tcp_accepts(pid: i32, port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let timeout = std::time::Duration::from_millis(100);
    let ours = fs::read_link("/proc/self/ns/net").ok();
    let theirs = fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    if ours == theirs {
        return std::net::TcpStream::connect_timeout(&addr, timeout).is_ok();
    }
    let (Ok(own), Ok(target)) = (
        fs::File::open("/proc/self/ns/net"),
        fs::File::open(format!("/proc/{pid}/ns/net")),
    ) else {
        return false;
    };
    // PID 1 is single-threaded, so switching its network namespace for one
    // connect affects nothing else.
    if nix::sched::setns(target.as_fd(), CloneFlags::CLONE_NEWNET).is_err() {
        return false;
    }
    let ok = std::net::TcpStream::connect_timeout(&addr, timeout).is_ok();
    let _ = nix::sched::setns(own.as_fd(), CloneFlags::CLONE_NEWNET);
    ok
}
