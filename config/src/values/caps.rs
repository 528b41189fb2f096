//! `capabilities`, `capabilities.add` and `ambient`.

pub use oci_spec::runtime::Capability;

use crate::position::Problem;
use crate::suggest::closest;

/// Every capability the 6.1 kernels know, by name, in name order.
pub const CAPABILITIES: [(&str, Capability); 41] = [
    ("CAP_AUDIT_CONTROL", Capability::AuditControl),
    ("CAP_AUDIT_READ", Capability::AuditRead),
    ("CAP_AUDIT_WRITE", Capability::AuditWrite),
    ("CAP_BLOCK_SUSPEND", Capability::BlockSuspend),
    ("CAP_BPF", Capability::Bpf),
    ("CAP_CHECKPOINT_RESTORE", Capability::CheckpointRestore),
    ("CAP_CHOWN", Capability::Chown),
    ("CAP_DAC_OVERRIDE", Capability::DacOverride),
    ("CAP_DAC_READ_SEARCH", Capability::DacReadSearch),
    ("CAP_FOWNER", Capability::Fowner),
    ("CAP_FSETID", Capability::Fsetid),
    ("CAP_IPC_LOCK", Capability::IpcLock),
    ("CAP_IPC_OWNER", Capability::IpcOwner),
    ("CAP_KILL", Capability::Kill),
    ("CAP_LEASE", Capability::Lease),
    ("CAP_LINUX_IMMUTABLE", Capability::LinuxImmutable),
    ("CAP_MAC_ADMIN", Capability::MacAdmin),
    ("CAP_MAC_OVERRIDE", Capability::MacOverride),
    ("CAP_MKNOD", Capability::Mknod),
    ("CAP_NET_ADMIN", Capability::NetAdmin),
    ("CAP_NET_BIND_SERVICE", Capability::NetBindService),
    ("CAP_NET_BROADCAST", Capability::NetBroadcast),
    ("CAP_NET_RAW", Capability::NetRaw),
    ("CAP_PERFMON", Capability::Perfmon),
    ("CAP_SETFCAP", Capability::Setfcap),
    ("CAP_SETGID", Capability::Setgid),
    ("CAP_SETPCAP", Capability::Setpcap),
    ("CAP_SETUID", Capability::Setuid),
    ("CAP_SYSLOG", Capability::Syslog),
    ("CAP_SYS_ADMIN", Capability::SysAdmin),
    ("CAP_SYS_BOOT", Capability::SysBoot),
    ("CAP_SYS_CHROOT", Capability::SysChroot),
    ("CAP_SYS_MODULE", Capability::SysModule),
    ("CAP_SYS_NICE", Capability::SysNice),
    ("CAP_SYS_PACCT", Capability::SysPacct),
    ("CAP_SYS_PTRACE", Capability::SysPtrace),
    ("CAP_SYS_RAWIO", Capability::SysRawio),
    ("CAP_SYS_RESOURCE", Capability::SysResource),
    ("CAP_SYS_TIME", Capability::SysTime),
    ("CAP_SYS_TTY_CONFIG", Capability::SysTtyConfig),
    ("CAP_WAKE_ALARM", Capability::WakeAlarm),
];

/// The name of a capability as the YAML and config.json write it.
pub fn capability_name(c: Capability) -> &'static str {
    CAPABILITIES
        .iter()
        .find(|(_, k)| *k == c)
        .map(|(n, _)| *n)
        .unwrap_or("")
}

fn capability(name: &str) -> Option<Capability> {
    CAPABILITIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
}

/// A capability list as written: a lone `all` (every capability), or the
/// capabilities named (a lone `none`, or nothing, is none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capabilities {
    All,
    List(Vec<Capability>),
}

