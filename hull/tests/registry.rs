//! hull against a real registry and real archives, all made by tools that are
//! not hull: Debian's `docker-registry` on a loopback port (htpasswd basic
//! auth, credentials in a docker `config.json`), images built by `umoci` and
//! pushed by `skopeo`, archives written by `skopeo`. The tests check what a
//! user would: the files in a built image, the exact error lines, the cache
//! verifying afterwards, and nothing written outside a target.
//!
//! They need docker-registry, skopeo, umoci and htpasswd (scripts/bootstrap
//! installs them); without them they are skipped with a note, unless
//! HULL_REGISTRY_TESTS=1 (as scripts/test sets), which makes a missing tool
//! a failure.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const TOOLS: &[&str] = &["docker-registry", "skopeo", "umoci", "htpasswd"];

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// False (and a note) when a tool is missing and the tests are not required.
fn tools() -> bool {
    let missing: Vec<_> = TOOLS.iter().filter(|t| !on_path(t)).collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("HULL_REGISTRY_TESTS").as_deref() == Ok("1") {
        panic!("missing {missing:?}: run scripts/bootstrap");
    }
    eprintln!("skipped: missing {missing:?} (scripts/bootstrap installs them)");
    false
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A docker-registry on a free loopback port with its own storage and
/// config; killed when dropped.
struct Registry {
    child: Child,
    host: String,
    storage: PathBuf,
    _dir: tempfile::TempDir,
}

const USER: &str = "hull";
const PASS: &str = "s3cret";

impl Registry {
    fn start(auth: bool) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let storage = dir.path().join("storage");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
            storage.display()
        );
        if auth {
            let htpasswd = run(Command::new("htpasswd").args(["-Bbn", USER, PASS]));
            fs::write(dir.path().join("htpasswd"), htpasswd).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: hull-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let reg = Registry {
            child,
            host,
            storage,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(&reg.host).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    /// Where the registry keeps a blob's bytes.
    fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory with a cache and a docker config dir.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    /// `hull` with this env's cache and docker config; (exit code, stdout, stderr).
    fn hull(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.hull_cmd(args).output().expect("run hull");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
    fn hull_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hull"));
        c.args(args)
            .current_dir(self.dir.path())
            .env("HULL_CACHE", self.path("cache"))
            .env("DOCKER_CONFIG", self.path("docker"))
            .env_remove("SOURCE_DATE_EPOCH");
        c
    }
    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.hull(args);
        assert_eq!(code, 0, "hull {args:?}: {err}");
        out
    }
    /// Writes the docker config.json with the test registry's credentials.
    fn login(&self, reg: &Registry) {
        let auth = run(Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {USER}:{PASS} | base64 -w0")));
        fs::create_dir_all(self.path("docker")).unwrap();
        fs::write(
            self.path("docker/config.json"),
            json!({"auths": {reg.host.clone(): {"auth": auth}}}).to_string(),
        )
        .unwrap();
    }
    fn ls(&self) -> Vec<Value> {
        serde_json::from_str(&self.ok(&["cache", "ls", "--json"])).unwrap()
    }
}

/// Adds image `tag` for `arch` to the OCI layout at `layout`, with `files`
/// in one layer, made by umoci.
fn umoci_image(layout: &Path, tag: &str, arch: &str, files: &[(&str, &str)]) {
    if !layout.join("index.json").exists() {
        run(Command::new("umoci").args(["init", "--layout"]).arg(layout));
    }
    let image = format!("{}:{tag}", layout.display());
    run(Command::new("umoci").args(["new", "--image", &image]));
    let bundle = tempfile::tempdir().unwrap();
    let b = bundle.path().join("b");
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&b));
    for (p, content) in files {
        let f = b.join("rootfs").join(p);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(&f, content).unwrap();
    }
    run(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&b));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--architecture",
        arch,
        "--os",
        "linux",
        "--config.cmd",
        "/bin/true",
    ]));
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Adds an image index named `name` to a layout, over the images tagged
/// `tags` (the way a multi-arch build would).
fn add_index(layout: &Path, name: &str, tags: &[&str]) {
    let index_path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    let mut manifests = Vec::new();
    for t in tags {
        let d = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == *t)
            .unwrap()
            .clone();
        let m: Value = serde_json::from_slice(&fs::read(blob(layout, &d)).unwrap()).unwrap();
        let c: Value =
            serde_json::from_slice(&fs::read(blob(layout, &m["config"])).unwrap()).unwrap();
        manifests.push(json!({
            "mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"],
            "platform": {"os": "linux", "architecture": c["architecture"]},
        }));
    }
    let bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))
    .unwrap();
    let digest = sha256(&bytes);
    fs::write(
        layout
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap()),
        &bytes,
    )
    .unwrap();
    index["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": digest, "size": bytes.len(),
        "annotations": {"org.opencontainers.image.ref.name": name},
    }));
    fs::write(index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}

