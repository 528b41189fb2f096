//! The image description (the YAML file a user writes), as typed structs.
//!
//! The schema is LinuxKit's (`kernel`, `init`, `onboot`, `onshutdown`,
//! `services`, `files`, `volumes`, and every per-image field of its
//! reference), so that LinuxKit files work unchanged, plus hull's own keys
//! (supervision, readiness). Parsing goes entry by entry and keeps going
//! after a mistake, so that one run reports every error of a file, each as
//! `FILE:LINE:COL: message`; `marked_yaml` keeps every node's position,
//! which `serde_yaml` (deprecated) does only for syntax errors. The checks
//! that need more than one entry (names, dependencies, uids) live in
//! [`crate::check`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use marked_yaml::types::MarkedMappingNode;
use marked_yaml::Node;
use serde::{Deserialize, Serialize};

/// One mistake in an input file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Every mistake found in the input files, in file order; printed one per
/// line, exit code 2.
#[derive(Debug, Default, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(|e| e.to_string()).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl ConfigErrors {
    pub fn push(&mut self, e: ConfigError) {
        if !self.0.contains(&e) {
            self.0.push(e);
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Files in the order given (others after them, in the order they were
    /// first met), each file's errors by position.
    pub fn sort(&mut self, files: &[PathBuf]) {
        let mut order: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        for e in &self.0 {
            if !order.contains(&e.file) {
                order.push(e.file.clone());
            }
        }
        self.0.sort_by_key(|e| {
            let f = order.iter().position(|f| *f == e.file).unwrap_or(0);
            (f, e.line, e.col)
        });
    }
}

/// A position in a file: where an entry (or one of its keys) was written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pos {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl Pos {
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.display().to_string(),
            line: self.line,
            col: self.col,
            message: message.into(),
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// A parsed value with the file it came from and its YAML node, so that any
/// later check can point at the exact key (merging keeps each entry's own
/// file, no search needed).
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub value: T,
    pub file: PathBuf,
    pub node: Node,
}

impl<T> Located<T> {
    /// Where the entry starts.
    pub fn pos(&self) -> Pos {
        pos_of(&self.file, &self.node)
    }

    /// Where `key` (a path of mapping keys; a number indexes a sequence) is
    /// written; the entry itself when a key is missing.
    pub fn pos_of(&self, path: &[&str]) -> Pos {
        let mut node = &self.node;
        let mut best = self.pos();
        for seg in path {
            let next = match node {
                Node::Mapping(m) => m.iter().find(|(k, _)| k.as_str() == *seg).map(|(k, v)| {
                    best = marker_pos(&self.file, k.span().start());
                    v
                }),
                Node::Sequence(s) => {
                    seg.parse::<usize>()
                        .ok()
                        .and_then(|i| s.get(i))
                        .inspect(|v| {
                            best = pos_of(&self.file, v);
                        })
                }
                Node::Scalar(_) => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        best
    }

    pub fn error(&self, path: &[&str], message: impl Into<String>) -> ConfigError {
        self.pos_of(path).error(message)
    }
}

fn marker_pos(file: &Path, m: Option<&marked_yaml::Marker>) -> Pos {
    let (line, col) = m.map(|m| (m.line(), m.column())).unwrap_or((0, 0));
    Pos {
        file: file.to_path_buf(),
        line,
        col,
    }
}

/// Where a node starts. For a block mapping, marked_yaml's start mark is
/// after its first key; the first key is where a reader looks.
fn pos_of(file: &Path, node: &Node) -> Pos {
    let first_key = node
        .as_mapping()
        .and_then(|m| m.keys().next().and_then(|k| k.span().start()));
    marker_pos(file, first_key.or(node.span().start()))
}

/// The whole description: one file, or several merged.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Each file's `kernel` section, in order; [`Config::kernel`] merges them.
    pub kernels: Vec<Located<Kernel>>,
    pub init: Vec<Located<String>>,
    pub onboot: Vec<Located<ImageEntry>>,
    pub onshutdown: Vec<Located<ImageEntry>>,
    pub services: Vec<Located<ImageEntry>>,
    pub files: Vec<Located<FileEntry>>,
    pub volumes: Vec<Located<Volume>>,
    /// Where LinuxKit's old `trust:` section was written, if anywhere.
    pub trust: Vec<Pos>,
}

impl Config {
    /// The kernel section after merging: a later file's field wins, field by
    /// field (LinuxKit's `AppendConfig`). With it, where its image was named.
    pub fn kernel(&self) -> Option<(Kernel, Located<String>)> {
        let mut out = Kernel::default();
        let mut image: Option<Located<String>> = None;
        for k in &self.kernels {
            let v = &k.value;
            if let Some(i) = &v.image {
                out.image = Some(i.clone());
                image = Some(Located {
                    value: i.clone(),
                    file: k.file.clone(),
                    node: field_node(&k.node, "image"),
                });
            }
            macro_rules! later_wins {
                ($($f:ident),*) => { $( if v.$f.is_some() { out.$f = v.$f.clone(); } )* };
            }
            later_wins!(cmdline, binary, tar, ucode, modules);
        }
        image.map(|i| (out, i))
    }

    /// The container sections with their names.
    pub fn sections(&self) -> [(&'static str, &Vec<Located<ImageEntry>>); 3] {
        [
            ("onboot", &self.onboot),
            ("onshutdown", &self.onshutdown),
            ("services", &self.services),
        ]
    }

    /// Every container, in uid order (onboot, onshutdown, services).
    pub fn containers(&self) -> impl Iterator<Item = (&'static str, &Located<ImageEntry>)> {
        self.sections()
            .into_iter()
            .flat_map(|(s, l)| l.iter().map(move |e| (s, e)))
    }

    /// LinuxKit gives every container a uid and gid, from 100 in the order
    /// onboot, onshutdown, services, so that `uid: NAME` (and files'
    /// `uid:`/`gid:`) can name a container instead of a number.
    pub fn id_map(&self) -> BTreeMap<String, u32> {
        let mut map = BTreeMap::new();
        for (i, (_, e)) in self.containers().enumerate() {
            map.insert(e.value.name.clone().unwrap_or_default(), 100 + i as u32);
        }
        map
    }

    /// Every image reference with where it is written: kernel, init,
    /// containers, volumes.
    pub fn image_refs(&self) -> Vec<(Pos, String)> {
        let mut out = Vec::new();
        for k in &self.kernels {
            if let Some(i) = &k.value.image {
                out.push((k.pos_of(&["image"]), i.clone()));
            }
        }
        for i in &self.init {
            out.push((i.pos(), i.value.clone()));
        }
        for (_, e) in self.containers() {
            if let Some(i) = &e.value.image {
                out.push((e.pos_of(&["image"]), i.clone()));
            }
        }
        for v in &self.volumes {
            if let Some(i) = &v.value.image {
                out.push((v.pos_of(&["image"]), i.clone()));
            }
        }
        out
    }

    /// Rewrites every image reference (the image map).
    pub fn map_images(&mut self, mut f: impl FnMut(&str) -> Option<String>) {
        let mut apply = |s: &mut String| {
            if let Some(n) = f(s) {
                *s = n;
            }
        };
        for k in &mut self.kernels {
            if let Some(i) = &mut k.value.image {
                apply(i);
            }
        }
        for i in &mut self.init {
            apply(&mut i.value);
        }
        for list in [&mut self.onboot, &mut self.onshutdown, &mut self.services] {
            for e in list.iter_mut() {
                if let Some(i) = &mut e.value.image {
                    apply(i);
                }
            }
        }
        for v in &mut self.volumes {
            if let Some(i) = &mut v.value.image {
                apply(i);
            }
        }
    }

    /// Several files into one: lists append, later kernel fields win.
    /// Duplicate names are found by [`crate::check`], which sees every entry
    /// with its own file.
    pub fn merge(files: Vec<Config>) -> Config {
        let mut out = Config::default();
        for c in files {
            out.kernels.extend(c.kernels);
            out.init.extend(c.init);
            out.onboot.extend(c.onboot);
            out.onshutdown.extend(c.onshutdown);
            out.services.extend(c.services);
            out.files.extend(c.files);
            out.volumes.extend(c.volumes);
            out.trust.extend(c.trust);
        }
        out
    }
}

fn field_node(node: &Node, key: &str) -> Node {
    node.as_mapping()
        .and_then(|m| m.iter().find(|(k, _)| k.as_str() == key))
        .map(|(k, _)| Node::Scalar(k.clone()))
        .unwrap_or_else(|| node.clone())
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub cmdline: Option<String>,
    /// The kernel's file name in the image (default `kernel`).
    #[serde(default)]
    pub binary: Option<String>,
    /// The modules tarball's file name in the image (default `kernel.tar`; `none` for none).
    #[serde(default)]
    pub tar: Option<String>,
    /// A CPU microcode cpio in the image, put in front of the initrd.
    #[serde(default)]
    pub ucode: Option<String>,
    /// hull: extra kernel modules to ship and load, beyond the VM default set.
    #[serde(default)]
    pub modules: Option<Vec<String>>,
}

/// A YAML scalar that may be a number or a word. YAML scalars reach serde
/// as text, so the number is recognised here rather than by serde.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(i64),
    Text(String),
}

impl NumberOrText {
    fn number(&self) -> Option<i64> {
        match self {
            NumberOrText::Number(n) => Some(*n),
            NumberOrText::Text(t) => t.trim().parse().ok(),
        }
    }
    fn text(self) -> String {
        match self {
            NumberOrText::Number(n) => n.to_string(),
            NumberOrText::Text(t) => t,
        }
    }
}

impl From<NumberOrText> for IdValue {
    fn from(v: NumberOrText) -> Self {
        match v.number().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => IdValue::Number(n),
            None => IdValue::Name(v.text()),
        }
    }
}

impl From<NumberOrText> for DurationValue {
    fn from(v: NumberOrText) -> Self {
        match v.number().and_then(|n| u64::try_from(n).ok()) {
            Some(n) => DurationValue::Seconds(n),
            None => DurationValue::Text(v.text()),
        }
    }
}

impl From<NumberOrText> for SignalValue {
    fn from(v: NumberOrText) -> Self {
        match v.number() {
            Some(n) => SignalValue::Number(n),
            None => SignalValue::Name(v.text()),
        }
    }
}

/// A uid or gid: a number, or the name of a container (its LinuxKit-assigned id).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged, from = "NumberOrText")]
pub enum IdValue {
    Number(u32),
    Name(String),
}

/// A duration as written: `250ms`, `10s`, `2m`, or a bare number of seconds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged, from = "NumberOrText")]
pub enum DurationValue {
    Seconds(u64),
    Text(String),
}

impl DurationValue {
    pub fn millis(&self) -> Result<u64, String> {
        match self {
            DurationValue::Seconds(s) => s
                .checked_mul(1000)
                .ok_or_else(|| format!("{s} seconds is too long")),
            DurationValue::Text(t) => {
                let t = t.trim();
                if let Ok(s) = t.parse::<u64>() {
                    return DurationValue::Seconds(s).millis();
                }
                humantime::parse_duration(t)
                    .map_err(|e| format!("{t:?} is not a duration like 250ms, 10s or 2m ({e})"))
                    .and_then(|d| {
                        u64::try_from(d.as_millis()).map_err(|_| format!("{t:?} is too long"))
                    })
            }
        }
    }
}

/// A signal as written: `SIGINT`, `INT` or a number.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged, from = "NumberOrText")]
pub enum SignalValue {
    Number(i64),
    Name(String),
}

impl SignalValue {
    pub fn number(&self) -> Result<i32, String> {
        match self {
            SignalValue::Number(n) if (1..=64).contains(n) => Ok(*n as i32),
            SignalValue::Number(n) => Err(format!("{n} is not a signal number (1-64)")),
            SignalValue::Name(s) => {
                let up = s.trim().to_ascii_uppercase();
                if let Ok(n) = up.parse::<i64>() {
                    return SignalValue::Number(n).number();
                }
                let full = if up.starts_with("SIG") {
                    up
                } else {
                    format!("SIG{up}")
                };
                full.parse::<nix::sys::signal::Signal>()
                    .map(|s| s as i32)
                    .map_err(|_| format!("{s:?} is not a signal name (like SIGTERM or SIGINT)"))
            }
        }
    }
}

/// `restartBackoff`: bounds of the delay between restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<DurationValue>,
}

