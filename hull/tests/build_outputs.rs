//! `hull build` outputs checked against what the YAML says. `-f tar` writes
//! the whole root tree; it is read back with the `tar` crate and each
//! container's `config.json` and `runtime.json` is checked field by field
//! against the YAML and the image's label. Offline: the images are packages
//! built from folder files only.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A package of plain files, with an optional `org.mobyproject.config` label.
fn package(dir: &Path, name: &str, files: &[(&str, &str)], config: &str) {
    let p = dir.join("pkgs").join(name);
    write(
        &p.join("build.yml"),
        &format!("image: {name}\nsources:\n  - files: rootfs/\n{config}"),
    );
    for (f, c) in files {
        write(&p.join("rootfs").join(f), c);
    }
}

fn read_tar(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(name, data);
    }
    out
}

/// Mode and contents of every entry.
fn read_tar_modes(path: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let mode = e.header().mode().unwrap() & 0o7777;
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(name, (mode, data));
    }
    out
}

fn json_at(files: &BTreeMap<String, Vec<u8>>, path: &str) -> Value {
    let data = files.get(path).unwrap_or_else(|| {
        panic!(
            "{path} not in the tar: {:?}",
            files
                .keys()
                .filter(|k| k.starts_with("containers"))
                .collect::<Vec<_>>()
        )
    });
    serde_json::from_slice(data).unwrap()
}

const YAML: &str = r#"
kernel:
  image: "@pkg:pkgs/kernel"
  cmdline: "console=ttyS0"
init:
  - linuxkit/init:v1.0.0
  - linuxkit/runc:v1.0.0
onboot:
  - name: format
    image: linuxkit/format:v1.0.0
    command: [/bin/app, format]
    required: true
    binds: ["/dev:/dev"]
    capabilities: [all]
services:
  - name: db
    image: "@pkg:pkgs/app"
    readiness: notify
    uid: db
    gid: format
  - name: web
    image: "@pkg:pkgs/app"
    binds.add: ["/run/web:/srv:ro"]
    capabilities.add: [CAP_NET_BIND_SERVICE]
    env: [MODE=web]
    net: new
    uts: new
    hostname: webhost
    depends: [db]
    restart: always
    restartBackoff: {initial: 100ms, max: 5s}
    stopSignal: SIGINT
    stopGracePeriod: 3s
    readiness: {tcp: 8080}
    readinessTimeout: 20s
    console: false
    runtime:
      mkdir: [/run/web]
files:
  - path: etc/motd
    contents: "hello\n"
    mode: "0644"
    uid: web
"#;

