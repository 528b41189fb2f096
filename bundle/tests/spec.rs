//! `config.json` as the builder writes it, checked field by field against
//! the entry it comes from (LinuxKit's defaults, namespaces, mounts,
//! capabilities, users, process and linux fields, the image's config), and
//! what the guest needs decided at build time (a /dev bind, notify).

use std::collections::BTreeMap;

use config::Section;
use hull_bundle::{BundleError, Container, ImageConfig};
use serde_json::{json, Value};

fn entry(yaml: &str) -> config::ImageEntry {
    let (mut e, problems) = config::parse_entry(yaml).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    e.name.get_or_insert_with(|| "s".into());
    e
}

fn ids() -> BTreeMap<String, u32> {
    BTreeMap::from([("a".to_string(), 100), ("b".to_string(), 101)])
}

fn container(yaml: &str, image: &ImageConfig) -> Result<Container, BundleError> {
    Container::new(Section::Services, 0, &entry(yaml), image, &ids())
}

fn spec(yaml: &str) -> Value {
    spec_with(yaml, &ImageConfig::default())
}

fn spec_with(yaml: &str, image: &ImageConfig) -> Value {
    let c = container(yaml, image).unwrap();
    serde_json::from_slice(&c.config_json()).unwrap()
}

fn namespaces(c: &Value) -> Vec<(String, Option<String>)> {
    c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["type"].as_str().unwrap().to_string(),
                n["path"].as_str().map(String::from),
            )
        })
        .collect()
}

fn mount<'a>(c: &'a Value, dest: &str) -> &'a Value {
    c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == dest)
        .unwrap_or_else(|| panic!("no mount at {dest}"))
}

#[test]
fn linuxkit_defaults() {
    let c = spec("command: [sh, -c, 'echo hi']\n");
    let ns: Vec<String> = namespaces(&c).into_iter().map(|n| n.0).collect();
    assert_eq!(ns, ["pid", "mount", "cgroup"]);
    assert_eq!(c["ociVersion"], "1.0.2");
    assert_eq!(c["process"]["args"], json!(["sh", "-c", "echo hi"]));
    assert_eq!(c["process"]["user"], json!({"uid": 0, "gid": 0}));
    assert_eq!(c["process"]["capabilities"]["bounding"], json!([]));
    assert_eq!(c["process"]["cwd"], "/");
    assert_eq!(c["process"]["terminal"], false);
    assert_eq!(c["process"]["noNewPrivileges"], false);
    assert_eq!(c["linux"]["cgroupsPath"], "/hull/services/s");
    assert_eq!(c["linux"]["maskedPaths"], json!([]));
    assert_eq!(c["root"], json!({"path": "rootfs", "readonly": false}));
    let dests: Vec<&str> = c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    assert_eq!(
        dests,
        ["/dev", "/dev/pts", "/proc", "/sys", "/sys/fs/cgroup"]
    );
    assert_eq!(
        mount(&c, "/sys/fs/cgroup")["options"]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
        "ro"
    );
    assert!(c["process"]["env"][0]
        .as_str()
        .unwrap()
        .starts_with("PATH="));
    // Nothing else: no hooks, hostname, annotations, rlimits, resources.
    let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["linux", "mounts", "ociVersion", "process", "root"]);
    let linux: Vec<&String> = c["linux"].as_object().unwrap().keys().collect();
    assert_eq!(
        linux,
        ["cgroupsPath", "maskedPaths", "namespaces", "readonlyPaths"]
    );
}

#[test]
fn namespaces_host_new_and_paths() {
    let c = spec("command: [x]\npid: host\nnet: new\nipc: /run/netns/ipc\nuts: new\nuserns: new\nhostname: box\n");
    assert_eq!(
        namespaces(&c),
        [
            ("network".to_string(), None),
            ("ipc".to_string(), Some("/run/netns/ipc".to_string())),
            ("uts".to_string(), None),
            ("user".to_string(), None),
            ("mount".to_string(), None),
            ("cgroup".to_string(), None),
        ]
    );
    assert_eq!(c["hostname"], "box");
    let c = spec("command: [x]\nnet: none\n");
    assert_eq!(namespaces(&c)[0].0, "network");
}

