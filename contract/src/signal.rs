//! Signal names and numbers as the guest's Linux kernel numbers them, for
//! the YAML's `stopSignal` (parsed on the host) and `hullctl kill -s` (parsed
//! in the guest or on the host). A table of our own rather than the host
//! libc's: the number written at build time must be the guest's, and the
//! generic Linux numbering is the same on x86_64 and aarch64.

/// The lowest and highest signal numbers Linux accepts (real-time signals
/// run from 34, `SIGRTMIN` as glibc and musl reserve 32 and 33, up to 64).
pub const MIN: i32 = 1;
pub const MAX: i32 = 64;

/// The standard signals, by their name without `SIG`.
const NAMED: [(&str, i32); 33] = [
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Why a signal could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("{0} is not a signal number ({MIN}-{MAX})")]
    Number(i64),
    #[error("{0:?} is not a signal name (like SIGTERM or SIGINT)")]
    Name(String),
}

/// A signal number, checked to be one Linux has.
pub fn from_number(n: i64) -> Result<i32, SignalError> {
    if (i64::from(MIN)..=i64::from(MAX)).contains(&n) {
        Ok(n as i32)
    } else {
        Err(SignalError::Number(n))
    }
}

/// A signal given by name (`TERM`, `SIGTERM`, `term`, `SIGRTMIN+3`) or by
/// number (`15`).
pub fn parse(s: &str) -> Result<i32, SignalError> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i64>() {
        return from_number(n);
    }
    let up = t.to_ascii_uppercase();
    let bare = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some((_, n)) = NAMED.iter().find(|(name, _)| *name == bare) {
        return Ok(*n);
    }
    realtime(bare).ok_or_else(|| SignalError::Name(s.to_string()))
}

/// `RTMIN`, `RTMIN+N`, `RTMAX`, `RTMAX-N`, as the C libraries number them.
fn realtime(bare: &str) -> Option<i32> {
    const RTMIN: i32 = 34;
    let (base, rest, sign) = if let Some(r) = bare.strip_prefix("RTMIN") {
        (RTMIN, r, 1)
    } else if let Some(r) = bare.strip_prefix("RTMAX") {
        (MAX, r, -1)
    } else {
        return None;
    };
    let offset = match rest {
        "" => 0,
        r => {
            let digits = if sign > 0 {
                r.strip_prefix('+')?
            } else {
                r.strip_prefix('-')?
            };
            digits.parse::<i32>().ok()?
        }
    };
    let n = base + sign * offset;
    (RTMIN..=MAX).contains(&n).then_some(n)
}

/// The conventional name of a signal number (`SIGTERM`), for messages.
pub fn name(n: i32) -> Option<String> {
    NAMED
        .iter()
        .find(|(_, m)| *m == n)
        .map(|(name, _)| format!("SIG{name}"))
        .or_else(|| match n {
            34 => Some("SIGRTMIN".into()),
            35..=63 => Some(format!("SIGRTMIN+{}", n - 34)),
            64 => Some("SIGRTMAX".into()),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_every_spelling() {
        for s in ["TERM", "SIGTERM", "term", "SigTerm", " 15 ", "15"] {
            assert_eq!(parse(s), Ok(15), "{s}");
        }
        assert_eq!(parse("SIGKILL"), Ok(9));
        assert_eq!(parse("IOT"), Ok(6));
        assert_eq!(parse("SIGRTMIN"), Ok(34));
        assert_eq!(parse("SIGRTMIN+3"), Ok(37));
        assert_eq!(parse("RTMAX-1"), Ok(63));
    }

    #[test]
    fn out_of_range_and_unknown_are_errors() {
        assert_eq!(parse("0"), Err(SignalError::Number(0)));
        assert_eq!(parse("65"), Err(SignalError::Number(65)));
        assert_eq!(
            parse("SIGFOO").unwrap_err().to_string(),
            "\"SIGFOO\" is not a signal name (like SIGTERM or SIGINT)"
        );
        assert_eq!(
            parse("65").unwrap_err().to_string(),
            "65 is not a signal number (1-64)"
        );
        assert!(parse("SIGRTMIN+40").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn numbers_have_names() {
        assert_eq!(name(15).as_deref(), Some("SIGTERM"));
        assert_eq!(name(36).as_deref(), Some("SIGRTMIN+2"));
        assert_eq!(name(0), None);
    }
}