#[test]
fn tar_holds_what_the_yaml_says() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    package(dir, "kernel", &[("kernel", "not really a kernel")], "");
    package(dir, "init", &[("sbin/hull-init", "not really init")], "");
    package(
        dir,
        "app",
        &[("bin/app", "#!/bin/sh\n")],
        "config:\n  command: [/bin/app, serve]\n  binds: [\"/var/app:/data\"]\n  capabilities: [CAP_NET_RAW]\n  readonly: true\n",
    );
    write(&dir.join("img.yml"), YAML);
    write(&dir.join("map.yml"), "linuxkit/format: \"@pkg:pkgs/app\"\n");
    let out = Command::new(env!("CARGO_BIN_EXE_hull"))
        .args([
            "build",
            "-f",
            "tar",
            "--dir",
            "out",
            "--image-map-file",
            "map.yml",
            "img.yml",
        ])
        .current_dir(dir)
        .env("HULL_CACHE", dir.join("cache"))
        .env("HULL_INIT", "@pkg:pkgs/init")
        .env("SOURCE_DATE_EPOCH", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "linuxkit/init:v1.0.0, linuxkit/runc:v1.0.0 in `init` replaced by hull's init"
        ),
        "{stderr}"
    );
    let files = read_tar(&dir.join("out/img.tar"));

    // hull's init replaced LinuxKit's; /init points at it.
    assert_eq!(files["sbin/hull-init"], b"not really init");
    assert_eq!(files["etc/motd"], b"hello\n");

    // The boot order the guest reads.
    let image = json_at(&files, "etc/hull/image.json");
    assert_eq!(
        image["onboot"][0],
        json!({"name": "format", "bundle": "/containers/onboot/000-format"})
    );
    let services: Vec<&str> = image["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["db", "web"]);

    // onboot/000-format: the YAML's command replaces the label's; `all`
    // capabilities; the YAML's binds replace the label's; required.
    let c = json_at(&files, "containers/onboot/000-format/config.json");
    assert_eq!(c["process"]["args"], json!(["/bin/app", "format"]));
    assert_eq!(
        c["process"]["capabilities"]["effective"]
            .as_array()
            .unwrap()
            .len(),
        41
    );
    let dests: Vec<&str> = c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    assert!(
        dests.contains(&"/dev") && !dests.contains(&"/data"),
        "{dests:?}"
    );
    // The bind of the guest's /dev is written as the guest runs it: the
    // default /dev tmpfs (where libcontainer makes its nodes), then a first
    // createContainer hook, hull-init as hull-dev-bind, binds /dev over it.
    let dev = c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/dev")
        .unwrap();
    assert_eq!(
        dev,
        &json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]})
    );
    assert_eq!(
        c["hooks"]["createContainer"],
        json!([{"path": "/sbin/hull-init", "args": [
            "hull-dev-bind", "/dev", "/containers/onboot/000-format/rootfs/dev",
            "rw", "rbind", "rshared"]}])
    );
    assert_eq!(
        c["process"]["user"]["uid"], 0,
        "root unless `uid:` says otherwise"
    );
    assert_eq!(c["root"]["readonly"], true, "from the label");
    let r = json_at(&files, "containers/onboot/000-format/runtime.json");
    assert_eq!(r["required"], true);

    // services/db: the label's command, binds and capabilities; uid by name.
    let c = json_at(&files, "containers/services/db/config.json");
    assert_eq!(c["process"]["args"], json!(["/bin/app", "serve"]));
    assert_eq!(
        c["process"]["capabilities"]["effective"],
        json!(["CAP_NET_RAW"])
    );
    assert_eq!(c["process"]["user"], json!({"uid": 101, "gid": 100}));
    assert!(c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["destination"] == "/data" && m["source"] == "/var/app"));
    assert_eq!(c["linux"]["cgroupsPath"], "/hull/services/db");
    // `readiness: notify`: the socket's folder, which the supervisor fills
    // before each start, is bound where $NOTIFY_SOCKET points.
    let env = c["process"]["env"].as_array().unwrap();
    assert_eq!(
        env.last().unwrap(),
        "NOTIFY_SOCKET=/dev/hull-notify/notify.sock"
    );
    assert_eq!(
        c["mounts"].as_array().unwrap().last().unwrap(),
        &json!({"destination": "/dev/hull-notify", "type": "bind",
                "source": "/run/hull/notify/db", "options": ["rw", "rbind"]})
    );
    assert!(c.get("hooks").is_none(), "no /dev bind, no hook");
    let r = json_at(&files, "containers/services/db/runtime.json");
    assert_eq!(
        r["readiness"],
        json!({"check": "notify", "timeoutMs": 60000})
    );
    assert_eq!(r["restart"], "on-failure");

    // services/web: `.add` merged with the label; env; namespaces; hull's keys.
    let c = json_at(&files, "containers/services/web/config.json");
    assert_eq!(
        c["process"]["capabilities"]["effective"],
        json!(["CAP_NET_RAW", "CAP_NET_BIND_SERVICE"])
    );
    let srv = c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/srv")
        .unwrap();
    assert_eq!(srv["options"], json!(["ro", "rbind"]));
    assert!(c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["destination"] == "/data"));
    assert!(c["process"]["env"]
        .as_array()
        .unwrap()
        .contains(&json!("MODE=web")));
    assert_eq!(c["hostname"], "webhost");
    let ns: Vec<&str> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(ns, ["network", "uts", "pid", "mount", "cgroup"]);
    assert_eq!(c["process"]["user"]["uid"], 0);
    let r = json_at(&files, "containers/services/web/runtime.json");
    assert_eq!(r["restart"], "always");
    assert_eq!(
        (r["backoffInitialMs"].as_u64(), r["backoffMaxMs"].as_u64()),
        (Some(100), Some(5000))
    );
    assert_eq!(
        (r["stopSignal"].as_i64(), r["stopGraceMs"].as_u64()),
        (Some(2), Some(3000))
    );
    assert_eq!(r["depends"], json!(["db"]));
    assert_eq!(
        r["readiness"],
        json!({"check": {"tcp": 8080}, "timeoutMs": 20000})
    );
    assert_eq!(r["consoleLog"], false);
    assert_eq!(r["mkdir"], json!(["/run/web"]));
    // Mount points exist in the read-only rootfs.
    assert!(files.contains_key("containers/services/web/rootfs/srv"));
}

fn hull_build(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hull"))
        .arg("build")
        .args(args)
        .current_dir(dir)
        .env("HULL_CACHE", dir.join("cache"))
        .env("HULL_INIT", "@pkg:pkgs/init")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn kernel_fields_pick_files_of_the_kernel_image() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    package(
        dir,
        "kernel",
        &[("boot/vmlinuz", "KERNEL"), ("ucode.cpio", "UCODE-CPIO")],
        "",
    );
    package(dir, "init", &[("sbin/hull-init", "init")], "");
    write(
        &dir.join("base.yml"),
        "kernel:\n  image: \"@pkg:pkgs/kernel\"\n  cmdline: first\ninit: [linuxkit/init:v1]\n",
    );
    // A later file changes only some kernel fields.
    write(
        &dir.join("over.yml"),
        "kernel:\n  cmdline: console=ttyS0 second\n  binary: boot/vmlinuz\n  tar: none\n  ucode: ucode.cpio\n",
    );
    let (ok, stderr) = hull_build(
        dir,
        &["--dir", "out", "--name", "k", "base.yml", "over.yml"],
    );
    assert!(ok, "{stderr}");
    assert_eq!(std::fs::read(dir.join("out/k-kernel")).unwrap(), b"KERNEL");
    assert_eq!(
        std::fs::read_to_string(dir.join("out/k-cmdline")).unwrap(),
        "console=ttyS0 second"
    );
    let initrd = std::fs::read(dir.join("out/k-initrd.img")).unwrap();
    assert!(initrd.starts_with(b"UCODE-CPIO"), "microcode first");
    assert_eq!(&initrd[10..12], &[0x1f, 0x8b], "then the gzip'd root");

    // A missing named file is an error at the kernel image's position.
    write(&dir.join("over.yml"), "kernel:\n  binary: bzImage\n");
    let (ok, stderr) = hull_build(dir, &["--dir", "out2", "base.yml", "over.yml"]);
    assert!(!ok);
    assert!(
        stderr.contains("base.yml:2:3: this image has no /bzImage file"),
        "{stderr}"
    );
    assert!(!dir.join("out2/base-kernel").exists());
}