/// `readiness`: `notify`, `{file: PATH}` or `{tcp: PORT}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum ReadinessValue {
    Notify,
    File(String),
    Tcp(u32),
}

/// An OCI mount as LinuxKit writes it; missing `type`, `source` or
/// `destination` are inferred where LinuxKit infers them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
}

/// A device node made in the container (LinuxKit's `devices`); `path: all`
/// allows a whole class in the device cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    #[serde(default)]
    pub path: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub major: i64,
    #[serde(default)]
    pub minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// One entry of `uidMappings` / `gidMappings`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdMapping {
    #[serde(default, rename = "hostID")]
    pub host_id: u32,
    #[serde(default, rename = "containerID")]
    pub container_id: u32,
    #[serde(default)]
    pub size: u32,
}

/// LinuxKit's `runtime`: what happens around the container, not in its spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mkdir: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<contract::RuntimeInterface>>,
    #[serde(default, rename = "bindNS", skip_serializing_if = "Option::is_none")]
    pub bind_ns: Option<contract::BindNs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// One container: every field of LinuxKit's image entry plus hull's keys.
/// Also the shape of an image's `org.mobyproject.config` label, which the
/// YAML overrides field by field. Every field is optional so that "not
/// written" differs from "written empty" (LinuxKit's precedence needs it).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
    #[serde(
        default,
        rename = "capabilities.add",
        skip_serializing_if = "Option::is_none"
    )]
    pub capabilities_add: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambient: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binds: Option<Vec<String>>,
    #[serde(default, rename = "binds.add", skip_serializing_if = "Option::is_none")]
    pub binds_add: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<Device>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masked_paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<IdValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<IdValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_gids: Option<Vec<IdValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_new_privileges: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_propagation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_path: Option<String>,
    /// OCI `linux.resources`, as the OCI spec writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<oci_spec::runtime::LinuxResources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysctl: Option<BTreeMap<String, String>>,
    /// `NAME,SOFT,HARD` each (`RLIMIT_` optional, `unlimited` allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rlimits: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid_mappings: Option<Vec<IdMapping>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid_mappings: Option<Vec<IdMapping>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeSection>,

    // hull's own keys.
    /// Services: `always`, `on-failure` (default) or `never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<contract::RestartPolicy>,
    /// Services: bounds of the delay between restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_backoff: Option<Backoff>,
    /// Services: restarts in a row before the service is left failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_limit: Option<u32>,
    /// Services: services that must be ready before this one starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends: Option<Vec<String>>,
    /// Services: when the service counts as ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<ReadinessValue>,
    /// Services: how long readiness may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_timeout: Option<DurationValue>,
    /// Services: the signal that asks the service to stop (default SIGTERM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<SignalValue>,
    /// Services: from the stop signal to SIGKILL (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<DurationValue>,
    /// onboot: a failure stops the boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// Copy the output to the console as `NAME | line` (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<bool>,
}