fn blob(layout: &Path, desc: &Value) -> PathBuf {
    let d = desc["digest"].as_str().unwrap();
    layout
        .join("blobs/sha256")
        .join(d.strip_prefix("sha256:").unwrap())
}

fn skopeo_push(reg: &Registry, src: &str, dest: &str, all: bool) {
    let mut c = Command::new("skopeo");
    c.args(["copy", "--dest-tls-verify=false"]);
    if all {
        c.arg("--all");
    }
    c.args(["--dest-creds", &format!("{USER}:{PASS}"), src])
        .arg(format!("docker://{}/{dest}", reg.host));
    run(&mut c);
}

fn skopeo_push_anon(reg: &Registry, src: &str, dest: &str, all: bool) {
    let mut c = Command::new("skopeo");
    c.args(["copy", "--dest-tls-verify=false"]);
    if all {
        c.arg("--all");
    }
    c.arg(src).arg(format!("docker://{}/{dest}", reg.host));
    run(&mut c);
}

/// A stand-in kernel and init image for both arches, imported from OCI
/// layouts made by umoci, so that `hull build -f tar` runs without the
/// real packages (which take minutes to build).
fn import_base(env: &Env) {
    let k = env.path("kernel-layout");
    let i = env.path("init-layout");
    for arch in ["amd64", "arm64"] {
        umoci_image(&k, arch, arch, &[("kernel", "not a real kernel")]);
        umoci_image(&i, arch, arch, &[("sbin/hull-init", "not a real init")]);
    }
    env.ok(&[
        "cache",
        "import",
        k.to_str().unwrap(),
        "--name",
        "test/kernel:1",
    ]);
    env.ok(&[
        "cache",
        "import",
        i.to_str().unwrap(),
        "--name",
        "test/init:1",
    ]);
}

fn yaml(services: &[(&str, &str)]) -> String {
    let mut y =
        String::from("kernel:\n  image: test/kernel:1\ninit:\n  - test/init:1\nservices:\n");
    for (name, image) in services {
        y.push_str(&format!("  - name: {name}\n    image: \"{image}\"\n"));
    }
    y
}

/// A file from the built tar, read with the system's tar.
fn file_in_tar(tar: &Path, path: &str) -> String {
    run(Command::new("tar").arg("-xOf").arg(tar).arg(path))
}

fn one_line(stderr: &str) -> &str {
    let t = stderr.trim();
    assert_eq!(t.lines().count(), 1, "one error line expected: {stderr}");
    t
}

