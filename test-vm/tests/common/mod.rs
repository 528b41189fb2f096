//! Helpers shared by the example tests: load an example with its `@pkg:`
//! references made absolute, pick free host ports, wait for host commands.

#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hull_test_vm::workspace_dir;

/// `examples/NAME`, its `@pkg:../pkg/` references pointing at this workspace.
pub fn example(name: &str) -> String {
    let ws = workspace_dir();
    let path = ws.join("examples").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.replace("\"@pkg:../pkg/", &format!("\"@pkg:{}/pkg/", ws.display()))
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e} (scripts/bootstrap installs it)"))
}

/// Runs `make()` until `ok(output)` or `timeout`; returns the last output.
pub fn retry(
    timeout: Duration,
    mut make: impl FnMut() -> Command,
    ok: impl Fn(&Output) -> bool,
) -> Output {
    let deadline = Instant::now() + timeout;
    loop {
        let out = run(&mut make());
        if ok(&out) || Instant::now() >= deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}
