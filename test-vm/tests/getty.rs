//! examples/getty.yml (x86_64): a test types at a serial console and gets a
//! root shell without a password (INSECURE=true) in the host's namespaces.
//!
//! The console typed at is a second serial port (ttyS1) on a unix socket, so
//! the test can write to it; the kernel command line names it as a console,
//! as a user's would name ttyS0.
//!
//! Opt-in: `HULL_VM_TESTS=1 cargo test -p hull-test-vm --test getty`.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use hull_test_vm::VmTest;

const BOOT: Duration = Duration::from_secs(90);

/// Reads from the console socket until `want` appears (returns everything read).
fn read_until(sock: &mut UnixStream, seen: &mut String, want: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    while !seen.contains(want) {
        if Instant::now() >= deadline {
            return false;
        }
        match sock.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("reading the console: {e}"),
        }
    }
    true
}

#[test]
#[cfg_attr(not(vm_tests), ignore = "boots a VM: set HULL_VM_TESTS=1")]
fn getty_x86_64() {
    let t = VmTest::new("x86_64");
    let yaml = common::example("getty.yml")
        .replace("cmdline: \"\"", "cmdline: \"console=ttyS0 console=ttyS1\"");
    let prefix = t.build(&yaml);
    let sock_path = t.dir().join("ttyS1.sock");
    let mut cfg = t.config(&prefix);
    cfg.extra_args = vec![
        "-chardev".into(),
        format!(
            "socket,id=ttys1,path={},server=on,wait=off",
            sock_path.display()
        ),
        "-serial".into(),
        "chardev:ttys1".into(),
    ];
    let mut vm = t.start(cfg);
    vm.expect("hull: all services started", BOOT)
        .expect("services up");
    vm.wait_for_line(
        "getty | getty: INSECURE=true: a root shell without password on: ttyS0 ttyS1",
        BOOT,
    );

    let mut sock = UnixStream::connect(&sock_path).expect("connect to ttyS1");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut seen = String::new();
    // The shell may have printed its prompt before we connected: ask again.
    let mut prompt = false;
    for _ in 0..30 {
        sock.write_all(b"\r").expect("type");
        if read_until(&mut sock, &mut seen, "# ", Duration::from_secs(2)) {
            prompt = true;
            break;
        }
    }
    assert!(prompt, "no shell prompt on ttyS1; got: {seen:?}");
    sock.write_all(b"echo answer-$((6*7)) uid-$(id -u) pid1-$(cat /proc/1/comm)\r")
        .expect("type");
    assert!(
        read_until(
            &mut sock,
            &mut seen,
            "answer-42 uid-0 pid1-hull-init",
            Duration::from_secs(20)
        ),
        "the shell did not run the command (root, host pid namespace); got: {seen:?}"
    );

    vm.powerdown().expect("QMP system_powerdown");
    vm.expect("hull: shutdown complete", Duration::from_secs(30))
        .expect("clean shutdown");
    let status = vm.wait_exit(Duration::from_secs(30)).expect("QEMU exits");
    assert!(status.success(), "QEMU exit status {status}");
}