impl ImageEntry {
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}

/// One entry of `files`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub directory: bool,
    #[serde(default)]
    pub symlink: Option<String>,
    #[serde(default)]
    pub contents: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    /// `yaml`: the file holds the resolved description (LinuxKit writes the
    /// merged YAML; hull writes `/etc/hull/image.json`'s content as YAML-compatible JSON).
    #[serde(default)]
    pub metadata: Option<String>,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub uid: Option<IdValue>,
    #[serde(default)]
    pub gid: Option<IdValue>,
}

/// One entry of `volumes` (checked; building them is not there yet, and
/// `hull build` says so).
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub readonly: bool,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub platforms: Option<Vec<String>>,
}

/// LinuxKit's old content-trust section (accepted, ignored with a note):
/// parsed only so that its shape is checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    #[serde(default)]
    pub image: Option<Vec<String>>,
    #[serde(default)]
    pub org: Option<Vec<String>>,
}

pub const TOP_KEYS: &[&str] = &[
    "kernel",
    "init",
    "onboot",
    "onshutdown",
    "services",
    "files",
    "volumes",
    "trust",
];

/// Reads and parses one YAML file: what could be parsed, and every mistake.
pub fn load(path: &Path) -> (Config, ConfigErrors) {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_partial(path, &text),
        Err(e) => (
            Config::default(),
            ConfigErrors(vec![Pos {
                file: path.to_path_buf(),
                line: 0,
                col: 0,
            }
            .error(format!("cannot read: {e}"))]),
        ),
    }
}

