//! Measurements of PID 1 (not a pass/fail test: it prints numbers), so
//! always ignored; run it by name with `--ignored`:
//!
//! - PID 1's resident memory (VmRSS of /proc/1/status) with 1 and with 20 services;
//! - the time from `hull ctl restart` to the service running again (from the
//!   guest's own event times: `stopping` to `running`);
//! - the CPU PID 1 uses (utime+stime of /proc/1/stat over 10 s) while 20
//!   services each log about 1,000 lines a second (bursts of 1,000 lines, then a 1 s sleep) (console off, so the serial
//!   console does not set the pace).
//!
//! `cargo test -p hull-test-vm --test supervisor_measure -- --ignored --nocapture --test-threads=1`

use std::path::Path;
use std::time::Duration;

use hull_test_vm::{busybox, header, hull_ctl_ok, Vm, VmTest};

const BOOT: Duration = Duration::from_secs(120);
/// What each logger prints, 1,000 times a second.
const LINE: &str = "a line of a service that logs a lot";

fn yaml(loggers: usize) -> String {
    let busybox = busybox();
    let mut s = format!(
        r#"{header}
services:
  - name: meter
    image: "{busybox}"
    pid: host
    capabilities: [all]          # /proc/1/io needs CAP_SYS_PTRACE
    command: [sh, -c, "while true; do sleep 1; done"]
"#,
        header = header()
    );
    for i in 0..loggers {
        s.push_str(&format!(
            r#"  - name: logger{i}
    image: "{busybox}"
    console: false
    command: [sh, -c, "while true; do awk 'BEGIN {{ for (i = 0; i < 1000; i++) print \"{LINE}\" }}'; sleep 1; done"]
"#
        ));
    }
    s
}

/// (VmRSS kB, utime+stime ticks, bytes read) of PID 1, read by the `meter`
/// service (it shares PID 1's pid namespace). The bytes PID 1 read are
/// almost all container output: they count the lines logged (the log files
/// rotate, so counting their lines would not do).
fn pid1(state: &Path) -> (u64, u64, u64) {
    let out = hull_ctl_ok(
        state,
        &[
            "exec",
            "meter",
            "--",
            "sh",
            "-c",
            "grep VmRSS /proc/1/status; cut -d' ' -f14,15 /proc/1/stat; grep rchar /proc/1/io",
        ],
    );
    let mut lines = out.lines();
    let rss = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    let ticks = lines
        .next()
        .map(|l| {
            l.split_whitespace()
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .expect("utime stime");
    let rchar = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("rchar");
    (rss, ticks, rchar)
}

fn boot(t: &VmTest, loggers: usize) -> Vm {
    let prefix = t.build(&yaml(loggers));
    let mut vm = t.start(t.config(&prefix));
    vm.expect("hull: all services started", BOOT).expect("boot");
    std::thread::sleep(Duration::from_secs(3));
    vm
}

#[test]
#[ignore = "a measurement, not a test: run it with --ignored --nocapture"]
fn measure_pid1_x86_64() {
    let t = VmTest::new("x86_64");

    let mut vm = boot(&t, 0);
    let state = vm.config().state_dir.clone();
    let (rss1, _, _) = pid1(&state);
    let mut restarts = Vec::new();
    for _ in 0..5 {
        hull_ctl_ok(&state, &["restart", "meter"]);
        std::thread::sleep(Duration::from_secs(2));
        let evs: Vec<serde_json::Value> = hull_ctl_ok(&state, &["events", "--json"])
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|e: &serde_json::Value| e["name"] == "meter")
            .collect();
        let stop = evs.iter().rev().find(|e| e["state"] == "stopping");
        let run = evs.iter().rev().find(|e| e["state"] == "running");
        if let (Some(a), Some(b)) = (stop, run) {
            restarts.push(b["time"].as_f64().unwrap() - a["time"].as_f64().unwrap());
        }
    }
    hull_ctl_ok(&state, &["shutdown"]);
    let _ = vm.wait_exit(Duration::from_secs(60));
    drop(vm);

    let mut vm = boot(&t, 19);
    let state = vm.config().state_dir.clone();
    let (rss20, t0, r0) = pid1(&state);
    let start = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let (rss20_after, t1, r1) = pid1(&state);
    let secs = start.elapsed().as_secs_f64();
    hull_ctl_ok(&state, &["shutdown"]);
    let _ = vm.wait_exit(Duration::from_secs(60));

    // CLK_TCK is 100 on Linux.
    let cpu = (t1 - t0) as f64 / 100.0 / secs * 100.0;
    // Each line is LINE plus its newline.
    let rate = (r1 - r0) as f64 / (LINE.len() + 1) as f64 / secs;
    println!("PID 1 VmRSS, 1 service:               {rss1} kB");
    println!("PID 1 VmRSS, 20 services:             {rss20} kB (after 10 s of logging: {rss20_after} kB)");
    println!("restart -> running (guest events):    {restarts:.3?} s");
    println!("PID 1 CPU while 19 services log:      {cpu:.1}% of one vCPU over {secs:.1} s");
    println!(
        "lines logged meanwhile:               {rate:.0} lines/s in all ({:.0} per logger)",
        rate / 19.0
    );
}
