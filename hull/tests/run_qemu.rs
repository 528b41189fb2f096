//! `hull run qemu` refuses bad `--publish` and `--disk` values with one line
//! and exit code 2, before anything starts (and without creating the disk).

use std::process::Command;

#[test]
fn bad_publish_and_disk_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for suffix in ["-kernel", "-initrd.img", "-cmdline"] {
        std::fs::write(dir.path().join(format!("img{suffix}")), "x").unwrap();
    }
    let prefix = dir.path().join("img");
    let disk = dir.path().join("d.img");
    for (args, expect) in [
        (
            vec!["--publish", "6379"],
            "--publish \"6379\": expected [ADDRESS:]HOST_PORT:GUEST_PORT",
        ),
        (vec!["--publish", "1:2/sctp"], "--publish \"1:2/sctp\""),
        (vec!["--publish", "99999:22"], "--publish \"99999:22\""),
        (
            vec!["--disk", "d.img,size=big"],
            "--disk \"d.img,size=big\": expected FILE[,size=SIZE]",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_hull"))
            .args(["run", "qemu"])
            .args(&args)
            .arg(&prefix)
            .current_dir(dir.path())
            .output()
            .expect("run hull");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(expect), "{expect:?} in {stderr}");
    }
    assert!(!disk.exists(), "a refused --disk created a file");
}
