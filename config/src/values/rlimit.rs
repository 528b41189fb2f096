//! `rlimits`: `NAME,SOFT,HARD`.

pub use oci_spec::runtime::PosixRlimitType;

/// The limits Linux knows, by name.
const RLIMITS: [(&str, PosixRlimitType); 16] = [
    ("RLIMIT_CPU", PosixRlimitType::RlimitCpu),
    ("RLIMIT_FSIZE", PosixRlimitType::RlimitFsize),
    ("RLIMIT_DATA", PosixRlimitType::RlimitData),
    ("RLIMIT_STACK", PosixRlimitType::RlimitStack),
    ("RLIMIT_CORE", PosixRlimitType::RlimitCore),
    ("RLIMIT_RSS", PosixRlimitType::RlimitRss),
    ("RLIMIT_NPROC", PosixRlimitType::RlimitNproc),
    ("RLIMIT_NOFILE", PosixRlimitType::RlimitNofile),
    ("RLIMIT_MEMLOCK", PosixRlimitType::RlimitMemlock),
    ("RLIMIT_AS", PosixRlimitType::RlimitAs),
    ("RLIMIT_LOCKS", PosixRlimitType::RlimitLocks),
    ("RLIMIT_SIGPENDING", PosixRlimitType::RlimitSigpending),
    ("RLIMIT_MSGQUEUE", PosixRlimitType::RlimitMsgqueue),
    ("RLIMIT_NICE", PosixRlimitType::RlimitNice),
    ("RLIMIT_RTPRIO", PosixRlimitType::RlimitRtprio),
    ("RLIMIT_RTTIME", PosixRlimitType::RlimitRttime),
];

/// One resource limit: `NAME,SOFT,HARD` (`RLIMIT_` optional, `unlimited` allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub kind: PosixRlimitType,
    pub soft: u64,
    pub hard: u64,
}

impl Rlimit {
    pub fn parse(r: &str) -> Result<Rlimit, String> {
        let parts: Vec<&str> = r.splitn(3, ',').collect();
        let [name, soft, hard] = parts.as_slice() else {
            return Err(format!("rlimit {r:?} is not NAME,SOFT,HARD"));
        };
        let mut full = name.trim().to_ascii_uppercase();
        if !full.starts_with("RLIMIT_") {
            full = format!("RLIMIT_{full}");
        }
        let Some((_, kind)) = RLIMITS.iter().find(|(n, _)| *n == full) else {
            return Err(format!("rlimit {:?}: unknown limit", name.trim()));
        };
        let num = |s: &str| -> Result<u64, String> {
            let s = s.trim();
            if s.eq_ignore_ascii_case("unlimited") {
                Ok(u64::MAX)
            } else {
                s.parse()
                    .map_err(|_| format!("rlimit {r:?}: {s:?} is not a number or `unlimited`"))
            }
        };
        let (soft, hard) = (num(soft)?, num(hard)?);
        if soft > hard {
            return Err(format!(
                "rlimit {r:?}: the soft limit is above the hard limit"
            ));
        }
        Ok(Rlimit {
            kind: *kind,
            soft,
            hard,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_unlimited() {
        assert_eq!(
            Rlimit::parse("nofile,1024,unlimited"),
            Ok(Rlimit {
                kind: PosixRlimitType::RlimitNofile,
                soft: 1024,
                hard: u64::MAX
            })
        );
        assert_eq!(
            Rlimit::parse("RLIMIT_CORE,0,0").unwrap().kind,
            PosixRlimitType::RlimitCore
        );
        for (bad, why) in [
            ("nofile", "is not NAME,SOFT,HARD"),
            ("fly,1,2", "unknown limit"),
            ("core,x,2", "\"x\" is not a number or `unlimited`"),
            ("core,unlimited,5", "the soft limit is above the hard limit"),
        ] {
            let e = Rlimit::parse(bad).unwrap_err();
            assert!(e.ends_with(why), "{e}");
        }
    }

    #[test]
    fn the_table_spells_limits_as_oci_spec_does() {
        for (name, kind) in RLIMITS {
            assert_eq!(serde_json::to_value(kind).unwrap(), name);
        }
    }
}
