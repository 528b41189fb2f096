//! `hull validate` as a user meets it: the corpus of valid LinuxKit-shaped
//! files validates; each broken file gives exactly its expected
//! `FILE:LINE:COL: message` lines (all of them, in order) and exit code 2;
//! no input, however malformed, makes it panic.

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;

fn corpus(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/yaml")
        .join(dir)
}

fn validate(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hull"))
        .arg("validate")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run hull");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ymls(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml"))
        .collect();
    v.sort();
    v
}

#[test]
fn linuxkit_shaped_examples_validate() {
    let dir = corpus("ok");
    let files = ymls(&dir);
    assert!(files.len() >= 8, "{files:?}");
    for f in files {
        let (code, stderr) = validate(&dir, &[&f]);
        assert_eq!(code, 0, "{f}: {stderr}");
        assert!(stderr.contains(&format!("{f} valid")), "{f}: {stderr}");
    }
}

#[test]
fn linuxkit_init_and_trust_are_noted_once() {
    let (code, stderr) = validate(&corpus("ok"), &["getty.yml"]);
    assert_eq!(code, 0);
    let notes: Vec<&str> = stderr.lines().filter(|l| l.contains("note:")).collect();
    assert_eq!(notes.len(), 2, "{stderr}");
    assert!(notes[0].contains("linuxkit/init:v1.0.0, linuxkit/runc:v1.0.0, linuxkit/containerd:v1.0.0 in `init` replaced by hull's init"));
    assert!(notes[1].contains("getty.yml:27:1: `trust`"), "{stderr}");
}

#[test]
fn broken_files_give_every_expected_error() {
    let dir = corpus("bad");
    let files = ymls(&dir);
    assert!(files.len() >= 8, "{files:?}");
    for f in files {
        let expected = std::fs::read_to_string(dir.join(f.replace(".yml", ".expected"))).unwrap();
        let (code, stderr) = validate(&dir, &[&f]);
        assert_eq!(code, 2, "{f}: {stderr}");
        assert_eq!(stderr, expected, "{f}");
        for line in stderr.lines().filter(|l| !l.starts_with("hull: note: ")) {
            let mut parts = line.splitn(4, ':');
            assert_eq!(parts.next(), Some(f.as_str()), "{line}");
            for _ in 0..2 {
                let n: usize = parts
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap_or_else(|_| panic!("{line}"));
                assert!(n > 0, "{line}");
            }
        }
    }
}

#[test]
fn merged_files_report_duplicates_in_both_files() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("a.yml"),
        "services:\n  - name: web\n    image: x\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("b.yml"),
        "onboot:\n  - name: web\n    image: y\n    comand: [x]\n",
    )
    .unwrap();
    let (code, stderr) = validate(d.path(), &["a.yml", "b.yml"]);
    assert_eq!(code, 2);
    // Both mistakes in one run, files in the order given.
    assert_eq!(
        stderr,
        "a.yml:2:5: container name \"web\" is used twice: here (services) and at b.yml:2:5 (onboot)\n\
         b.yml:4:5: unknown key \"comand\" (did you mean \"command\"?)\n"
    );
    std::fs::write(
        d.path().join("b.yml"),
        "onboot:\n  - name: web\n    image: y\n",
    )
    .unwrap();
    let (code, stderr) = validate(d.path(), &["a.yml", "b.yml"]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        "a.yml:2:5: container name \"web\" is used twice: here (services) and at b.yml:2:5 (onboot)\n"
    );
}