/// Parses one file; any mistake is an error.
#[cfg(test)]
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let (config, errs) = parse_partial(path, text);
    if errs.is_empty() {
        Ok(config)
    } else {
        Err(errs)
    }
}

/// Parses one file, collecting every mistake; what could be parsed is
/// returned too (entries without their bad keys), so that the checks across
/// entries can still run and report their findings in the same run.
pub fn parse_partial(path: &Path, text: &str) -> (Config, ConfigErrors) {
    // A byte-order mark (some Windows editors write one) is not content; the
    // YAML parser would read it as part of the first key.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut errs = ConfigErrors::default();
    let file = path.to_path_buf();
    let at = |line: usize, col: usize| Pos {
        file: file.clone(),
        line,
        col,
    };
    let node = match crate::yaml_load::load(text) {
        Ok(n) => n,
        Err((mark, message)) => {
            errs.push(marker_pos(path, mark.as_ref()).error(message));
            return (Config::default(), errs);
        }
    };
    let mut config = Config::default();
    let Some(top) = node.as_mapping() else {
        errs.push(at(1, 1).error("the description must be a mapping (kernel:, init:, ...)"));
        return (config, errs);
    };
    for (key, value) in top.iter() {
        let key_pos = marker_pos(path, key.span().start());
        match key.as_str() {
            "kernel" => {
                if let Some(k) = item::<Kernel>(path, value, &mut errs) {
                    config.kernels.push(k);
                }
            }
            "init" => config.init = list(path, key.as_str(), value, &mut errs),
            "onboot" => config.onboot = list(path, key.as_str(), value, &mut errs),
            "onshutdown" => config.onshutdown = list(path, key.as_str(), value, &mut errs),
            "services" => config.services = list(path, key.as_str(), value, &mut errs),
            "files" => config.files = list(path, key.as_str(), value, &mut errs),
            "volumes" => config.volumes = list(path, key.as_str(), value, &mut errs),
            "trust" => {
                let _ = item::<Trust>(path, value, &mut errs);
                config.trust.push(key_pos);
            }
            "outputs" => errs.push(key_pos.error(
                "`outputs` was dropped from LinuxKit's format in 2017; choose the format with `hull build -f`",
            )),
            other => errs.push(key_pos.error(unknown_key_message(other, TOP_KEYS))),
        }
    }
    (config, errs)
}

