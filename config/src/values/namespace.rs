//! `net`, `pid`, `ipc`, `uts`, `userns`: which namespace a container gets.

/// A namespace choice as LinuxKit writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespace {
    /// The guest's own (`host`, or LinuxKit's other word for it, `root`).
    Host,
    /// A new one (`new`; for `net`, also `none`: a network namespace with
    /// only a loopback).
    New,
    /// Join the namespace at this path.
    Join(String),
}

impl Namespace {
    /// `key` is the field (`net`, `pid`, ...): only `net` takes `none`.
    pub fn parse(key: &str, value: &str) -> Result<Namespace, String> {
        match value {
            "host" | "root" => Ok(Namespace::Host),
            "new" => Ok(Namespace::New),
            "none" if key == "net" => Ok(Namespace::New),
            p if p.starts_with('/') => Ok(Namespace::Join(p.to_string())),
            _ => {
                let none = if key == "net" { ", `none`" } else { "" };
                Err(format!(
                    "{key}: {value:?} is not `host`, `new`{none} or the path of a namespace to join"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_new_none_and_paths() {
        assert_eq!(Namespace::parse("ipc", "root"), Ok(Namespace::Host));
        assert_eq!(Namespace::parse("net", "none"), Ok(Namespace::New));
        assert_eq!(
            Namespace::parse("net", "/run/netns/x"),
            Ok(Namespace::Join("/run/netns/x".into()))
        );
        assert_eq!(
            Namespace::parse("net", "bridge").unwrap_err(),
            "net: \"bridge\" is not `host`, `new`, `none` or the path of a namespace to join"
        );
        assert_eq!(
            Namespace::parse("pid", "none").unwrap_err(),
            "pid: \"none\" is not `host`, `new` or the path of a namespace to join"
        );
        assert!(Namespace::parse("uts", "").is_err());
    }
}
