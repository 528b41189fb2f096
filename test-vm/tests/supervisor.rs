//! The supervisor and the control API, in a booted guest (x86_64, TCG).
//!
//! `supervision_x86_64`, one boot checking many things: restarts with
//! growing delays and the start limit, `depends` gated by a `notify`
//! readiness, reverse-order stop, a service ignoring SIGTERM, an orphan
//! flood, and every `hull ctl` subcommand from the host (through the
//! virtio-serial port) and `hullctl` from inside the guest.
//!
//! `persistent_disk_x86_64`, two boots on one ext4 disk: a service that
//! traps SIGTERM writes a file at power-off; the next boot finds it whole.
//!
//! Opt-in (they boot real VMs): `HULL_VM_TESTS=1 cargo test -p hull-test-vm --test supervisor -- --test-threads=1`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hull_test_vm::{boot, busybox, header, hull_bin, hull_ctl, hull_ctl_ok, VmTest};

const BOOT: Duration = Duration::from_secs(90);

fn ps(state: &Path) -> serde_json::Value {
    serde_json::from_str(&hull_ctl_ok(state, &["ps", "--json"])).expect("ps --json is JSON")
}

fn service<'a>(ps: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    ps.as_array()
        .expect("ps is a list")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in ps: {ps}"))
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn events(state: &Path) -> Vec<serde_json::Value> {
    hull_ctl_ok(state, &["events", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("event is JSON"))
        .collect()
}

/// The first number after `marker` in a console line (a `/proc/uptime` stamp).
fn stamp(console: &[String], marker: &str) -> f64 {
    let line = console
        .iter()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no console line with {marker:?}"));
    line.split(marker)
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no time in {line:?}"))
}

fn supervision_yaml() -> String {
    let busybox = busybox();
    let up = "$(cat /proc/uptime)";
    format!(
        r#"
services:
  - name: crashy
    image: "{busybox}"
    command: [sh, -c, "echo started; sleep 1; echo last words; exit 1"]
  - name: db
    image: "{busybox}"
    readiness: notify
    binds: ["/:/host:rw,rbind"]
    command: [sh, -c, "trap 'echo db-term-at {up}; sleep 1; echo db-done-at {up}; exit 0' TERM; sleep 2; echo db-ready-at {up}; /host/usr/bin/hullctl notify --ready; while true; do sleep 0.2; done"]
  - name: web
    image: "{busybox}"
    depends: [db]
    command: [sh, -c, "trap 'echo web-term-at {up}; exit 0' TERM; trap 'echo web got USR1' USR1; echo web-start-at {up}; while true; do sleep 0.2; done"]
  - name: stubborn
    image: "{busybox}"
    stopGracePeriod: 2
    command: [sh, -c, "trap '' TERM; echo stubborn ignores TERM; while true; do sleep 1; done"]
  - name: forker
    image: "{busybox}"
    pid: host
    command: [sh, -c, "i=0; while [ $i -lt 1000 ]; do ( : & ); i=$((i+1)); done; echo forked 1000; while true; do sleep 1; done"]
  - name: probe
    image: "{busybox}"
    binds: ["/:/host:rw,rbind"]
    restart: never
    command: [sh, -c, "H='/host/usr/bin/hullctl --socket /host/run/hull/control.sock'; while [ ! -e /host/run/probe-go ]; do sleep 0.3; done; $H ps; echo logs-tail=$($H logs --tail 1 crashy); $H exec -t web -- sh -c 'test -t 0 && echo guest-exec-has-tty; echo guest-exec-$((6*7))'; $H kill -s USR1 web; $H boot-time | grep -c 'service ' | sed 's/^/guest-boot-time-services=/'; echo probe-done"]
"#
    )
}

#[test]
#[cfg_attr(not(vm_tests), ignore = "boots a VM: set HULL_VM_TESTS=1")]
fn supervision_x86_64() {
    let mut b = boot("x86_64", &supervision_yaml());
    let state = b.state.clone();
    let vm = &mut b.vm;
    vm.expect("hull: all services started", BOOT)
        .expect("boot completed");

    // depends + notify readiness: web starts only after db said READY=1.
    vm.expect("web | web-start-at", Duration::from_secs(30))
        .expect("web started");
    let console = vm.console();
    let (db_ready, web_start) = (
        stamp(&console, "db-ready-at "),
        stamp(&console, "web-start-at "),
    );
    assert!(
        web_start > db_ready,
        "web started at {web_start}, before db was ready at {db_ready}"
    );
    let p = ps(&state);
    assert_eq!(service(&p, "db")["state"], "ready", "{p}");
    assert_eq!(service(&p, "db")["readiness"], "notify");

    // A malformed request gets an error line and changes nothing.
    {
        let mut s = std::os::unix::net::UnixStream::connect(state.join("control.sock"))
            .expect("connect to the control port");
        s.write_all(b"{\"id\": 77, \"op\": \"stop\", \"name\": \"web\"}\n")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut line = String::new();
        let mut r = BufReader::new(s);
        loop {
            line.clear();
            r.read_line(&mut line).expect("an answer");
            if line.contains("\"id\":77") {
                break;
            }
        }
        assert!(line.contains("\"kind\":\"error\""), "{line}");
        assert!(line.contains("malformed request"), "{line}");
    }
    assert_eq!(service(&ps(&state), "web")["state"], "ready");

    // crashy: restarted with growing delays, then failed at the start limit.
    wait_until(
        "crashy reaches its start limit",
        Duration::from_secs(60),
        || service(&ps(&state), "crashy")["state"] == "failed",
    );
    let delays: Vec<u64> = events(&state)
        .iter()
        .filter(|e| e["name"] == "crashy" && e["state"] == "backing-off")
        .filter_map(|e| {
            e["detail"]
                .as_str()?
                .split("next start in ")
                .nth(1)?
                .trim_end_matches("ms")
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(
        delays.len(),
        5,
        "five restarts before the limit: {delays:?}"
    );
    assert!(
        delays.windows(2).all(|w| w[1] > w[0]),
        "delays grow: {delays:?}"
    );
    let p = ps(&state);
    let crashy = service(&p, "crashy");
    assert_eq!(crashy["restarts"], 5, "{crashy}");
    assert_eq!(crashy["last_exit"]["code"], 1, "{crashy}");
    assert!(
        crashy["last_lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "last words"),
        "{crashy}"
    );
    let table = hull_ctl_ok(&state, &["ps"]);
    assert!(table.contains("crashy | last words"), "{table}");

    // logs -f sees the lines of the next run, started by `restart`.
    let mut follow = Command::new(hull_bin())
        .args(["ctl", "--vm"])
        .arg(&state)
        .args(["logs", "-f", "--tail", "0", "crashy"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("logs -f");
    std::thread::sleep(Duration::from_secs(1));
    let out = hull_ctl_ok(&state, &["restart", "crashy"]);
    assert!(out.contains("crashy restarting"), "{out}");
    let mut follower = BufReader::new(follow.stdout.take().unwrap());
    let mut line = String::new();
    follower.read_line(&mut line).expect("a followed line");
    assert_eq!(line.trim(), "started");
    let _ = follow.kill();
    let _ = follow.wait();
    let crashy = service(&ps(&state), "crashy").clone();
    assert!(
        ["running", "ready"].contains(&crashy["state"].as_str().unwrap()),
        "{crashy}"
    );

    // exec, with and without a pty; the exit code comes back.
    let out = hull_ctl(
        &state,
        &[
            "exec",
            "-t",
            "web",
            "--",
            "sh",
            "-c",
            "test -t 0 && echo has-tty; echo in-web-$((6*7))",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("has-tty") && text.contains("in-web-42"),
        "{text}"
    );
    let out = hull_ctl(
        &state,
        &[
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            "test -t 0 || echo no-tty; exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("no-tty"));

    // kill -s, stop, start.
    hull_ctl_ok(&state, &["kill", "-s", "USR1", "web"]);
    vm.expect("web | web got USR1", Duration::from_secs(20))
        .expect("USR1 delivered");
    hull_ctl_ok(&state, &["stop", "web"]);
    wait_until("web stopped", Duration::from_secs(20), || {
        service(&ps(&state), "web")["state"] == "exited"
    });
    hull_ctl_ok(&state, &["start", "web"]);
    wait_until("web started again", Duration::from_secs(20), || {
        service(&ps(&state), "web")["state"] == "ready"
    });
    let bad = hull_ctl(&state, &["stop", "nosuch"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no service named \"nosuch\""));

    // 1,000 double-forked children: every one reaped (forker shares PID 1's
    // pid namespace, so its orphans are hull-init's).
    wait_until("forker done", Duration::from_secs(60), || {
        vm.console()
            .iter()
            .any(|l| l.contains("forker | forked 1000"))
    });
    let zombies = hull_ctl_ok(
        &state,
        &[
            "exec",
            "forker",
            "--",
            "sh",
            "-c",
            "grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l",
        ],
    );
    assert_eq!(zombies.trim(), "0", "zombies left");

    // boot-time, dmesg, inspect.
    let bt = hull_ctl_ok(&state, &["boot-time"]);
    for phase in [
        "kernel",
        "stage 1: load kernel modules",
        "service db",
        "service web",
        "all services started",
    ] {
        assert!(bt.contains(phase), "{phase} missing from boot-time:\n{bt}");
    }
    let dmesg = hull_ctl_ok(&state, &["dmesg"]);
    assert!(dmesg.contains("Linux version"), "{dmesg}");
    let ins: serde_json::Value =
        serde_json::from_str(&hull_ctl_ok(&state, &["inspect", "db"])).expect("inspect is JSON");
    assert_eq!(ins["cgroup"], "/hull/services/db", "{ins}");
    assert!(ins["spec"]["process"]["env"]
        .to_string()
        .contains("NOTIFY_SOCKET="));
    assert!(!ins["cgroup_pids"].as_array().unwrap().is_empty());

    // hullctl inside the guest.
    hull_ctl_ok(&state, &["exec", "db", "--", "touch", "/host/run/probe-go"]);
    vm.expect("probe | probe-done", Duration::from_secs(60))
        .expect("probe ran");
    let console = vm.console().join("\n");
    for want in [
        "probe | NAME",
        "probe | crashy ",
        "probe | guest-exec-has-tty",
        "probe | guest-exec-42",
        "probe | sent SIGUSR1 to web",
        "probe | guest-boot-time-services=",
    ] {
        assert!(console.contains(want), "{want} missing from the console");
    }
    assert!(
        console.contains("probe | logs-tail=started")
            || console.contains("probe | logs-tail=last words"),
        "hullctl logs --tail 1 in the guest"
    );

    // Shutdown: reverse dependency order, the stubborn one killed after its grace.
    let t0 = Instant::now();
    hull_ctl_ok(&state, &["shutdown"]);
    vm.expect(
        "stubborn did not stop in time; killing it",
        Duration::from_secs(30),
    )
    .expect("stubborn killed");
    vm.expect(
        "hull: shutdown complete (Poweroff)",
        Duration::from_secs(40),
    )
    .expect("clean shutdown");
    let status = vm.wait_exit(Duration::from_secs(30)).expect("QEMU exits");
    assert!(status.success(), "{status}");
    assert!(
        t0.elapsed() < Duration::from_secs(40),
        "shutdown took {:?}",
        t0.elapsed()
    );
    let console = vm.console();
    let (web_term, db_term) = (
        stamp(&console, "web-term-at "),
        stamp(&console, "db-term-at "),
    );
    assert!(
        db_term > web_term,
        "db stopped at {db_term}, before its dependant web at {web_term}"
    );
    let all = console.join("\n");
    assert!(all.contains("db | db-done-at"), "db finished its stop");
    assert!(!all.contains("panicked"), "something panicked in the guest");
}

fn disk_yaml() -> String {
    let busybox = busybox();
    format!(
        r#"{header}
services:
  - name: keeper
    image: "{busybox}"
    stopGracePeriod: 20
    binds: ["/var/persist:/data"]
    runtime:
      mounts:
        - {{source: /dev/vda, destination: /var/persist, type: ext4}}
    command: [sh, -c, "if [ -f /data/out.txt ]; then echo found $(wc -l < /data/out.txt) lines, last $(tail -n1 /data/out.txt), sum $(md5sum < /data/out.txt); else echo no file yet; fi; trap 'i=0; while [ $i -lt 500 ]; do echo line-$i-of-a-file-written-after-sigterm; i=$((i+1)); done > /data/tmp; echo END >> /data/tmp; mv /data/tmp /data/out.txt; echo wrote sum $(md5sum < /data/out.txt); exit 0' TERM; while true; do sleep 0.2; done"]
  - name: deaf
    image: "{busybox}"
    stopGracePeriod: 3
    command: [sh, -c, "trap '' TERM; echo deaf; while true; do sleep 1; done"]
"#,
        header = header()
    )
}

#[test]
#[cfg_attr(not(vm_tests), ignore = "boots a VM: set HULL_VM_TESTS=1")]
fn persistent_disk_x86_64() {
    let t = VmTest::new("x86_64");
    let prefix = t.build(&disk_yaml());
    let disk = t.dir().join("disk.img");
    std::fs::File::create(&disk)
        .and_then(|f| f.set_len(32 << 20))
        .expect("disk image");
    let mkfs = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&disk)
        .status()
        .expect("mkfs.ext4 (e2fsprogs)");
    assert!(mkfs.success());
    let boot = |n: usize| {
        let mut cfg = t.config(&prefix);
        cfg.extra_args = vec![
            "-drive".into(),
            format!("file={},format=raw,if=virtio", disk.display()),
        ];
        t.start_named(cfg, &format!("persistent_disk_x86_64_boot{n}"))
    };

    let mut vm = boot(1);
    vm.expect("hull: all services started", BOOT)
        .expect("boot 1");
    wait_until("keeper sees an empty disk", Duration::from_secs(30), || {
        vm.console()
            .iter()
            .any(|l| l.contains("keeper | no file yet"))
    });
    let t0 = Instant::now();
    vm.powerdown().expect("power button");
    let wrote = vm
        .expect("keeper | wrote sum", Duration::from_secs(30))
        .expect("the file was written at SIGTERM");
    vm.expect(
        "deaf did not stop in time; killing it",
        Duration::from_secs(30),
    )
    .expect("deaf killed after its grace period");
    vm.expect(
        "hull: shutdown complete (Poweroff)",
        Duration::from_secs(40),
    )
    .expect("shutdown 1");
    assert!(vm
        .wait_exit(Duration::from_secs(30))
        .expect("exit")
        .success());
    assert!(
        t0.elapsed() < Duration::from_secs(35),
        "power-off took {:?}",
        t0.elapsed()
    );
    let sum = wrote.split("wrote sum").nth(1).unwrap().trim().to_string();
    drop(vm);

    let mut vm = boot(2);
    vm.expect("hull: all services started", BOOT)
        .expect("boot 2");
    wait_until("keeper reads the disk", Duration::from_secs(30), || {
        vm.console().iter().any(|l| l.contains("keeper | "))
    });
    let console = vm.console();
    let found = console.iter().find(|l| l.contains("keeper | ")).unwrap();
    assert!(found.contains("found 501 lines, last END"), "{found}");
    assert!(found.contains(&format!("sum {sum}")), "{found} vs {sum}");
    vm.powerdown().expect("power button");
    vm.expect(
        "hull: shutdown complete (Poweroff)",
        Duration::from_secs(40),
    )
    .expect("shutdown 2");
}