#[test]
fn registry_pulls_with_auth_by_tag_and_digest_pick_the_platform_and_build() {
    if !tools() {
        return;
    }
    let reg = Registry::start(true);
    let env = Env::new();
    let l = env.path("layout");
    umoci_image(
        &l,
        "amd64",
        "amd64",
        &[("arch", "amd64"), ("hello.txt", "hello")],
    );
    umoci_image(
        &l,
        "arm64",
        "arm64",
        &[("arch", "arm64"), ("hello.txt", "hello")],
    );
    add_index(&l, "multi", &["amd64", "arm64"]);
    add_index(&l, "amdonly", &["amd64"]);
    let src = |t: &str| format!("oci:{}:{t}", l.display());
    skopeo_push(&reg, &src("amd64"), "test/hello:1", false);
    skopeo_push(&reg, &src("multi"), "test/multi:1", true);
    skopeo_push(&reg, &src("amdonly"), "test/amdonly:1", true);
    let host = &reg.host;
    let hello = format!("{host}/test/hello:1");

    // No credentials: the registry says 401 and hull says what to do.
    let (code, _, err) = env.hull(&["cache", "pull", &hello]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        one_line(&err),
        format!("hull: registry said 401 for {hello}: run docker login {host}")
    );
    assert!(env.ls().is_empty(), "nothing cached after a refused pull");

    // A credsStore helper answers (a script standing in for
    // docker-credential-pass and friends).
    let bin = env.path("bin");
    fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-hulltest");
    fs::write(
        &helper,
        format!("#!/bin/sh\nread host\n[ \"$host\" = {host} ] || exit 1\necho '{{\"Username\":\"{USER}\",\"Secret\":\"{PASS}\"}}'\n"),
    )
    .unwrap();
    run(Command::new("chmod").arg("755").arg(&helper));
    fs::create_dir_all(env.path("docker")).unwrap();
    fs::write(
        env.path("docker/config.json"),
        r#"{"credsStore": "hulltest"}"#,
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = env
        .hull_cmd(&["cache", "pull", &hello])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.ok(&["cache", "rm", &hello]);

    // Credentials from `auths`, as docker login writes them.
    env.login(&reg);
    env.ok(&["cache", "pull", &hello]);
    let digest = run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        &format!("{USER}:{PASS}"),
        "--format",
        "{{.Digest}}",
        &format!("docker://{hello}"),
    ]))
    .trim()
    .to_string();
    let by_digest = format!("{host}/test/hello@{digest}");
    env.ok(&["cache", "pull", &by_digest]);
    let ls = env.ls();
    for name in [&hello, &by_digest] {
        let rec = ls.iter().find(|r| r["name"] == **name).expect(name);
        assert_eq!(rec["digest"], digest.as_str());
        assert_eq!(rec["arch"], "amd64");
    }

    // A single-arch image asked for another arch; an index without it.
    let (code, _, err) = env.hull(&["cache", "pull", &hello, "--arch", "arm64"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        one_line(&err).ends_with("is linux/amd64, not linux/arm64"),
        "{err}"
    );
    let (code, _, err) = env.hull(&[
        "cache",
        "pull",
        &format!("{host}/test/amdonly:1"),
        "--arch",
        "arm64",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        one_line(&err).contains("no linux/arm64 image in index"),
        "{err}"
    );

    // The multi-arch index, through a mirror of docker.io, built for arm64:
    // the container's rootfs holds the arm64 image's files.
    import_base(&env);
    fs::write(env.path("img.yml"), yaml(&[("hello", "test/multi:1")])).unwrap();
    let mirror = format!("docker.io=http://{host}");
    let build = |arch: &str, out: &str, extra: &[&str]| {
        let mut args = vec![
            "build", "-f", "tar", "--arch", arch, "--dir", out, "--mirror", &mirror,
        ];
        args.extend_from_slice(extra);
        args.push("img.yml");
        env.hull(&args)
    };
    for (arch, want) in [("aarch64", "arm64"), ("x86_64", "amd64")] {
        let out = format!("out-{arch}");
        let (code, _, err) = build(arch, &out, &[]);
        assert_eq!(code, 0, "{err}");
        let tar = env.path(&out).join("img.tar");
        assert_eq!(
            file_in_tar(&tar, "containers/services/hello/rootfs/arch"),
            want
        );
        assert_eq!(
            file_in_tar(&tar, "containers/services/hello/rootfs/hello.txt"),
            "hello"
        );
    }
    let ls = env.ls();
    let multi: Vec<_> = ls
        .iter()
        .filter(|r| r["name"] == "docker.io/test/multi:1")
        .collect();
    assert_eq!(multi.len(), 2, "{ls:?}");
    assert_ne!(multi[0]["digest"], multi[1]["digest"]);

    // An image the registry does not have: bad input, with its position.
    fs::write(
        env.path("missing.yml"),
        yaml(&[("gone", &format!("{host}/test/nosuch:1"))]),
    )
    .unwrap();
    let (code, _, err) = env.hull(&["build", "-f", "tar", "--dir", "nothing", "missing.yml"]);
    assert_eq!(code, 2, "{err}");
    let line = one_line(&err);
    assert!(line.starts_with("hull: missing.yml:7:"), "{err}");
    assert!(
        line.ends_with(&format!(
            ": registry {host} has no image {host}/test/nosuch:1"
        )),
        "{err}"
    );
    assert!(!env.path("nothing").exists());

    // Push back what hull has (two arches: an index), then read it with skopeo.
    env.ok(&[
        "cache",
        "push",
        "docker.io/test/multi:1",
        "--to",
        &format!("{host}/test/pushed:1"),
    ]);
    let raw: Value = serde_json::from_str(&run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &format!("{USER}:{PASS}"),
        &format!("docker://{host}/test/pushed:1"),
    ])))
    .unwrap();
    let platforms: Vec<&str> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);

    // Registry gone: a build whose images are all cached still works (no
    // network request), byte for byte; --pull must ask, and says it cannot.
    drop(reg);
    let before = fs::read(env.path("out-aarch64/img.tar")).unwrap();
    let (code, _, err) = build("aarch64", "again", &[]);
    assert_eq!(code, 0, "warm build without a registry: {err}");
    assert_eq!(fs::read(env.path("again/img.tar")).unwrap(), before);
    let (code, _, err) = build("aarch64", "pulled", &["--pull"]);
    assert_eq!(code, 1);
    let line = one_line(&err);
    assert!(
        line.contains("img.yml:7:") && line.contains("cannot reach registry"),
        "{err}"
    );
    assert!(!env.path("pulled/img.tar").exists());
    assert_eq!(env.ok(&["cache", "verify"]).lines().count(), 1);
}

