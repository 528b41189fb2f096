//! `binds` (and `binds.add`): `SOURCE:DESTINATION[:OPTIONS]`, and `tmpfs`:
//! `DESTINATION[:OPTIONS]`.

/// Where a bind comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindSource {
    /// An absolute path in the guest.
    Path(String),
    /// A source that is not a path names one of the `volumes` (LinuxKit's
    /// rule); the checks make sure that volume is declared.
    Volume(String),
}

impl BindSource {
    pub fn as_str(&self) -> &str {
        match self {
            BindSource::Path(p) | BindSource::Volume(p) => p,
        }
    }
}

/// One `binds` entry, as LinuxKit reads it. Options default to
/// `rw,rbind,rshared`; given options get `rbind` added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: BindSource,
    pub destination: String,
    pub options: Vec<String>,
    /// Where it was written in its list (for messages: a list keeps only
    /// its good entries).
    pub index: usize,
}

impl Bind {
    pub fn parse(b: &str, index: usize) -> Result<Bind, String> {
        let parts: Vec<&str> = b.split(':').collect();
        let (source, destination, options) = match parts.as_slice() {
            [_] => {
                return Err(format!(
                    "bind {b:?} is not SOURCE:DESTINATION[:OPTIONS] (missing ':')"
                ))
            }
            [s, d] => (*s, *d, None),
            [s, d, o] => (*s, *d, Some(*o)),
            _ => {
                return Err(format!(
                    "bind {b:?} is not SOURCE:DESTINATION[:OPTIONS] (too many ':')"
                ))
            }
        };
        let source = if source.starts_with('/') {
            BindSource::Path(source.into())
        } else if volume_name_syntax(source) {
            BindSource::Volume(source.into())
        } else {
            return Err(format!(
                "bind {b:?}: the source must be an absolute path or a volume name"
            ));
        };
        if !destination.starts_with('/') {
            return Err(format!(
                "bind {b:?}: the destination must be an absolute path"
            ));
        }
        let options = match options {
            None => vec!["rw".into(), "rbind".into(), "rshared".into()],
            Some(o) => {
                let mut v = option_list(o);
                if !v.iter().any(|x| x == "rbind") {
                    v.push("rbind".into());
                }
                v
            }
        };
        Ok(Bind {
            source,
            destination: destination.into(),
            options,
            index,
        })
    }
}

/// LinuxKit's form of a volume name: lowercase letters, digits, `_`, `-`.
pub fn volume_name_syntax(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// One `tmpfs` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmpfs {
    pub destination: String,
    pub options: Vec<String>,
}

impl Tmpfs {
    pub fn parse(t: &str) -> Result<Tmpfs, String> {
        let parts: Vec<&str> = t.split(':').collect();
        let (destination, options) = match parts.as_slice() {
            [d] => (*d, None),
            [d, o] => (*d, Some(*o)),
            _ => {
                return Err(format!(
                    "tmpfs {t:?} is not DESTINATION[:OPTIONS] (too many ':')"
                ))
            }
        };
        if !destination.starts_with('/') {
            return Err(format!(
                "tmpfs {t:?}: the destination must be an absolute path"
            ));
        }
        Ok(Tmpfs {
            destination: destination.into(),
            options: options.map(option_list).unwrap_or_default(),
        })
    }
}

fn option_list(o: &str) -> Vec<String> {
    o.split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_as_linuxkit_reads_them() {
        let b = Bind::parse("/run/a:/a", 0).unwrap();
        assert_eq!(b.source, BindSource::Path("/run/a".into()));
        assert_eq!(b.options, ["rw", "rbind", "rshared"]);
        let b = Bind::parse("/:/hostroot:ro", 3).unwrap();
        assert_eq!(
            (b.options.as_slice(), b.index),
            (&["ro".to_string(), "rbind".into()][..], 3)
        );
        let b = Bind::parse("data:/data:rbind,ro", 0).unwrap();
        assert_eq!(b.source, BindSource::Volume("data".into()));
        assert_eq!(b.options, ["rbind", "ro"]);
        for (bad, why) in [
            ("/var/www", "(missing ':')"),
            ("/a:/b:ro:extra", "(too many ':')"),
            (
                "Not A Volume:/x",
                "the source must be an absolute path or a volume name",
            ),
            ("/a:b", "the destination must be an absolute path"),
        ] {
            let e = Bind::parse(bad, 0).unwrap_err();
            assert!(
                e.starts_with(&format!("bind {bad:?}")) && e.ends_with(why),
                "{e}"
            );
        }
    }

    #[test]
    fn tmpfs_destination_and_options() {
        let t = Tmpfs::parse("/tmp:size=1m,mode=1777").unwrap();
        assert_eq!(t.destination, "/tmp");
        assert_eq!(t.options, ["size=1m", "mode=1777"]);
        assert!(Tmpfs::parse("/run").unwrap().options.is_empty());
        assert_eq!(
            Tmpfs::parse("relative").unwrap_err(),
            "tmpfs \"relative\": the destination must be an absolute path"
        );
        assert!(Tmpfs::parse("/a:b:c").unwrap_err().contains("too many ':'"));
    }
}
