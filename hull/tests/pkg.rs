//! `hull pkg` as a user meets it: tags that follow every input, a second
//! build that does nothing, byte-identical rebuilds, build.lock, and clear
//! one-line failures that leave the cache as it was.
//!
//! The Debian tests need deb.debian.org (as every package build does); their
//! index downloads are kept in CARGO_TARGET_TMPDIR between runs.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn hull(cache: &Path, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_hull"))
        .args(args)
        .env("HULL_CACHE", cache)
        .output()
        .expect("run hull");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn write_pkg(dir: &Path, build_yml: &str) {
    fs::create_dir_all(dir.join("rootfs/etc")).unwrap();
    fs::write(dir.join("build.yml"), build_yml).unwrap();
    fs::write(dir.join("rootfs/etc/motd"), "hello\n").unwrap();
}

/// Every file of the cache with its content, to compare before and after.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.clone(), fs::read(&p).unwrap_or_default());
            }
        }
    }
    out
}

/// A cache kept between runs, so the suite's index is downloaded once; one
/// per test, as tests run in parallel.
fn debian_cache(test: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("pkg-test-cache")
        .join(test)
}

#[test]
fn show_tag_is_stable_and_follows_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("p");
    write_pkg(&pkg, "image: p\nsources:\n  - files: rootfs/\n");
    let cache = tmp.path().join("cache");
    let tag = || {
        let o = hull(&cache, &["pkg", "show-tag", pkg.to_str().unwrap()]);
        assert_eq!(o.code, 0, "{}", o.stderr);
        o.stdout.trim().to_string()
    };
    let t1 = tag();
    assert!(t1.starts_with("hull/p:"), "{t1}");
    assert_eq!(t1, tag(), "same folder, same tag");
    fs::write(pkg.join("rootfs/etc/motd"), "changed\n").unwrap();
    let t2 = tag();
    assert_ne!(t1, t2, "a changed file changes the tag");
    fs::write(pkg.join("rootfs/etc/new"), "").unwrap();
    let t3 = tag();
    assert_ne!(t2, t3, "a new file changes the tag");
    fs::write(pkg.join("build.lock"), "{\"arches\":{}}\n").unwrap();
    assert_ne!(t3, tag(), "the lock file is part of the tag");
}

#[test]
fn files_package_builds_once_and_byte_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("p");
    write_pkg(&pkg, "image: p\narches: [x86_64, aarch64]\nsources:\n  - files: rootfs/\nconfig:\n  command: [/bin/true]\n");
    let cache = tmp.path().join("cache");
    let p = pkg.to_str().unwrap();
    let first = hull(&cache, &["pkg", "build", p]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(
        first.stdout.matches(" built: sha256:").count(),
        2,
        "{}",
        first.stdout
    );
    let again = hull(&cache, &["pkg", "build", p]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        again.stdout.matches("nothing to do").count(),
        2,
        "{}",
        again.stdout
    );
    assert!(!again.stderr.contains("building"), "{}", again.stderr);
    let forced = hull(&cache, &["pkg", "build", "--force", p]);
    let digests = |s: &str| -> Vec<String> {
        s.lines()
            .filter_map(|l| l.rsplit_once(": ").map(|(_, d)| d.to_string()))
            .collect()
    };
    assert_eq!(digests(&first.stdout), digests(&forced.stdout));
    // A cache of its own gives the same digests: nothing depends on the machine's state.
    let other = hull(&tmp.path().join("cache2"), &["pkg", "build", p]);
    assert_eq!(digests(&first.stdout), digests(&other.stdout));
}

#[test]
fn debian_package_is_locked_and_rebuilt_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("bb");
    write_pkg(
        &pkg,
        "image: bb\narches: [x86_64, aarch64]\nsources:\n  - debian: [busybox-static]\n  - files: rootfs/\n",
    );
    let cache = debian_cache("locked");
    let p = pkg.to_str().unwrap();
    let first = hull(&cache, &["pkg", "build", p]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let lock = fs::read_to_string(pkg.join("build.lock")).expect("build.lock written");
    for arch in ["x86_64", "aarch64"] {
        assert!(lock.contains(&format!("\"{arch}\"")), "{lock}");
    }
    assert!(lock.contains("\"name\": \"busybox-static\""), "{lock}");
    let again = hull(&cache, &["pkg", "build", "--locked", p]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        again.stdout.matches("nothing to do").count(),
        2,
        "{}",
        again.stdout
    );
    let forced = hull(&cache, &["pkg", "build", "--force", "--locked", p]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    let digest_lines = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| {
                l.rsplit_once(": ")
                    .map(|(_, d)| d.to_string())
                    .unwrap_or_default()
            })
            .collect()
    };
    assert_eq!(
        digest_lines(&first.stdout),
        digest_lines(&forced.stdout),
        "byte-identical images"
    );

    // A version the archive no longer serves: --locked refuses, a plain build
    // warns and takes the current one, `hull pkg lock` agrees with it.
    let stale = lock.replacen("\"version\": \"", "\"version\": \"0.0-old-", 1);
    fs::write(pkg.join("build.lock"), &stale).unwrap();
    let refused = hull(&cache, &["pkg", "build", "--locked", p]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert_eq!(
        refused.stderr.trim().lines().count(),
        1,
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("no longer served"),
        "{}",
        refused.stderr
    );
    assert_eq!(fs::read_to_string(pkg.join("build.lock")).unwrap(), stale);
    let warned = hull(&cache, &["pkg", "build", p]);
    assert_eq!(warned.code, 0, "{}", warned.stderr);
    assert!(warned.stderr.contains("warning:"), "{}", warned.stderr);
    assert_eq!(fs::read_to_string(pkg.join("build.lock")).unwrap(), lock);
    assert_eq!(digest_lines(&first.stdout), digest_lines(&warned.stdout));
    fs::write(pkg.join("build.lock"), &stale).unwrap();
    let relock = hull(&cache, &["pkg", "lock", p]);
    assert_eq!(relock.code, 0, "{}", relock.stderr);
    assert!(relock.stdout.contains("rewritten"), "{}", relock.stdout);
    assert_eq!(fs::read_to_string(pkg.join("build.lock")).unwrap(), lock);
}