#[test]
fn skopeo_archives_import_build_and_export() {
    if !tools() {
        return;
    }
    let env = Env::new();
    let l = env.path("layout");
    umoci_image(
        &l,
        "a",
        "amd64",
        &[("etc/motd", "from docker archive"), ("bin/x", "x")],
    );
    umoci_image(&l, "b", "amd64", &[("etc/motd", "from oci archive")]);
    let docker = env.path("d.tar");
    let oci = env.path("o.tar");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:a", l.display()))
        .arg(format!("docker-archive:{}:test/dock:1", docker.display())));
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:b", l.display()))
        .arg(format!("oci-archive:{}:test/ociarch:1", oci.display())));
    let out = env.ok(&["cache", "import", "d.tar"]);
    // skopeo writes the fully qualified name into RepoTags.
    assert!(
        out.starts_with("docker.io/test/dock:1 (amd64) sha256:"),
        "{out}"
    );
    let out = env.ok(&["cache", "import", "o.tar"]);
    assert!(out.starts_with("test/ociarch:1 (amd64) sha256:"), "{out}");

    import_base(&env);
    fs::write(
        env.path("img.yml"),
        yaml(&[("dock", "test/dock:1"), ("ociarch", "test/ociarch:1")]),
    )
    .unwrap();
    env.ok(&["build", "-f", "tar", "--dir", "out", "img.yml"]);
    let tar = env.path("out/img.tar");
    assert_eq!(
        file_in_tar(&tar, "containers/services/dock/rootfs/etc/motd"),
        "from docker archive"
    );
    assert_eq!(
        file_in_tar(&tar, "containers/services/ociarch/rootfs/etc/motd"),
        "from oci archive"
    );

    // Exports, read back by skopeo and umoci.
    env.ok(&[
        "cache",
        "export",
        "test/dock:1",
        "--format",
        "docker",
        "-o",
        "e-docker.tar",
    ]);
    env.ok(&[
        "cache",
        "export",
        "test/ociarch:1",
        "--format",
        "oci",
        "-o",
        "e-oci.tar",
    ]);
    let back = env.path("back");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!(
            "docker-archive:{}",
            env.path("e-docker.tar").display()
        ))
        .arg(format!("oci:{}:d", back.display())));
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!(
            "oci-archive:{}:test/ociarch:1",
            env.path("e-oci.tar").display()
        ))
        .arg(format!("oci:{}:o", back.display())));
    for (tag, motd) in [("d", "from docker archive"), ("o", "from oci archive")] {
        let b = env.path(&format!("unpacked-{tag}"));
        run(Command::new("umoci")
            .args(["unpack", "--image", &format!("{}:{tag}", back.display())])
            .arg(&b));
        assert_eq!(fs::read_to_string(b.join("rootfs/etc/motd")).unwrap(), motd);
    }

    // And unpacked into a directory.
    env.ok(&[
        "cache",
        "export",
        "test/dock:1",
        "--format",
        "filesystem",
        "-o",
        "rootfs",
    ]);
    assert_eq!(
        fs::read_to_string(env.path("rootfs/etc/motd")).unwrap(),
        "from docker archive"
    );
    assert_eq!(fs::read_to_string(env.path("rootfs/bin/x")).unwrap(), "x");
    // Never over an existing path.
    let (code, _, err) = env.hull(&[
        "cache",
        "export",
        "test/dock:1",
        "--format",
        "filesystem",
        "-o",
        "rootfs",
    ]);
    assert_eq!(code, 2);
    assert!(one_line(&err).contains("exists"), "{err}");
    // Not an archive at all.
    fs::write(env.path("junk.tar"), b"not a tar").unwrap();
    let (code, _, err) = env.hull(&["cache", "import", "junk.tar"]);
    assert_ne!(code, 0);
    one_line(&err);
}