/// A sequence value (an absent or null value is an empty list).
fn list<T: serde::de::DeserializeOwned>(
    path: &Path,
    key: &str,
    value: &Node,
    errs: &mut ConfigErrors,
) -> Vec<Located<T>> {
    match value {
        Node::Sequence(s) => s.iter().filter_map(|n| item::<T>(path, n, errs)).collect(),
        Node::Scalar(s) if s.as_str().is_empty() || s.as_str() == "~" || s.as_str() == "null" => {
            Vec::new()
        }
        _ => {
            errs.push(pos_of(path, value).error(format!("`{key}` must be a list")));
            Vec::new()
        }
    }
}

/// Deserializes one entry; on a mistake, records it, drops the offending key
/// and tries again, so every bad key of the entry is reported at once.
pub fn item<T: serde::de::DeserializeOwned>(
    path: &Path,
    node: &Node,
    errs: &mut ConfigErrors,
) -> Option<Located<T>> {
    let mut work = node.clone();
    // Each round removes one key, so this ends; the cap guards against a
    // removal that makes no progress.
    for _ in 0..256 {
        match marked_yaml::from_node::<T>(&work) {
            Ok(value) => {
                return Some(Located {
                    value,
                    file: path.to_path_buf(),
                    node: node.clone(),
                })
            }
            Err(e) => {
                let mark = e.start_mark().or_else(|| work.span().start().copied());
                let message = serde_message(&e);
                errs.push(marker_pos(path, mark.as_ref()).error(message));
                let mark = mark?;
                if !remove_at(&mut work, (mark.line(), mark.column())) {
                    return None;
                }
            }
        }
    }
    None
}

/// Removes the innermost mapping entry that holds `pos` (the key itself or
/// anything in its value). Entries are in document order, so the entry that
/// holds a position is the last one whose key starts at or before it.
fn remove_at(node: &mut Node, pos: (usize, usize)) -> bool {
    match node {
        Node::Mapping(m) => remove_in_mapping(m, pos),
        Node::Sequence(s) => {
            let idx = s.iter().rposition(|n| start(n) <= Some(pos));
            match idx {
                Some(i) => remove_at(&mut s[i], pos),
                None => false,
            }
        }
        Node::Scalar(_) => false,
    }
}