#[test]
fn binds_tmpfs_and_mounts() {
    let yaml = "command: [x]\nbinds: [/run/a:/a, '/:/hostroot:ro']\ntmpfs: ['/tmp:size=1m,mode=1777']\nmounts:\n  - {type: tmpfs, destination: /dev, options: [nosuid]}\n  - {source: proc}\n  - {type: bind, source: /var, destination: /var}\n";
    let c = spec(yaml);
    assert_eq!(
        mount(&c, "/a")["options"],
        json!(["rw", "rbind", "rshared"])
    );
    assert_eq!(mount(&c, "/a")["source"], "/run/a");
    assert_eq!(mount(&c, "/hostroot")["options"], json!(["ro", "rbind"]));
    assert_eq!(
        mount(&c, "/tmp")["options"],
        json!(["size=1m", "mode=1777"])
    );
    assert_eq!(mount(&c, "/tmp")["type"], "tmpfs");
    // A mount at a default destination replaces the default.
    assert_eq!(mount(&c, "/dev")["options"], json!(["nosuid"]));
    // type and destination inferred from the source.
    assert_eq!(mount(&c, "/proc")["type"], "proc");
    assert_eq!(mount(&c, "/proc")["options"], json!([]));
    // Mount points to make, with the source of each bind.
    let dests = container(yaml, &ImageConfig::default())
        .unwrap()
        .mount_points();
    assert!(dests.contains(&("/hostroot".to_string(), Some("/".to_string()))));
    assert!(dests.contains(&("/var".to_string(), Some("/var".to_string()))));
    assert!(dests.contains(&("/tmp".to_string(), None)));
}

#[test]
fn readonly_makes_dev_and_sys_readonly() {
    let c = spec("command: [x]\nreadonly: true\n");
    assert_eq!(c["root"]["readonly"], true);
    assert!(mount(&c, "/dev")["options"]
        .as_array()
        .unwrap()
        .contains(&json!("ro")));
    assert!(mount(&c, "/sys")["options"]
        .as_array()
        .unwrap()
        .contains(&json!("ro")));
}

