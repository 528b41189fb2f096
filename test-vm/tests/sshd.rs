//! examples/sshd.yml (x86_64): the host's ssh logs in with the key written
//! into the YAML and runs `uname -a` in the guest; password logins are not
//! even offered.
//!
//! Opt-in: `HULL_VM_TESTS=1 cargo test -p hull-test-vm --test sshd`.

mod common;

use std::process::Command;
use std::time::Duration;

use hull_test_vm::VmTest;

const BOOT: Duration = Duration::from_secs(90);

#[test]
#[cfg_attr(not(vm_tests), ignore = "boots a VM: set HULL_VM_TESTS=1")]
fn sshd_x86_64() {
    let t = VmTest::new("x86_64");
    let key = t.dir().join("id_ed25519");
    let keygen = common::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "hull-test", "-f"])
            .arg(&key),
    );
    assert!(keygen.status.success(), "{keygen:?}");
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    let yaml = common::example("sshd.yml");
    let placeholder = yaml
        .lines()
        .find(|l| l.contains("replace-me"))
        .expect("the example has a placeholder key")
        .to_string();
    let yaml = yaml.replace(
        &placeholder,
        &format!("    contents: \"{}\\n\"", public.trim()),
    );
    let prefix = t.build(&yaml);
    let port = common::free_port();
    let mut cfg = t.config(&prefix);
    cfg.publish = vec![format!("{port}:22").parse().expect("publish")];
    let mut vm = t.start(cfg);
    vm.expect("hull: all services started", BOOT)
        .expect("services up");

    let known_hosts = t.dir().join("known_hosts");
    let ssh = |extra: &[&str], command: &str| {
        let mut c = Command::new("ssh");
        c.args(["-p", &port.to_string()])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
            ])
            .args(extra)
            .args(["root@127.0.0.1", command]);
        c
    };
    let key_arg = key.to_string_lossy().into_owned();
    let login = common::retry(
        Duration::from_secs(60),
        || ssh(&["-i", &key_arg, "-o", "IdentitiesOnly=yes"], "uname -a"),
        |o| o.status.success(),
    );
    assert!(login.status.success(), "key login failed: {login:?}");
    let uname = common::stdout(&login);
    assert!(uname.starts_with("Linux "), "{uname}");
    assert!(uname.contains("x86_64"), "{uname}");

    // Without the key, asking for a password: the server offers only publickey.
    let password = common::run(&mut ssh(
        &[
            "-v",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "PubkeyAuthentication=no",
        ],
        "true",
    ));
    assert!(
        !password.status.success(),
        "password login worked: {password:?}"
    );
    let log = String::from_utf8_lossy(&password.stderr);
    let offered = log
        .lines()
        .find(|l| l.contains("Authentications that can continue:"))
        .unwrap_or_else(|| panic!("no authentication list in: {log}"));
    assert!(offered.contains("publickey"), "{offered}");
    assert!(!offered.contains("password"), "password offered: {offered}");

    vm.powerdown().expect("QMP system_powerdown");
    vm.expect("hull: shutdown complete", Duration::from_secs(30))
        .expect("clean shutdown");
    let status = vm.wait_exit(Duration::from_secs(30)).expect("QEMU exits");
    assert!(status.success(), "QEMU exit status {status}");
}