#[test]
fn image_map_serves_references_from_packages() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("img.yml"),
        "services:\n  - name: getty\n    image: linuxkit/getty:v1.0.0\n",
    )
    .unwrap();
    // A map to a package folder that does not exist is caught offline, at
    // the position of the reference.
    let (code, stderr) = validate(
        d.path(),
        &["--image-map", "linuxkit/getty=@pkg:nope", "img.yml"],
    );
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("img.yml:3:5: no package at "),
        "{stderr}"
    );
    std::fs::create_dir_all(d.path().join("pkgs/getty")).unwrap();
    std::fs::write(d.path().join("pkgs/getty/build.yml"), "image: getty\n").unwrap();
    std::fs::write(
        d.path().join("map.yml"),
        "linuxkit/getty: \"@pkg:pkgs/getty\"\n",
    )
    .unwrap();
    let (code, stderr) = validate(d.path(), &["--image-map-file", "map.yml", "img.yml"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = validate(d.path(), &["--image-map", "oops", "img.yml"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("expected FROM=TO"), "{stderr}");
}

/// Fragments that make the mutated files hit many code paths: keys of every
/// section, values of the wrong shape, YAML syntax.
const PIECES: &[&str] = &[
    "\n",
    "  ",
    "- ",
    ": ",
    "name",
    "image",
    "services",
    "onboot",
    "files",
    "kernel",
    "init",
    "depends",
    "readiness",
    "capabilities",
    "binds.add",
    "runtime",
    "bindNS",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\"",
    "'",
    "&a",
    "*a",
    "!!str",
    "---",
    "#",
    "|",
    ">",
    "~",
    "null",
    "0",
    "-1",
    "99999999999999999999",
    "tcp",
    "uid",
    "é",
    "\t",
    "%",
    "@pkg:",
    "?",
    "\u{0}",
];

fn mutate(base: &str, ops: &[(u8, usize, usize)]) -> String {
    let mut s: Vec<char> = base.chars().collect();
    for (op, a, b) in ops {
        let at = if s.is_empty() { 0 } else { a % (s.len() + 1) };
        match op % 3 {
            0 => {
                let piece: Vec<char> = PIECES[b % PIECES.len()].chars().collect();
                s.splice(at..at, piece);
            }
            1 => {
                let end = (at + b % 8).min(s.len());
                s.drain(at..end);
            }
            _ => {
                if !s.is_empty() {
                    let from = b % s.len();
                    let c = s[from];
                    s.insert(at.min(s.len()), c);
                }
            }
        }
    }
    s.into_iter().collect()
}

proptest! {
    // A few seconds in the normal suite; HULL_FUZZ_CASES=N for a long run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("HULL_FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(300),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Mutations of the corpus never make `hull validate` panic: it exits
    /// 0 or 2, and on 2 every stderr line is a FILE:LINE:COL message.
    #[test]
    fn validate_never_panics(pick in 0usize..64, ops in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 1..12)) {
        let mut all: Vec<PathBuf> = Vec::new();
        for dir in ["ok", "bad"] {
            for f in ymls(&corpus(dir)) {
                all.push(corpus(dir).join(f));
            }
        }
        let base = std::fs::read_to_string(&all[pick % all.len()]).unwrap();
        let text = mutate(&base, &ops);
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f.yml"), &text).unwrap();
        let (code, stderr) = validate(d.path(), &["f.yml"]);
        prop_assert!(code == 0 || code == 2, "exit {code} for {text:?}: {stderr}");
        prop_assert!(!stderr.contains("panicked"), "{text:?}: {stderr}");
        if code == 2 {
            for line in stderr.lines().filter(|l| !l.starts_with("hull: note")) {
                prop_assert!(line.starts_with("f.yml:"), "{line:?} for {text:?}");
            }
        }
    }

    /// Arbitrary text, not derived from the corpus, never panics either.
    #[test]
    fn validate_never_panics_on_any_text(text in "\\PC{0,200}") {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f.yml"), &text).unwrap();
        let (code, stderr) = validate(d.path(), &["f.yml"]);
        prop_assert!(code == 0 || code == 2, "exit {code} for {text:?}: {stderr}");
        prop_assert!(!stderr.contains("panicked"), "{text:?}: {stderr}");
    }
}

#[test]
fn a_package_config_is_checked_in_its_build_yml() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("pkgs/app")).unwrap();
    std::fs::write(
        d.path().join("pkgs/app/build.yml"),
        "image: app\nconfig:\n  capabilities: [CAP_NET_ADMN]\n  comand: [x]\n  image: other\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("img.yml"),
        "services:\n  - name: a\n    image: \"@pkg:pkgs/app\"\n  - name: b\n    image: \"@pkg:pkgs/app\"\n",
    )
    .unwrap();
    let (code, stderr) = validate(d.path(), &["img.yml"]);
    assert_eq!(code, 2);
    // Each mistake once, although two containers use the package.
    assert_eq!(
        stderr,
        "pkgs/app/build.yml:3:18: unknown capability \"CAP_NET_ADMN\" (did you mean \"CAP_NET_ADMIN\"?)\n\
         pkgs/app/build.yml:4:3: unknown key \"comand\" (did you mean \"command\"?)\n\
         pkgs/app/build.yml:5:3: a package's `config` cannot set `image`\n"
    );
}