#[test]
fn damaged_blobs_in_the_cache_and_from_the_registry_are_detected() {
    if !tools() {
        return;
    }
    let reg = Registry::start(false);
    let env = Env::new();
    let l = env.path("layout");
    umoci_image(&l, "a", "amd64", &[("data", &"0123456789".repeat(1000))]);
    skopeo_push_anon(&reg, &format!("oci:{}:a", l.display()), "test/img:1", false);
    let name = format!("{}/test/img:1", reg.host);
    env.ok(&["cache", "pull", &name]);
    let manifest_digest = env.ls()[0]["digest"].as_str().unwrap().to_string();
    let manifest: Value = serde_json::from_slice(
        &fs::read(
            env.path("cache/blobs/sha256")
                .join(manifest_digest.strip_prefix("sha256:").unwrap()),
        )
        .unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let layer_hex = layer.strip_prefix("sha256:").unwrap().to_string();

    // An interrupted download is resumed: half the layer is already there.
    let source = l.join("blobs/sha256").join(&layer_hex);
    let whole = fs::read(&source).expect("skopeo pushed umoci's blob unchanged");
    let resumed = Env::new();
    fs::create_dir_all(resumed.path("cache/tmp")).unwrap();
    let half = whole.len() / 2;
    fs::write(
        resumed.path(&format!("cache/tmp/{layer_hex}.partial")),
        &whole[..half],
    )
    .unwrap();
    let out = resumed.ok(&["cache", "pull", &name]);
    let config_size = manifest["config"]["size"].as_u64().unwrap() as usize;
    assert!(
        out.trim_end().ends_with(&format!(
            ": fetched {} bytes",
            whole.len() - half + config_size
        )),
        "{out}"
    );
    assert_eq!(
        fs::read(resumed.path("cache/blobs/sha256").join(&layer_hex)).unwrap(),
        whole
    );
    resumed.ok(&["cache", "verify"]);

    // Damage the cached layer: verify and every use report it.
    let cached = env.path("cache/blobs/sha256").join(&layer_hex);
    let mut data = fs::read(&cached).unwrap();
    let n = data.len();
    data[n / 2] ^= 0x55;
    fs::write(&cached, &data).unwrap();
    let (code, _, err) = env.hull(&["cache", "verify"]);
    assert_eq!(code, 1);
    assert!(
        one_line(&err).contains(&format!(
            "blob {layer} in the cache does not match its digest"
        )),
        "{err}"
    );
    let (code, _, err) = env.hull(&[
        "cache",
        "export",
        &name,
        "--format",
        "filesystem",
        "-o",
        "fs",
    ]);
    assert_eq!(code, 1);
    assert!(
        one_line(&err).contains("does not match its digest"),
        "{err}"
    );
    assert!(!env.path("fs").exists());

    // The registry serves a wrong blob (its storage tampered with, same size).
    let stored = reg.blob_data(&layer);
    let mut bad = fs::read(&stored).unwrap();
    bad[n / 2] ^= 0x55;
    fs::write(&stored, bad).unwrap();
    let fresh = Env::new();
    let (code, _, err) = fresh.hull(&["cache", "pull", &name]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        one_line(&err),
        format!(
            "hull: blob {layer} from {} does not match its digest",
            reg.host
        )
    );
    assert!(
        fresh.ls().is_empty(),
        "no name for an image with a bad blob"
    );
    assert!(!fresh.path("cache/blobs/sha256").join(&layer_hex).exists());
    let leftovers: Vec<_> = fs::read_dir(fresh.path("cache/tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| !n.to_string_lossy().ends_with(".lock"))
        .collect();
    assert!(leftovers.is_empty(), "partial download kept: {leftovers:?}");
}

/// A layer tar with raw headers, as a hostile tool would write it.
fn hostile_layer(entries: &[(u8, &str, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (kind, name, link, data) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = *kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// An OCI layout holding one image per (name, layer).
fn layout_with_layers(dir: &Path, images: &[(&str, Vec<u8>)]) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let d = sha256(data);
        fs::write(blobs.join(d.strip_prefix("sha256:").unwrap()), data).unwrap();
        d
    };
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut manifests = Vec::new();
    for (name, layer) in images {
        let ld = put(layer);
        let config = serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["/bin/true"]}, "rootfs": {"type": "layers", "diff_ids": [ld]}}))
        .unwrap();
        let cd = put(&config);
        let manifest = serde_json::to_vec(&json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": layer.len()}]})).unwrap();
        let md = put(&manifest);
        manifests.push(
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
            "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": name}}),
        );
    }
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": manifests})).unwrap(),
    )
    .unwrap();
}