fn remove_in_mapping(m: &mut MarkedMappingNode, pos: (usize, usize)) -> bool {
    let key = m
        .iter()
        .rfind(|(k, _)| k.span().start().map(|s| (s.line(), s.column())) <= Some(pos))
        .map(|(k, _)| k.clone());
    let Some(key) = key else { return false };
    let at_key = key.span().start().map(|s| (s.line(), s.column())) == Some(pos);
    if !at_key {
        if let Some(v) = m.get_mut(&key) {
            if remove_at(v, pos) {
                // An emptied mapping would only give a second, confusing
                // error (`readiness: {tcp: x}` -> "empty map"): drop it whole.
                if v.as_mapping().is_some_and(|inner| inner.is_empty()) {
                    m.remove(&key);
                }
                return true;
            }
        }
    }
    m.remove(&key).is_some()
}

fn start(n: &Node) -> Option<(usize, usize)> {
    n.span().start().map(|s| (s.line(), s.column()))
}

/// serde's message, in the words of this file: keys, values, suggestions.
fn serde_message(e: &marked_yaml::FromNodeError) -> String {
    use marked_yaml::Error as E;
    // The key the value belongs to, when serde knows it (`readiness.tcp` -> `tcp`).
    let key = e
        .path()
        .and_then(|p| p.rsplit('.').next())
        .filter(|k| !k.is_empty() && !k.starts_with('?') && !k.starts_with('['));
    let msg = match &**e {
        E::UnknownFieldError(field, expected, _) => return unknown_key_message(field, expected),
        E::NotBoolean(_) => "expected true or false".to_string(),
        E::IntegerParseFailure(err, _) => format!("expected a number ({err})"),
        E::FloatParseFailure(err, _) => format!("expected a number ({err})"),
        E::Other(msg, _) => {
            let mut msg = msg
                .replace(
                    "data did not match any variant of untagged enum NumberOrText",
                    "expected a single value (a number or a word)",
                )
                .replace("expected a sequence", "expected a list");
            if let Some(i) = msg.find("expected struct ") {
                msg.truncate(i);
                msg.push_str("expected a mapping (key: value lines)");
            }
            msg
        }
    };
    match key {
        Some(k) => format!("{k}: {msg}"),
        None => msg,
    }
}

/// "unknown key" with the closest known key as a suggestion.
pub fn unknown_key_message(field: &str, expected: &[&str]) -> String {
    match closest(field, expected.iter().copied()) {
        Some(c) => format!("unknown key {field:?} (did you mean {c:?}?)"),
        None => format!(
            "unknown key {field:?} (known keys: {})",
            expected.join(", ")
        ),
    }
}

