//! `mounts` and `runtime.mounts`: OCI mounts with LinuxKit's inferences.

use crate::raw::RawMount;

/// A mount with every part known: LinuxKit infers the type from a special
/// source (`proc`, `sysfs`, `devpts`, `cgroup`, `mqueue`; `tmpfs` for
/// `/dev`), the source from the type, the destination from the type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: String,
    pub source: String,
    pub destination: String,
    pub options: Vec<String>,
    /// The volume a `type: bind` mount's source names when it is not a
    /// path (LinuxKit's rule, as for `binds`).
    pub volume: Option<String>,
    /// Where it was written in its list (for messages: a list keeps only
    /// its good entries).
    pub index: usize,
}

impl Mount {
    /// A `mounts` entry: the destination is absolute, in the container.
    pub(crate) fn parse(m: &RawMount, index: usize) -> Result<Mount, String> {
        let done = infer(m, index)?;
        if !done.destination.starts_with('/') {
            return Err(format!(
                "mount destination {:?} must be an absolute path",
                done.destination
            ));
        }
        Ok(done)
    }

    /// A `runtime.mounts` entry: a relative destination is allowed and
    /// means inside the container's rootfs (as in LinuxKit's service
    /// runner); an absolute one is in the guest's root.
    pub(crate) fn parse_runtime(m: &RawMount, index: usize) -> Result<Mount, String> {
        let done = infer(m, index)?;
        if done.destination.split('/').any(|p| p == "..") {
            return Err(format!(
                "mount destination {:?} must not contain `..`",
                done.destination
            ));
        }
        Ok(done)
    }

    /// A bind mount, by its type or its options.
    pub fn is_bind(&self) -> bool {
        self.kind == "bind" || self.options.iter().any(|o| o == "bind" || o == "rbind")
    }
}

fn infer(m: &RawMount, index: usize) -> Result<Mount, String> {
    let src = m.source.clone().unwrap_or_default();
    let dest = m.destination.clone().unwrap_or_default();
    let mut kind = m.kind.clone().unwrap_or_default();
    if kind.is_empty()
        && matches!(
            src.as_str(),
            "mqueue" | "devpts" | "proc" | "sysfs" | "cgroup"
        )
    {
        kind = src.clone();
    }
    if kind.is_empty() && dest == "/dev" {
        kind = "tmpfs".into();
    }
    if kind.is_empty() {
        return Err(format!(
            "the mount at {dest:?} has no `type` and none can be inferred"
        ));
    }
    let volume = (m.kind.as_deref() == Some("bind") && !src.is_empty() && !src.starts_with('/'))
        .then(|| src.clone());
    let source = if src.is_empty() { kind.clone() } else { src };
    let destination = if dest.is_empty() {
        match kind.as_str() {
            "proc" => "/proc",
            "devpts" => "/dev/pts",
            "sysfs" => "/sys",
            "cgroup" | "cgroup2" => "/sys/fs/cgroup",
            "mqueue" => "/dev/mqueue",
            _ => return Err(format!("a {kind} mount needs a `destination`")),
        }
        .to_string()
    } else {
        dest
    };
    Ok(Mount {
        kind,
        source,
        destination,
        options: m.options.clone().unwrap_or_default(),
        volume,
        index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(kind: Option<&str>, source: Option<&str>, destination: Option<&str>) -> RawMount {
        RawMount {
            kind: kind.map(String::from),
            source: source.map(String::from),
            destination: destination.map(String::from),
            options: None,
        }
    }

    #[test]
    fn type_source_and_destination_are_inferred() {
        let m = Mount::parse(&raw(None, Some("proc"), None), 0).unwrap();
        assert_eq!((m.kind.as_str(), m.destination.as_str()), ("proc", "/proc"));
        let m = Mount::parse(&raw(None, None, Some("/dev")), 0).unwrap();
        assert_eq!((m.kind.as_str(), m.source.as_str()), ("tmpfs", "tmpfs"));
        let m = Mount::parse(&raw(Some("bind"), Some("data"), Some("/d")), 2).unwrap();
        assert_eq!((m.volume.as_deref(), m.index), (Some("data"), 2));
        assert!(m.is_bind());
        assert_eq!(
            Mount::parse(&raw(None, None, Some("/data")), 0).unwrap_err(),
            "the mount at \"/data\" has no `type` and none can be inferred"
        );
        assert_eq!(
            Mount::parse(&raw(Some("tmpfs"), None, None), 0).unwrap_err(),
            "a tmpfs mount needs a `destination`"
        );
    }

    #[test]
    fn runtime_mounts_may_be_relative_but_not_climb() {
        let rel = raw(Some("tmpfs"), None, Some("rel"));
        assert!(Mount::parse(&rel, 0).is_err());
        assert_eq!(Mount::parse_runtime(&rel, 0).unwrap().destination, "rel");
        let up = raw(Some("tmpfs"), None, Some("a/../../etc"));
        assert!(Mount::parse_runtime(&up, 0).is_err());
    }
}