#[test]
fn capabilities_all_none_and_ambient() {
    let c = spec(
        "command: [x]\ncapabilities: [CAP_NET_ADMIN, CAP_SYS_ADMIN]\nambient: [CAP_NET_RAW]\n",
    );
    let caps = &c["process"]["capabilities"];
    assert_eq!(caps["effective"], json!(["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]));
    assert_eq!(
        caps["bounding"],
        json!(["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN"])
    );
    assert_eq!(caps["permitted"], caps["bounding"]);
    assert_eq!(caps["inheritable"], caps["bounding"]);
    assert_eq!(caps["ambient"], json!(["CAP_NET_RAW"]));
    let all = spec("command: [x]\ncapabilities: [all]\n");
    let effective = all["process"]["capabilities"]["effective"]
        .as_array()
        .unwrap();
    assert_eq!(effective.len(), 41);
    assert_eq!(effective[0], "CAP_AUDIT_CONTROL");
    let none = spec("command: [x]\ncapabilities: [none]\n");
    assert_eq!(none["process"]["capabilities"]["effective"], json!([]));
    // The order as written, every time (oci-spec keeps them in a HashSet).
    let order = "command: [x]\ncapabilities: [CAP_SYS_TIME, CAP_CHOWN, CAP_KILL, CAP_BPF]\n";
    let first = container(order, &ImageConfig::default())
        .unwrap()
        .config_json();
    for _ in 0..8 {
        let again = container(order, &ImageConfig::default())
            .unwrap()
            .config_json();
        assert_eq!(again, first);
    }
    let c: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(
        c["process"]["capabilities"]["effective"],
        json!(["CAP_SYS_TIME", "CAP_CHOWN", "CAP_KILL", "CAP_BPF"])
    );
}

#[test]
fn users_by_number_and_by_container_name() {
    let c = spec("command: [x]\nuid: a\ngid: 7\nadditionalGids: [b, 9, root]\n");
    assert_eq!(
        c["process"]["user"],
        json!({"uid": 100, "gid": 7, "additionalGids": [101, 9, 0]})
    );
    let err = container("command: [x]\nuid: nobody\n", &ImageConfig::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("\"nobody\" is neither a number nor the name of a container"),
        "{err}"
    );
}

#[test]
fn process_and_linux_fields() {
    let c = spec("command: [x]\nenv: [A=1]\ncwd: /work\nnoNewPrivileges: true\noomScoreAdj: -500\nrlimits: ['nofile,1024,unlimited', 'RLIMIT_CORE,0,0']\nsysctl: {net.ipv4.ip_forward: '1'}\nrootfsPropagation: shared\ncgroupsPath: podruntime/web\nmaskedPaths: [/proc/kcore]\nreadonlyPaths: [/proc/sys]\nannotations: {a.b: c}\nuidMappings: [{hostID: 1000, containerID: 0, size: 10}]\nresources: {memory: {limit: 1048576}, pids: {limit: 20}}\ndevices:\n  - {path: /dev/fuse, type: c, major: 10, minor: 229, mode: '0666'}\n  - {path: all, type: b}\n");
    let p = &c["process"];
    assert_eq!(
        p["env"],
        json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "A=1"
        ])
    );
    assert_eq!(p["cwd"], "/work");
    assert_eq!(p["noNewPrivileges"], true);
    assert_eq!(p["oomScoreAdj"], -500);
    assert_eq!(
        p["rlimits"][0],
        json!({"type": "RLIMIT_NOFILE", "soft": 1024, "hard": u64::MAX})
    );
    assert_eq!(p["rlimits"][1]["type"], "RLIMIT_CORE");
    let l = &c["linux"];
    assert_eq!(l["sysctl"], json!({"net.ipv4.ip_forward": "1"}));
    assert_eq!(l["rootfsPropagation"], "shared");
    assert_eq!(l["cgroupsPath"], "/podruntime/web");
    assert_eq!(l["maskedPaths"], json!(["/proc/kcore"]));
    assert_eq!(l["readonlyPaths"], json!(["/proc/sys"]));
    assert_eq!(
        l["uidMappings"],
        json!([{"containerID": 0, "hostID": 1000, "size": 10}])
    );
    assert_eq!(l["resources"]["memory"]["limit"], 1048576);
    assert_eq!(l["resources"]["pids"]["limit"], 20);
    assert_eq!(l["devices"][0]["path"], "/dev/fuse");
    assert_eq!(l["devices"][0]["fileMode"], 0o666);
    assert_eq!(l["resources"]["devices"].as_array().unwrap().len(), 2);
    assert_eq!(
        l["resources"]["devices"][0],
        json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"})
    );
    assert_eq!(
        l["resources"]["devices"][1],
        json!({"allow": true, "type": "b", "access": "rwm"})
    );
    assert_eq!(c["annotations"], json!({"a.b": "c"}));
}

#[test]
fn image_config_gives_command_env_and_cwd() {
    let image = ImageConfig::from_oci(
        &json!({"Entrypoint": ["/bin/redis"], "Cmd": ["--port", "1"], "Env": ["X=1"], "WorkingDir": "/data"}),
    );
    let c = spec_with("name: s\n", &image);
    assert_eq!(c["process"]["args"], json!(["/bin/redis", "--port", "1"]));
    assert_eq!(c["process"]["env"][1], "X=1");
    assert_eq!(c["process"]["cwd"], "/data");
    // env in the YAML replaces the image's (LinuxKit), it does not add.
    let c = spec_with("env: [Y=2]\n", &image);
    assert_eq!(c["process"]["env"].as_array().unwrap().len(), 2);
    assert_eq!(c["process"]["env"][1], "Y=2");
    assert!(matches!(
        container("name: s\n", &ImageConfig::default()),
        Err(BundleError::NoCommand { .. })
    ));
}

#[test]
fn a_dev_bind_becomes_a_tmpfs_and_a_hook() {
    let c = spec("command: [x]\nbinds: [/dev:/dev]\n");
    let mounts = c["mounts"].as_array().unwrap();
    assert_eq!(mounts[0]["destination"], "/dev");
    assert_eq!(mounts[0]["type"], "tmpfs");
    assert_eq!(mounts[1]["type"], "devpts");
    let hooks = c["hooks"]["createContainer"].as_array().unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["path"], "/sbin/hull-init");
    assert_eq!(
        hooks[0]["args"],
        json!([
            "hull-dev-bind",
            "/dev",
            "/containers/services/s/rootfs/dev",
            "rw",
            "rbind",
            "rshared"
        ])
    );
    // Read-only options are the bind's; the tmpfs under it is the default.
    let c = spec("command: [x]\nreadonly: true\nmounts: [{type: none, source: /dev, destination: /dev, options: [rbind, ro]}]\n");
    assert_eq!(
        mount(&c, "/dev")["options"],
        json!(["nosuid", "strictatime", "mode=755", "size=65536k"])
    );
    assert_eq!(
        c["hooks"]["createContainer"][0]["args"],
        json!([
            "hull-dev-bind",
            "/dev",
            "/containers/services/s/rootfs/dev",
            "rbind",
            "ro"
        ])
    );
}

