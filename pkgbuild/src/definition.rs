//! `build.yml`: what a package is made of. Unknown keys are errors, reported
//! with their position (`marked_yaml` keeps every node's).

use std::fs;
use std::path::Path;

use contract::Arch;
use serde::Deserialize;

use crate::error::{PkgError, YamlError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildYml {
    pub image: String,
    #[serde(default = "default_org")]
    pub org: String,
    /// Every spelling of an arch is accepted; an unknown one is an error.
    #[serde(default)]
    pub arches: Vec<Arch>,
    #[serde(default)]
    pub sources: Vec<Source>,
    /// Stored as the image's `org.mobyproject.config` label.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

fn default_org() -> String {
    "hull".into()
}

/// One source of a package: exactly one of `debian`, `cargo` or `files`,
/// with the options that go with it. (A flat struct rather than an untagged
/// enum: untagged enums lose the YAML positions and the scalar types.)
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Debian package names; `{debarch}` becomes `amd64` or `arm64`.
    #[serde(default)]
    pub debian: Option<Vec<String>>,
    #[serde(default)]
    pub suite: Option<String>,
    #[serde(default)]
    pub mirror: Option<String>,
    /// Follow Depends/Pre-Depends (default true, false for kernels).
    #[serde(default)]
    pub depends: Option<bool>,
    /// Lay the result out as a kernel image: `/kernel`, `/kernel.tar` (the
    /// modules) and `/config`, following the metapackage to the real kernel.
    #[serde(default)]
    pub kernel: bool,
    /// Dependencies taken as satisfied and left out (init-system helpers,
    /// debconf, perl: what maintainer scripts need and an appliance does not).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Keep only these paths of the unpacked packages (and what is under
    /// them): a few files of a big package (qemu-user-static).
    #[serde(default)]
    pub paths: Vec<String>,
    /// Write the CA bundle `update-ca-certificates` would write, to this path:
    /// every `usr/share/ca-certificates/**/*.crt` in path order.
    #[serde(default, rename = "ca-bundle")]
    pub ca_bundle: Option<String>,
    /// A keyring file (relative to the package) the suite's Release must be
    /// signed with, instead of the Debian archive keyring built into hull.
    #[serde(default)]
    pub keyring: Option<String>,
    /// Accept an index whose signature cannot be verified (with a warning).
    #[serde(default, rename = "allow-unsigned")]
    pub allow_unsigned: bool,
    /// Path of a busybox binary in the result whose applets get symlinks.
    #[serde(default, rename = "busybox-links")]
    pub busybox_links: Option<String>,
    /// A binary built from this workspace (static musl, target arch).
    #[serde(default)]
    pub cargo: Option<CargoSource>,
    /// A folder of the package copied into the image.
    #[serde(default)]
    pub files: Option<String>,
    /// Where `files` land (default `/`).
    #[serde(default)]
    pub to: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CargoSource {
    pub package: String,
    #[serde(default)]
    pub bin: Option<String>,
    pub to: String,
}

/// Reads and parses `DIR/build.yml`.
pub fn read(dir: &Path) -> Result<BuildYml, PkgError> {
    let file = dir.join("build.yml");
    if !file.is_file() {
        return Err(PkgError::NotAPackage {
            dir: dir.to_path_buf(),
            input: report::BadInput::marker(),
        });
    }
    let text = fs::read_to_string(&file).map_err(|source| PkgError::Io {
        path: file.clone(),
        source,
    })?;
    marked_yaml::from_yaml(0, &text).map_err(|e| {
        let (line, col) = match &e {
            marked_yaml::FromYamlError::FromNode(n) => n
                .start_mark()
                .map(|m| (m.line(), m.column()))
                .unwrap_or((0, 0)),
            _ => (0, 0),
        };
        PkgError::Yaml(YamlError {
            file: file.display().to_string(),
            line,
            col,
            message: e.to_string(),
            input: report::BadInput::marker(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yml(text: &str) -> Result<BuildYml, PkgError> {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("build.yml"), text).unwrap();
        read(dir.path())
    }

    #[test]
    fn arches_take_every_spelling_and_refuse_unknown_ones() {
        let b = yml("image: x\narches: [amd64, aarch64]\n").unwrap();
        assert_eq!(b.arches, [Arch::X86_64, Arch::Aarch64]);
        let e = yml("image: x\narches: [x86_64, sparc]\n").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("build.yml:2:"), "{text}");
        assert!(text.contains("unknown arch \"sparc\""), "{text}");
        assert_eq!(report::exit_code(&e), report::Exit::BadInput);
    }

    #[test]
    fn a_folder_without_build_yml_is_not_a_package() {
        let dir = tempfile::tempdir().unwrap();
        let e = read(dir.path()).unwrap_err();
        assert!(e
            .to_string()
            .ends_with("no build.yml here; a package is a folder with a build.yml"));
        assert_eq!(report::exit_code(&e), report::Exit::BadInput);
    }
}