/// The candidate within a small edit distance of `word`, if any.
pub fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Parses an image's `org.mobyproject.config` label (JSON, which is YAML)
/// with the same types and the same strictness as the YAML.
pub fn parse_label(text: &str) -> Result<ImageEntry, String> {
    let node = crate::yaml_load::load(text).map_err(|(_, m)| m)?;
    let entry: ImageEntry = marked_yaml::from_node(&node).map_err(|e| serde_message(&e))?;
    if entry.name.is_some() {
        return Err("a label cannot set `name`".into());
    }
    if entry.image.is_some() {
        return Err("a label cannot set `image`".into());
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_key() {
        let c = p("\u{feff}kernel:\n  image: k\nservices:\n  - name: a\n    image: b\n").unwrap();
        assert_eq!(c.services.len(), 1);
        // Positions stay those an editor shows.
        let e = errors("\u{feff}kernel:\n  imag: k\n");
        assert!(
            e[0].starts_with("t.yml:2:3: unknown key \"imag\""),
            "{e:#?}"
        );
    }

    #[test]
    fn linuxkits_old_outputs_key_gets_its_own_message() {
        let e = errors("kernel:\n  image: k\noutputs:\n  - format: kernel+initrd\n");
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(
            e[0].starts_with("t.yml:3:1: `outputs` was dropped"),
            "{e:#?}"
        );
    }

    #[test]
    fn labels_as_linuxkit_writes_them_parse() {
        // `linuxkit pkg build` writes the `config:` of build.yml as Go's
        // json.Marshal does: one line, every key of a struct that is not
        // omitempty (createInRoot, bindNS), device modes as strings.
        let label = r#"{"capabilities":["CAP_SYS_ADMIN","CAP_MKNOD"],"binds":["/dev:/dev"],"devices":[{"path":"all","type":"b","major":0,"minor":0},{"path":"/dev/console","type":"c","major":5,"minor":1,"mode":"0666"}],"net":"new","ipc":"new","pid":"host","readonly":true,"oomScoreAdj":-800,"rootfsPropagation":"shared","sysctl":{"net.ipv4.ip_forward":"1"},"resources":{"devices":[{"allow":true,"access":"rwm"}],"memory":{"limit":1048576}},"runtime":{"mkdir":["/var/lib/x"],"interfaces":[{"name":"wg0","add":"wireguard","createInRoot":true},{"name":"eth1","createInRoot":false}],"bindNS":{"net":"/run/netns/wg0"},"namespace":"ns"}}"#;
        let e = parse_label(label).unwrap();
        assert_eq!(e.net.as_deref(), Some("new"));
        assert_eq!(e.devices.as_ref().unwrap().len(), 2);
        assert_eq!(e.oom_score_adj, Some(-800));
        let rt = e.runtime.unwrap();
        assert_eq!(rt.interfaces.unwrap()[0].add, "wireguard");
        assert_eq!(rt.bind_ns.unwrap().net.as_deref(), Some("/run/netns/wg0"));
        // An empty bindNS and null fields, as Go writes a zero struct.
        let e = parse_label(r#"{"runtime":{"bindNS":{},"mounts":null},"capabilities":null}"#);
        assert!(e.is_ok(), "{e:?}");
        // A device in a YAML config may leave out what `path: all` does not need.
        let e = parse_label("devices:\n  - path: all\n    type: b\n  - {path: /dev/tty0, type: c, major: 4, minor: 0, mode: 0666}\n");
        assert!(e.is_ok(), "{e:?}");
    }

    fn p(text: &str) -> Result<Config, ConfigErrors> {
        parse(Path::new("t.yml"), text)
    }

    fn errors(text: &str) -> Vec<String> {
        p(text)
            .unwrap_err()
            .0
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn spine_example_parses() {
        let c = p("kernel:\n  image: \"@pkg:pkg/kernel\"\n  cmdline: console=ttyS0\ninit:\n  - \"@pkg:pkg/init\"\nonboot:\n  - name: a\n    image: busybox\n    command: [sh, -c, 'echo hi']\n    binds: [/run/x:/x]\n    runtime:\n      mkdir: [/run/x]\nservices:\n  - name: s\n    image: busybox\n    restart: always\n").unwrap();
        assert_eq!(c.onboot[0].value.name(), "a");
        assert_eq!(
            c.services[0].value.restart,
            Some(contract::RestartPolicy::Always)
        );
        assert_eq!(c.init[0].value, "@pkg:pkg/init");
        assert_eq!(c.services[0].pos().line, 14);
    }

    #[test]
    fn unknown_key_names_file_line_and_suggestion() {
        let e = errors("services:\n  - name: s\n    image: busybox\n    comand: [true]\n");
        assert_eq!(
            e,
            ["t.yml:4:5: unknown key \"comand\" (did you mean \"command\"?)"]
        );
    }

    #[test]
    fn every_error_of_a_file_is_reported() {
        let e = errors(
            "kernal: {}\nservices:\n  - name: s\n    image: x\n    comand: [true]\n    readonly: perhaps\n    runtime:\n      mkdirs: [/x]\n  - name: t\n    image: y\n    netx: host\n",
        );
        assert_eq!(e.len(), 5, "{e:#?}");
        assert!(
            e[0].starts_with("t.yml:1:1: unknown key \"kernal\""),
            "{e:#?}"
        );
        assert!(
            e[1].starts_with("t.yml:5:5: unknown key \"comand\""),
            "{e:#?}"
        );
        assert!(e[2].starts_with("t.yml:6:15: "), "{e:#?}");
        assert!(
            e[3].starts_with("t.yml:8:7: unknown key \"mkdirs\" (did you mean \"mkdir\"?)"),
            "{e:#?}"
        );
        assert!(
            e[4].starts_with("t.yml:11:5: unknown key \"netx\""),
            "{e:#?}"
        );
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_are_positioned() {
        let e = errors("services:\n  - name: s\n    name: t\n");
        assert!(
            e[0].starts_with("t.yml:3:5: key \"name\" is written twice"),
            "{e:?}"
        );
        let e = errors("services: [\n");
        assert!(e[0].contains("not valid YAML"), "{e:?}");
    }

    #[test]
    fn kernel_fields_merge_later_wins() {
        let a = p("kernel:\n  image: k1\n  cmdline: a\n").unwrap();
        let b = p("kernel:\n  cmdline: b\n  tar: none\n").unwrap();
        let c = p("kernel:\n  image: k3\n").unwrap();
        let m = Config::merge(vec![a, b, c]);
        let (k, image) = m.kernel().unwrap();
        assert_eq!(k.image.as_deref(), Some("k3"));
        assert_eq!(k.cmdline.as_deref(), Some("b"));
        assert_eq!(k.tar.as_deref(), Some("none"));
        assert_eq!(image.pos().line, 2);
    }

    #[test]
    fn lists_append_in_file_order_and_keep_their_file() {
        let a = parse(
            Path::new("a.yml"),
            "init: [i1]\nservices:\n  - {name: s1, image: x}\n",
        )
        .unwrap();
        let b = parse(
            Path::new("b.yml"),
            "init: [i2]\nonboot:\n  - {name: o1, image: x}\nonshutdown:\n  - {name: d1, image: x}\nservices:\n  - {name: s2, image: y}\n",
        )
        .unwrap();
        let m = Config::merge(vec![a, b]);
        let init: Vec<&str> = m.init.iter().map(|i| i.value.as_str()).collect();
        assert_eq!(init, ["i1", "i2"]);
        let s: Vec<(&str, String)> = m
            .services
            .iter()
            .map(|e| (e.value.name(), e.file.display().to_string()))
            .collect();
        assert_eq!(s, [("s1", "a.yml".into()), ("s2", "b.yml".into())]);
        // uids from 100: onboot, then onshutdown, then services, each in
        // merged order (LinuxKit's rule), whatever file they came from.
        let ids = m.id_map();
        assert_eq!(
            (ids["o1"], ids["d1"], ids["s1"], ids["s2"]),
            (100, 101, 102, 103)
        );
    }

    #[test]
    fn durations_and_signals() {
        assert_eq!(DurationValue::Text("250ms".into()).millis(), Ok(250));
        assert_eq!(DurationValue::Text("2m".into()).millis(), Ok(120_000));
        assert_eq!(DurationValue::Seconds(10).millis(), Ok(10_000));
        assert_eq!(DurationValue::Text("10".into()).millis(), Ok(10_000));
        assert!(DurationValue::Text("soon".into()).millis().is_err());
        assert_eq!(SignalValue::Name("SIGINT".into()).number(), Ok(2));
        assert_eq!(SignalValue::Name("hup".into()).number(), Ok(1));
        assert_eq!(SignalValue::Number(15).number(), Ok(15));
        assert!(SignalValue::Name("SIGFOO".into()).number().is_err());
        assert!(SignalValue::Number(0).number().is_err());
    }

    #[test]
    fn hull_keys_parse() {
        let c = p("services:\n  - name: web\n    image: x\n    restartBackoff: {initial: 250ms, max: 30s}\n    startLimit: 3\n    depends: [db]\n    readiness: {tcp: 8080}\n    readinessTimeout: 1m\n    stopSignal: SIGINT\n    stopGracePeriod: 5\n  - name: db\n    image: x\n    readiness: notify\n  - name: f\n    image: x\n    readiness: {file: /run/f.ready}\n").unwrap();
        let w = &c.services[0].value;
        assert_eq!(w.readiness, Some(ReadinessValue::Tcp(8080)));
        assert_eq!(w.stop_signal, Some(SignalValue::Name("SIGINT".into())));
        assert_eq!(w.stop_grace_period, Some(DurationValue::Seconds(5)));
        assert_eq!(c.services[1].value.readiness, Some(ReadinessValue::Notify));
        assert_eq!(
            c.services[2].value.readiness,
            Some(ReadinessValue::File("/run/f.ready".into()))
        );
    }

    #[test]
    fn label_is_parsed_strictly() {
        let l =
            parse_label(r#"{"capabilities":["CAP_NET_ADMIN"],"binds":["/a:/a"],"uid":5}"#).unwrap();
        assert_eq!(l.uid, Some(IdValue::Number(5)));
        assert!(parse_label(r#"{"name":"x"}"#).is_err());
        assert!(parse_label(r#"{"capabilitiez":[]}"#)
            .unwrap_err()
            .contains("did you mean \"capabilities\""));
    }
}