#[test]
fn volumes_are_refused_by_build_with_their_position() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    package(dir, "kernel", &[("kernel", "K")], "");
    package(dir, "init", &[("sbin/hull-init", "init")], "");
    write(
        &dir.join("v.yml"),
        "kernel:\n  image: \"@pkg:pkgs/kernel\"\ninit: [\"@pkg:pkgs/init\"]\nvolumes:\n  - name: data\n",
    );
    let (ok, stderr) = hull_build(dir, &["-f", "tar", "--dir", "out", "v.yml"]);
    assert!(!ok);
    assert!(
        stderr.contains("v.yml:5:5: `volumes` are checked but not built yet"),
        "{stderr}"
    );
}

#[test]
fn linuxkit_file_modes_mount_points_and_rootfs_relative_runtime_mounts() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    package(dir, "kernel", &[("kernel", "K")], "");
    package(dir, "init", &[("sbin/hull-init", "init")], "");
    package(dir, "app", &[("bin/app", "#!/bin/sh\n")], "");
    write(
        &dir.join("img.yml"),
        "kernel:\n  image: \"@pkg:pkgs/kernel\"\ninit:\n  - \"@pkg:pkgs/init\"\nservices:\n  - name: shell\n    image: \"@pkg:pkgs/app\"\n    command: [/bin/app]\n    binds: [/etc/secret:/etc/secret, /etc/resolv.conf:/etc/resolv.conf, /var/lib/box:/box, /run/x:/run/x]\n    runtime:\n      mounts:\n        - {type: overlay, source: overlay, destination: etc-rw, options: [lowerdir=/etc, upperdir=/run/o/up, workdir=/run/o/work]}\nfiles:\n  - path: var/lib/box\n    directory: true\n  - path: etc/secret\n    contents: s\n  - path: etc/described.yml\n    metadata: yaml\n  - path: etc/open\n    contents: o\n    mode: \"0644\"\n",
    );
    let (ok, stderr) = hull_build(dir, &["-f", "tar", "--dir", "out", "img.yml"]);
    assert!(ok, "{stderr}");
    let files = read_tar_modes(&dir.join("out/img.tar"));
    // LinuxKit's defaults: a directory 0700, a file (also metadata) 0600.
    assert_eq!(files["var/lib/box"].0, 0o700);
    assert_eq!(files["etc/secret"], (0o600, b"s".to_vec()));
    assert_eq!(files["etc/described.yml"].0, 0o600);
    assert_eq!(files["etc/open"].0, 0o644);
    // A relative runtime mount lands in the container's rootfs, whose mount
    // point the build made; the overlay's directories are made first.
    assert!(files.contains_key("containers/services/shell/rootfs/etc-rw"));
    let r: Value =
        serde_json::from_slice(&files["containers/services/shell/runtime.json"].1).unwrap();
    assert_eq!(
        r["mounts"][0]["destination"],
        "/containers/services/shell/rootfs/etc-rw"
    );
    assert_eq!(r["mkdir"], json!(["/run/o/up", "/run/o/work"]));
    // Mount points of binds: a file for a file of the `files` section and for
    // /etc/resolv.conf (a link out of the tree), a directory for a directory
    // and for a path made at run time.
    let rootfs = "containers/services/shell/rootfs";
    assert_eq!(files[&format!("{rootfs}/etc/secret")], (0o644, Vec::new()));
    assert_eq!(files[&format!("{rootfs}/etc/resolv.conf")].1, b"");
    let kind = |p: &str| {
        let mut a = tar::Archive::new(std::fs::File::open(dir.join("out/img.tar")).unwrap());
        a.entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_string_lossy().trim_end_matches('/') == p)
            .map(|e| e.header().entry_type())
            .unwrap()
    };
    assert!(kind(&format!("{rootfs}/etc/secret")).is_file());
    assert!(kind(&format!("{rootfs}/etc/resolv.conf")).is_file());
    assert!(kind(&format!("{rootfs}/box")).is_dir());
    assert!(kind(&format!("{rootfs}/run/x")).is_dir());
}