#[test]
fn other_dev_mounts_are_left_alone() {
    for yaml in [
        "command: [x]\nmounts: [{type: tmpfs, destination: /dev, options: [nosuid]}]\n",
        "command: [x]\nbinds: ['/dev:/hostdev']\n",
    ] {
        let c = spec(yaml);
        assert!(c.get("hooks").is_none(), "{yaml}");
        assert!(c["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["destination"] != "/dev" || m["type"] == "tmpfs"));
    }
}

#[test]
fn notify_readiness_gets_its_socket_at_build_time() {
    let c = spec("command: [x]\nenv: [A=1, NOTIFY_SOCKET=/elsewhere]\nreadiness: notify\n");
    assert_eq!(
        c["process"]["env"],
        json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "A=1",
            "NOTIFY_SOCKET=/dev/hull-notify/notify.sock"
        ])
    );
    assert_eq!(
        c["mounts"].as_array().unwrap().last().unwrap(),
        &json!({"destination": "/dev/hull-notify", "type": "bind",
                "source": "/run/hull/notify/s", "options": ["rw", "rbind"]})
    );
    // The mount point lives in the /dev tmpfs: nothing to make in the rootfs.
    let points = container("command: [x]\nreadiness: notify\n", &ImageConfig::default())
        .unwrap()
        .mount_points();
    assert!(points.iter().all(|(d, _)| d != "/dev/hull-notify"));
    for other in ["readiness: {tcp: 80}", "readiness: {file: /run/r}", ""] {
        let c = spec(&format!("command: [x]\n{other}\n"));
        assert!(!c.to_string().contains("NOTIFY_SOCKET"), "{other}");
    }
}

#[test]
fn config_json_bytes_are_pinned() {
    // Key order, indentation and defaults of config.json as written since
    // before the typed spec: a change here changes every image's bytes.
    let c = container(
        "command: [x]\ncapabilities: [CAP_KILL]\nhostname: h\nuts: new\nrlimits: ['nofile,1,2']\n",
        &ImageConfig::default(),
    )
    .unwrap();
    let want = r#"{
  "hostname": "h",
  "linux": {
    "cgroupsPath": "/hull/services/s",
    "maskedPaths": [],
    "namespaces": [
      {
        "type": "uts"
      },
      {
        "type": "pid"
      },
      {
        "type": "mount"
      },
      {
        "type": "cgroup"
      }
    ],
    "readonlyPaths": []
  },
  "mounts": [
    {
      "destination": "/dev",
      "options": [
        "nosuid",
        "strictatime",
        "mode=755",
        "size=65536k"
      ],
      "source": "tmpfs",
      "type": "tmpfs"
    },
    {
      "destination": "/dev/pts",
      "options": [
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620"
      ],
      "source": "devpts",
      "type": "devpts"
    },
    {
      "destination": "/proc",
      "options": [
        "nosuid",
        "nodev",
        "noexec",
        "relatime"
      ],
      "source": "proc",
      "type": "proc"
    },
    {
      "destination": "/sys",
      "options": [
        "nosuid",
        "noexec",
        "nodev"
      ],
      "source": "sysfs",
      "type": "sysfs"
    },
    {
      "destination": "/sys/fs/cgroup",
      "options": [
        "nosuid",
        "noexec",
        "nodev",
        "relatime",
        "ro"
      ],
      "source": "cgroup",
      "type": "cgroup"
    }
  ],
  "ociVersion": "1.0.2",
  "process": {
    "args": [
      "x"
    ],
    "capabilities": {
      "ambient": [],
      "bounding": [
        "CAP_KILL"
      ],
      "effective": [
        "CAP_KILL"
      ],
      "inheritable": [
        "CAP_KILL"
      ],
      "permitted": [
        "CAP_KILL"
      ]
    },
    "cwd": "/",
    "env": [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    ],
    "noNewPrivileges": false,
    "rlimits": [
      {
        "hard": 2,
        "soft": 1,
        "type": "RLIMIT_NOFILE"
      }
    ],
    "terminal": false,
    "user": {
      "gid": 0,
      "uid": 0
    }
  },
  "root": {
    "path": "rootfs",
    "readonly": false
  }
}"#;
    assert_eq!(String::from_utf8(c.config_json()).unwrap(), want);
}