impl Capabilities {
    /// Reads the list written at `key` (`capabilities`, `capabilities.add`
    /// or `ambient`); every bad word is a problem at its index. `all` may
    /// also be added (it then stands for every capability); adding `none`
    /// means nothing, so it is no capability there.
    pub fn parse(key: &str, list: &[String]) -> Result<Capabilities, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut caps = Vec::new();
        for (i, c) in list.iter().enumerate() {
            let word = c.to_ascii_lowercase();
            if word == "all" || (word == "none" && key != "capabilities.add") {
                if list.len() > 1 {
                    problems.push(Problem::new(
                        &[key, &i.to_string()],
                        format!("{c:?} must be the only entry of `{key}`"),
                    ));
                }
                continue;
            }
            match capability(c) {
                Some(cap) => caps.push(cap),
                None => {
                    let names = || CAPABILITIES.iter().map(|(n, _)| *n);
                    let hint = closest(c, names())
                        .or_else(|| {
                            let up = format!("CAP_{}", c.to_ascii_uppercase());
                            names().find(|k| *k == up)
                        })
                        .map(|c| format!(" (did you mean {c:?}?)"))
                        .unwrap_or_default();
                    problems.push(Problem::new(
                        &[key, &i.to_string()],
                        format!("unknown capability {c:?}{hint}"),
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        match list {
            [one] if one.eq_ignore_ascii_case("all") => Ok(Capabilities::All),
            _ => Ok(Capabilities::List(caps)),
        }
    }

    /// The capabilities, `all` spelled out in name order.
    pub fn expand(&self) -> Vec<Capability> {
        match self {
            Capabilities::All => CAPABILITIES.iter().map(|(_, c)| *c).collect(),
            Capabilities::List(l) => l.clone(),
        }
    }

    /// `capabilities.add` over a label's `capabilities` (LinuxKit): the
    /// added ones after the label's, each once. A label's lone `all` already
    /// holds what is added (LinuxKit would refuse the mixed list), and
    /// adding `all` gives all.
    pub fn add(base: Option<&Capabilities>, extra: &Capabilities) -> Capabilities {
        match (base, extra) {
            (Some(Capabilities::All), _) | (_, Capabilities::All) => Capabilities::All,
            (base, Capabilities::List(extra)) => {
                let mut list = match base {
                    Some(Capabilities::List(l)) => l.clone(),
                    _ => Vec::new(),
                };
                for c in extra {
                    if !list.contains(c) {
                        list.push(*c);
                    }
                }
                Capabilities::List(list)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_known_capability_is_in_the_table_in_name_order() {
        let names: Vec<&str> = CAPABILITIES.iter().map(|(n, _)| *n).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for (n, c) in CAPABILITIES {
            assert_eq!(capability_name(c), n);
            // The table agrees with oci-spec's own spelling.
            let oci = oci_name(c);
            assert_eq!(oci, n);
        }
    }

    fn oci_name(c: Capability) -> String {
        format!("CAP_{c}")
    }

    #[test]
    fn all_none_and_lists() {
        assert_eq!(
            Capabilities::parse("capabilities", &words(&["ALL"])),
            Ok(Capabilities::All)
        );
        assert_eq!(
            Capabilities::parse("capabilities", &words(&["none"])),
            Ok(Capabilities::List(vec![]))
        );
        assert_eq!(
            Capabilities::parse("ambient", &words(&["CAP_KILL", "CAP_CHOWN"])),
            Ok(Capabilities::List(vec![
                Capability::Kill,
                Capability::Chown
            ]))
        );
        let e = Capabilities::parse("capabilities", &words(&["CAP_NET_ADMN", "all"])).unwrap_err();
        assert_eq!(
            e,
            [
                Problem::new(
                    &["capabilities", "0"],
                    "unknown capability \"CAP_NET_ADMN\" (did you mean \"CAP_NET_ADMIN\"?)"
                ),
                Problem::new(
                    &["capabilities", "1"],
                    "\"all\" must be the only entry of `capabilities`"
                ),
            ]
        );
        let e = Capabilities::parse("capabilities.add", &words(&["none"])).unwrap_err();
        assert_eq!(e[0].message, "unknown capability \"none\"");
        let e = Capabilities::parse("ambient", &words(&["sys_admin"])).unwrap_err();
        assert!(e[0].message.ends_with("(did you mean \"CAP_SYS_ADMIN\"?)"));
    }

    #[test]
    fn adding_to_a_label() {
        let l = |c: &[Capability]| Capabilities::List(c.to_vec());
        let add = l(&[Capability::NetRaw, Capability::Kill]);
        assert_eq!(
            Capabilities::add(Some(&l(&[Capability::Kill])), &add),
            l(&[Capability::Kill, Capability::NetRaw])
        );
        assert_eq!(Capabilities::add(None, &add), add);
        assert_eq!(
            Capabilities::add(Some(&Capabilities::All), &add),
            Capabilities::All
        );
        assert_eq!(
            Capabilities::add(Some(&add), &Capabilities::All),
            Capabilities::All
        );
    }
}
