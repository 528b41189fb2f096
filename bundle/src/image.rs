//! What the bundle builder reads from a resolved image.

use fstree::Tree;
use serde_json::Value;

/// The label an image carries its LinuxKit image entry in.
pub const LABEL: &str = "org.mobyproject.config";

/// The parts of an OCI image config (its `config` object) a container's
/// spec starts from. Read leniently, as runtimes do: a field of another
/// type counts as not set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Option<Vec<String>>,
    pub working_dir: Option<String>,
    /// The `org.mobyproject.config` label.
    pub label: Option<String>,
}

impl ImageConfig {
    /// From the `config` object of an OCI image config (`Null` when the
    /// image has none).
    pub fn from_oci(config: &Value) -> ImageConfig {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        };
        ImageConfig {
            entrypoint: strings(&config["Entrypoint"]),
            cmd: strings(&config["Cmd"]),
            env: config["Env"].is_array().then(|| strings(&config["Env"])),
            working_dir: config["WorkingDir"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(String::from),
            label: config["Labels"][LABEL].as_str().map(String::from),
        }
    }
}

/// A resolved image: the files of its root and its config.
#[derive(Debug, Clone)]
pub struct Image {
    pub rootfs: Tree,
    pub config: ImageConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_another_type_count_as_not_set() {
        let c = ImageConfig::from_oci(&serde_json::json!({
            "Entrypoint": ["/bin/redis"], "Cmd": ["--port", 1, "1"], "Env": null,
            "WorkingDir": "", "Labels": {"org.mobyproject.config": "{}"}
        }));
        assert_eq!(c.entrypoint, ["/bin/redis"]);
        assert_eq!(c.cmd, ["--port", "1"]);
        assert_eq!(c.env, None);
        assert_eq!(c.working_dir, None);
        assert_eq!(c.label.as_deref(), Some("{}"));
        assert_eq!(ImageConfig::from_oci(&Value::Null), ImageConfig::default());
    }
}
