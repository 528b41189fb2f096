//! The image description (the YAML file a user writes), as typed structs.
//!
//! The schema is LinuxKit's, so that LinuxKit files work unchanged, plus
//! hull's own keys. Unknown keys are errors, reported as `FILE:LINE:COL:
//! message`; `marked_yaml` keeps every node's position, which `serde_yaml`
//! (deprecated) does only for syntax errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use marked_yaml::Spanned;
use serde::Deserialize;

/// A bad input file: printed as one line, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl ConfigError {
    pub fn at<T>(file: &Path, span: &Spanned<T>, message: impl Into<String>) -> Self {
        let (line, col) = span
            .span()
            .start()
            .map(|m| (m.line(), m.column()))
            .unwrap_or((0, 0));
        ConfigError {
            file: file.display().to_string(),
            line,
            col,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub kernel: Option<Kernel>,
    #[serde(default)]
    pub init: Vec<Spanned<String>>,
    #[serde(default)]
    pub onboot: Vec<ImageEntry>,
    #[serde(default)]
    pub onshutdown: Vec<ImageEntry>,
    #[serde(default)]
    pub services: Vec<ImageEntry>,
    #[serde(default)]
    pub files: Vec<FileEntry>,
    /// LinuxKit's old content-trust section: accepted and ignored.
    #[serde(default)]
    pub trust: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    pub image: Spanned<String>,
    #[serde(default)]
    pub cmdline: Option<String>,
    /// Extra kernel modules to ship and load (hull's key), beyond the VM default set.
    #[serde(default)]
    pub modules: Vec<String>,
}

/// One container: the fields of LinuxKit's image entry that the spine uses,
/// plus hull's supervision keys. Also the shape of an image's
/// `org.mobyproject.config` label (JSON), which the YAML overrides.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageEntry {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing)]
    pub image: Option<Spanned<String>>,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub binds: Option<Vec<String>>,
    #[serde(default, rename = "binds.add")]
    pub binds_add: Option<Vec<String>>,
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
    #[serde(default, rename = "capabilities.add")]
    pub capabilities_add: Option<Vec<String>>,
    #[serde(default)]
    pub net: Option<String>,
    #[serde(default)]
    pub pid: Option<String>,
    #[serde(default)]
    pub ipc: Option<String>,
    #[serde(default)]
    pub uts: Option<String>,
    #[serde(default)]
    pub readonly: Option<bool>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub runtime: Option<RuntimeSection>,
    /// hull: restart policy of a service (`always`, `on-failure`, `never`).
    #[serde(default)]
    pub restart: Option<spec::RestartPolicy>,
    /// hull: an onboot container whose failure stops the boot.
    #[serde(default)]
    pub required: Option<bool>,
    /// hull: copy this container's output to the console (default true).
    #[serde(default)]
    pub console: Option<bool>,
    /// hull: time from the stop signal to SIGKILL, in seconds.
    #[serde(default, rename = "stopGracePeriod")]
    pub stop_grace_period: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    #[serde(default)]
    pub mkdir: Vec<String>,
    #[serde(default)]
    pub mounts: Vec<RuntimeMountEntry>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuntimeMountEntry {
    #[serde(default)]
    pub source: String,
    pub destination: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: Spanned<String>,
    #[serde(default)]
    pub directory: bool,
    #[serde(default)]
    pub symlink: Option<String>,
    #[serde(default)]
    pub contents: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
    /// LinuxKit's `metadata: yaml` (writes the resolved YAML); accepted, not yet acted on.
    #[serde(default, rename = "metadata")]
    pub _metadata: Option<String>,
}

/// A parsed file with where it came from (relative `@pkg:` paths and `source:` files resolve against its folder).
pub struct Loaded {
    pub path: PathBuf,
    pub config: Config,
}

/// Reads and parses one YAML file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: 0,
        col: 0,
        message: format!("cannot read: {e}"),
    })?;
    let config = parse(path, &text)?;
    Ok(Loaded {
        path: path.to_path_buf(),
        config,
    })
}

pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let err = |line: usize, col: usize, message: String| ConfigError {
        file: file.clone(),
        line,
        col,
        message,
    };
    let node = marked_yaml::parse_yaml(0, text).map_err(|e| {
        let msg = e.to_string();
        err(0, 0, format!("not valid YAML: {msg}"))
    })?;
    let config: Config = marked_yaml::from_node(&node).map_err(|e| {
        let inner = e.to_string();
        let mut pos = e.start_mark().map(|m| (m.line(), m.column()));
        // marked_yaml reports unknown keys without a position: find the key.
        if let Some(field) = unknown_field(&inner) {
            pos = pos.or_else(|| find_key(&node, field));
        }
        let (line, col) = pos.unwrap_or((0, 0));
        err(line, col, improve_message(&inner))
    })?;
    let mut names = BTreeMap::new();
    for (section, list) in [
        ("onboot", &config.onboot),
        ("onshutdown", &config.onshutdown),
        ("services", &config.services),
    ] {
        for entry in list {
            let Some(image) = &entry.image else {
                return Err(err(0, 0, format!("an entry of {section} has no image")));
            };
            if entry.name.is_empty() {
                return Err(ConfigError::at(
                    path,
                    image,
                    format!("the {section} entry for {} has no name", image.as_str()),
                ));
            }
            if !valid_name(&entry.name) {
                return Err(ConfigError::at(
                    path,
                    image,
                    format!(
                        "container name {:?} may hold only letters, digits, '-', '_' and '.'",
                        entry.name
                    ),
                ));
            }
            if let Some(other) = names.insert(entry.name.clone(), section) {
                return Err(ConfigError::at(
                    path,
                    image,
                    format!(
                        "container name {:?} is used twice (in {other} and {section})",
                        entry.name
                    ),
                ));
            }
        }
    }
    Ok(config)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.')
}

fn unknown_field(msg: &str) -> Option<&str> {
    let rest = msg.split_once("nknown field `")?.1;
    Some(rest.split_once('`')?.0)
}

/// The position of the first mapping key named `name`, depth first.
fn find_key(node: &marked_yaml::Node, name: &str) -> Option<(usize, usize)> {
    if let Some(map) = node.as_mapping() {
        for (k, v) in map.iter() {
            if k.as_str() == name {
                return k.span().start().map(|m| (m.line(), m.column()));
            }
            if let Some(p) = find_key(v, name) {
                return Some(p);
            }
        }
    } else if let Some(seq) = node.as_sequence() {
        return seq.iter().find_map(|n| find_key(n, name));
    }
    None
}

/// Adds a suggestion to serde's "unknown field" message when a known key is close.
fn improve_message(msg: &str) -> String {
    let Some(field) = unknown_field(msg) else {
        return msg.to_string();
    };
    let Some((_, expected)) = msg.split_once(&format!("`{field}`")) else {
        return msg.to_string();
    };
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let best = candidates
        .iter()
        .map(|c| (edit_distance(field, c), *c))
        .min();
    match best {
        Some((d, c)) if d <= 2 => format!("unknown key {field:?} (did you mean {c:?}?)"),
        _ => format!(
            "unknown key {field:?} (known keys: {})",
            candidates.join(", ")
        ),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new("t.yml"), text)
    }

    #[test]
    fn spine_example_parses() {
        let c = p("kernel:\n  image: \"@pkg:pkg/kernel\"\n  cmdline: console=ttyS0\ninit:\n  - \"@pkg:pkg/init\"\nonboot:\n  - name: a\n    image: busybox\n    command: [sh, -c, 'echo hi']\n    binds: [/run/x:/x]\n    runtime:\n      mkdir: [/run/x]\nservices:\n  - name: s\n    image: busybox\n    restart: always\n").unwrap();
        assert_eq!(c.onboot[0].name, "a");
        assert_eq!(c.services[0].restart, Some(spec::RestartPolicy::Always));
        assert_eq!(c.init[0].as_str(), "@pkg:pkg/init");
    }

    #[test]
    fn unknown_key_names_file_line_and_suggestion() {
        let e = p("services:\n  - name: s\n    image: busybox\n    comand: [true]\n").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("t.yml:4:"), "{s}");
        assert!(s.contains("did you mean \"command\""), "{s}");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let e = p("onboot:\n  - name: a\n    image: x\nservices:\n  - name: a\n    image: y\n")
            .unwrap_err();
        assert!(e.to_string().contains("used twice"), "{e}");
        assert_eq!(e.line, 6);
    }

    #[test]
    fn bad_value_type_is_positioned() {
        let e =
            p("services:\n  - name: s\n    image: busybox\n    readonly: perhaps\n").unwrap_err();
        assert_eq!(e.line, 4, "{e}");
    }
}