#[test]
fn hostile_layers_are_refused_and_nothing_lands_outside() {
    if !tools() {
        return;
    }
    let env = Env::new();
    let ok: &[u8] = b"fine";
    layout_with_layers(
        &env.path("hostile"),
        &[
            (
                "test/dotdot:1",
                hostile_layer(&[(b'0', "ok", "", ok), (b'0', "../../escaped-dotdot", "", ok)]),
            ),
            (
                "test/absolute:1",
                hostile_layer(&[
                    (b'0', "ok", "", ok),
                    (b'0', "/tmp/escaped-absolute", "", ok),
                ]),
            ),
            (
                "test/symlink:1",
                hostile_layer(&[
                    (b'0', "ok", "", ok),
                    (b'2', "up", "../../../..", b""),
                    (b'0', "up/escaped-symlink", "", ok),
                ]),
            ),
            (
                "test/hardlink:1",
                hostile_layer(&[(b'1', "passwd", "/etc/passwd", b"")]),
            ),
        ],
    );
    env.ok(&["cache", "import", "hostile"]);
    import_base(&env);
    for (image, expect) in [
        ("test/dotdot:1", "escapes the root"),
        ("test/absolute:1", "has an absolute path"),
        ("test/symlink:1", "through a symlink that leaves the root"),
        ("test/hardlink:1", "has an absolute path"),
    ] {
        let out = format!("x/out-{}", image.replace([':', '/'], "-"));
        let (code, _, err) = env.hull(&[
            "cache",
            "export",
            image,
            "--format",
            "filesystem",
            "-o",
            &out,
        ]);
        assert_eq!(code, 1, "{image}: {err}");
        assert!(one_line(&err).contains(expect), "{image}: {err}");
        assert!(!env.path(&out).exists(), "{image}: export left {out}");
        fs::write(env.path("img.yml"), yaml(&[("bad", image)])).unwrap();
        let (code, _, err) = env.hull(&["build", "-f", "tar", "--dir", "bout", "img.yml"]);
        assert_eq!(code, 1, "{image}: {err}");
        assert!(one_line(&err).contains(expect), "{image}: {err}");
    }
    // Nothing written anywhere a layer aimed at, nor left half-written.
    for p in [
        "escaped-dotdot",
        "x/escaped-dotdot",
        "escaped-symlink",
        "x/escaped-symlink",
    ] {
        assert!(!env.path(p).exists(), "{p} was written");
    }
    assert!(!Path::new("/tmp/escaped-absolute").exists());
    assert_eq!(
        fs::read_dir(env.path("x")).map(|d| d.count()).unwrap_or(0),
        0,
        "temp dirs left in x/"
    );
    assert!(!env.path("bout/img.tar").exists());
}

