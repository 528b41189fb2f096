//! examples/redis-os.yml (x86_64): the guest gets its address by DHCP, the
//! sysctl defaults apply, and the host's redis-cli reaches redis through
//! `--publish`: PING, then SET and GET. Then a clean poweroff.
//!
//! Opt-in: `HULL_VM_TESTS=1 cargo test -p hull-test-vm --test redis_os`.

mod common;

use std::process::Command;
use std::time::Duration;

use hull_test_vm::VmTest;

const BOOT: Duration = Duration::from_secs(90);

#[test]
#[cfg_attr(not(vm_tests), ignore = "boots a VM: set HULL_VM_TESTS=1")]
fn redis_os_x86_64() {
    let t = VmTest::new("x86_64");
    let prefix = t.build(&common::example("redis-os.yml"));
    let port = common::free_port();
    let mut cfg = t.config(&prefix);
    cfg.publish = vec![format!("{port}:6379").parse().expect("publish")];
    let mut vm = t.start(cfg);

    vm.expect("sysctl | sysctl: vm.overcommit_memory = 1", BOOT)
        .expect("sysctl applied the defaults");
    vm.expect("dhcpcd | dhcpcd: eth0 has 10.0.2.15/", BOOT)
        .expect("DHCP lease");
    vm.expect("hull: all services started", BOOT)
        .expect("services up");
    vm.wait_for_line(
        "getty | getty: INSECURE=true: a root shell without password on: ttyS0",
        BOOT,
    );

    let cli = |args: &[&str]| {
        let mut c = Command::new("redis-cli");
        c.args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args);
        c
    };
    let pong = common::retry(
        Duration::from_secs(30),
        || cli(&["ping"]),
        |o| common::stdout(o) == "PONG",
    );
    assert_eq!(common::stdout(&pong), "PONG", "{pong:?}");
    let set = common::run(&mut cli(&["set", "hull-key", "value-42"]));
    assert_eq!(common::stdout(&set), "OK", "{set:?}");
    let get = common::run(&mut cli(&["get", "hull-key"]));
    assert_eq!(common::stdout(&get), "value-42", "{get:?}");

    vm.powerdown().expect("QMP system_powerdown");
    vm.expect("hull: shutdown complete", Duration::from_secs(30))
        .expect("clean shutdown");
    let status = vm.wait_exit(Duration::from_secs(30)).expect("QEMU exits");
    assert!(status.success(), "QEMU exit status {status}");
}