#[test]
fn missing_debian_package_and_dead_mirror_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = debian_cache("failures");
    // Warm the index, so that the failures below have nothing left to download.
    let good = tmp.path().join("good");
    write_pkg(
        &good,
        "image: good\narches: [x86_64]\nsources:\n  - debian: [busybox-static]\n",
    );
    let o = hull(&cache, &["pkg", "lock", good.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{}", o.stderr);

    let missing = tmp.path().join("missing");
    write_pkg(
        &missing,
        "image: missing\narches: [x86_64]\nsources:\n  - debian: [hull-no-such-package]\n",
    );
    let dead = tmp.path().join("dead");
    write_pkg(&dead, "image: dead\narches: [x86_64]\nsources:\n  - debian: [busybox-static]\n    mirror: http://127.0.0.1:9/debian\n");
    for (dir, code, expect) in [
        (
            &missing,
            2,
            "no package \"hull-no-such-package\" in suite bookworm for amd64",
        ),
        (
            &dead,
            1,
            "http://127.0.0.1:9/debian/dists/bookworm/InRelease",
        ),
    ] {
        let before = snapshot(&cache);
        let o = hull(&cache, &["pkg", "build", dir.to_str().unwrap()]);
        assert_eq!(o.code, code, "{}", o.stderr);
        assert_eq!(o.stderr.trim().lines().count(), 1, "one line: {}", o.stderr);
        assert!(o.stderr.contains(expect), "{expect:?} in {}", o.stderr);
        assert!(snapshot(&cache) == before, "the cache changed");
        assert!(!dir.join("build.lock").exists());
    }
}

/// A docker-registry (Debian's, installed by scripts/bootstrap) on a free
/// loopback port; killed when dropped.
struct LocalRegistry {
    child: std::process::Child,
    host: String,
    _dir: tempfile::TempDir,
}

impl LocalRegistry {
    fn start() -> LocalRegistry {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
            dir.path().join("storage").display()
        );
        fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry (scripts/bootstrap installs it)");
        let reg = LocalRegistry {
            child,
            host,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::net::TcpStream::connect(&reg.host).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "docker-registry did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        reg
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn push_sends_every_arch_and_a_pull_gets_the_same_image() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("p");
    write_pkg(&pkg, "image: p\narches: [x86_64, aarch64]\nsources:\n  - files: rootfs/\nconfig:\n  command: [/bin/true]\n");
    let cache = tmp.path().join("cache");
    let p = pkg.to_str().unwrap();
    let built = hull(&cache, &["pkg", "build", p]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let digest_of = |arch: &str| -> String {
        built
            .stdout
            .lines()
            .find(|l| l.contains(&format!("({arch})")))
            .and_then(|l| l.rsplit_once(": "))
            .map(|(_, d)| d.to_string())
            .unwrap_or_else(|| panic!("no {arch} in {}", built.stdout))
    };
    let reg = LocalRegistry::start();
    let dest = format!("{}/hull/p:test", reg.host);
    let pushed = hull(&cache, &["pkg", "push", "--to", &dest, p]);
    assert_eq!(pushed.code, 0, "{}", pushed.stderr);
    assert!(
        pushed.stdout.contains(&format!("to {dest} (sha256:")),
        "{}",
        pushed.stdout
    );
    // Nothing was rebuilt for the push.
    assert!(!pushed.stderr.contains("building"), "{}", pushed.stderr);
    // Another cache pulls each arch back: the same manifests, byte for byte.
    let other = tmp.path().join("other");
    for (arch, oci) in [("x86_64", "amd64"), ("aarch64", "arm64")] {
        let pulled = hull(&other, &["cache", "pull", "--arch", arch, &dest]);
        assert_eq!(pulled.code, 0, "{}", pulled.stderr);
        assert!(
            pulled
                .stdout
                .contains(&format!("({oci}) {}", digest_of(arch))),
            "{arch}: {} vs {}",
            pulled.stdout,
            digest_of(arch)
        );
    }
}