#[test]
fn concurrent_builds_share_one_cache() {
    if !tools() {
        return;
    }
    let reg = Registry::start(false);
    let env = Env::new();
    let l = env.path("layout");
    let mut services = Vec::new();
    for i in 0..3 {
        let tag = format!("t{i}");
        umoci_image(
            &l,
            &tag,
            "amd64",
            &[
                ("n", &i.to_string()),
                ("big", &format!("{i}").repeat(200_000)),
            ],
        );
        skopeo_push_anon(
            &reg,
            &format!("oci:{}:{tag}", l.display()),
            &format!("test/c{i}:1"),
            false,
        );
        services.push((format!("s{i}"), format!("{}/test/c{i}:1", reg.host)));
    }
    import_base(&env);
    let refs: Vec<(&str, &str)> = services
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    fs::write(env.path("img.yml"), yaml(&refs)).unwrap();
    let children: Vec<_> = ["one", "two"]
        .iter()
        .map(|out| {
            env.hull_cmd(&["build", "-f", "tar", "--dir", out, "img.yml"])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let one = fs::read(env.path("one/img.tar")).unwrap();
    assert_eq!(one, fs::read(env.path("two/img.tar")).unwrap());
    assert_eq!(
        file_in_tar(&env.path("one/img.tar"), "containers/services/s2/rootfs/n"),
        "2"
    );
    let verify = env.ok(&["cache", "verify"]);
    assert!(verify.contains("ok: 7 images verified"), "{verify}");

    // Push to a registry without auth, and read it back into a fresh cache.
    let copy = format!("{}/test/copy:1", reg.host);
    env.ok(&["cache", "push", &services[0].1, "--to", &copy]);
    let fresh = Env::new();
    fresh.ok(&["cache", "pull", &copy]);
    fresh.ok(&[
        "cache",
        "export",
        &copy,
        "--format",
        "filesystem",
        "-o",
        "root",
    ]);
    assert_eq!(fs::read_to_string(fresh.path("root/n")).unwrap(), "0");
}

/// Measurements, not a test: `cargo test -p hull --test registry -- --ignored --nocapture`
/// (bench/registry runs it). Pull throughput against `skopeo copy` of the
/// same image from the same loopback registry, and the time to resolve a
/// ten-image YAML from a warm cache.
#[test]
#[ignore]
fn bench_pull_and_warm_resolve() {
    if !tools() {
        return;
    }
    let reg = Registry::start(false);
    let env = Env::new();
    let l = env.path("layout");
    // 64 MiB of incompressible data in four layers' worth of files.
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut noise = |n: usize| -> String {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from(b'!' + (seed % 90) as u8)
            })
            .collect()
    };
    let files: Vec<(String, String)> = (0..4).map(|i| (format!("f{i}"), noise(16 << 20))).collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    umoci_image(&l, "big", "amd64", &refs);
    skopeo_push_anon(
        &reg,
        &format!("oci:{}:big", l.display()),
        "bench/big:1",
        false,
    );
    let image = format!("{}/bench/big:1", reg.host);
    let size: u64 = fs::read_dir(l.join("blobs/sha256"))
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum();

    let time = |f: &mut dyn FnMut()| {
        let mut runs: Vec<f64> = (0..3)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect();
        runs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        runs[1]
    };
    let mut n = 0;
    let hull_s = time(&mut || {
        n += 1;
        let cache = env.path(&format!("c{n}"));
        run(Command::new(env!("CARGO_BIN_EXE_hull")).args([
            "--cache",
            cache.to_str().unwrap(),
            "cache",
            "pull",
            &image,
        ]));
    });
    let skopeo_s = time(&mut || {
        n += 1;
        let dest = env.path(&format!("s{n}"));
        run(Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{image}"))
            .arg(format!("oci:{}:x", dest.display())));
    });
    let mb = size as f64 / 1e6;
    println!("pull of {mb:.1} MB from a loopback registry (median of 3):");
    println!("  hull cache pull   {hull_s:.3} s  {:.0} MB/s", mb / hull_s);
    println!(
        "  skopeo copy       {skopeo_s:.3} s  {:.0} MB/s",
        mb / skopeo_s
    );
    println!(
        "  ratio hull/skopeo {:.2} (time; below 1 is faster)",
        hull_s / skopeo_s
    );

    // Ten images, resolved from a warm cache.
    let mut services = Vec::new();
    for i in 0..10 {
        let tag = format!("t{i}");
        umoci_image(
            &l,
            &tag,
            "amd64",
            &[("n", &format!("{i}")), ("data", &noise(256 << 10))],
        );
        skopeo_push_anon(
            &reg,
            &format!("oci:{}:{tag}", l.display()),
            &format!("bench/s{i}:1"),
            false,
        );
        services.push((format!("s{i}"), format!("{}/bench/s{i}:1", reg.host)));
    }
    import_base(&env);
    let refs: Vec<(&str, &str)> = services
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    fs::write(env.path("img.yml"), yaml(&refs)).unwrap();
    let cold = time(&mut || {
        n += 1;
        let _ = fs::remove_dir_all(env.path("cache"));
        env.ok(&[
            "cache",
            "import",
            env.path("kernel-layout").to_str().unwrap(),
            "--name",
            "test/kernel:1",
        ]);
        env.ok(&[
            "cache",
            "import",
            env.path("init-layout").to_str().unwrap(),
            "--name",
            "test/init:1",
        ]);
        env.ok(&["build", "-f", "tar", "--dir", &format!("o{n}"), "img.yml"]);
    });
    let warm = time(&mut || {
        n += 1;
        env.ok(&["build", "-f", "tar", "--dir", &format!("o{n}"), "img.yml"]);
    });
    let check = time(&mut || {
        n += 1;
        env.ok(&[
            "build",
            "-f",
            "tar",
            "--pull",
            "--dir",
            &format!("o{n}"),
            "img.yml",
        ]);
    });
    println!("hull build -f tar of a ten-image YAML (median of 3):");
    println!("  cold cache (pulls 10 images, plus 2 imports)  {cold:.3} s");
    println!("  warm cache (no network)                       {warm:.3} s");
    println!("  warm cache with --pull (10 manifest checks)   {check:.3} s");
}
