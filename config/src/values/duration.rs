//! Durations (`readinessTimeout`, `stopGracePeriod`, `restartBackoff`):
//! `250ms`, `10s`, `2m`, or a bare number of seconds.

use crate::position::Problem;
use crate::raw::{NumberOrText, RawBackoff};

/// A duration, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Millis(pub u64);

impl Millis {
    pub(crate) fn read(v: &NumberOrText) -> Result<Millis, String> {
        match v.number().and_then(|n| u64::try_from(n).ok()) {
            Some(s) => Millis::seconds(s),
            None => Millis::parse(&v.text()),
        }
    }

    fn seconds(s: u64) -> Result<Millis, String> {
        s.checked_mul(1000)
            .map(Millis)
            .ok_or_else(|| format!("{s} seconds is too long"))
    }

    /// `250ms`, `10s`, `2m`, `1h 30m`, or a number of seconds.
    pub fn parse(text: &str) -> Result<Millis, String> {
        let t = text.trim();
        if let Ok(s) = t.parse::<u64>() {
            return Millis::seconds(s);
        }
        let d = humantime::parse_duration(t)
            .map_err(|e| format!("{t:?} is not a duration like 250ms, 10s or 2m ({e})"))?;
        u64::try_from(d.as_millis())
            .map(Millis)
            .map_err(|_| format!("{t:?} is too long"))
    }
}

/// `restartBackoff`: bounds of the delay between restarts (unset: the
/// supervisor's defaults, 250 ms and 30 s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Option<Millis>,
    pub max: Option<Millis>,
}

impl Backoff {
    pub const DEFAULT_INITIAL: Millis = Millis(250);
    pub const DEFAULT_MAX: Millis = Millis(30_000);

    pub(crate) fn read(b: &RawBackoff) -> Result<Backoff, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut bound = |key: &str, v: &Option<NumberOrText>| match v.as_ref().map(Millis::read) {
            Some(Err(m)) => {
                problems.push(Problem::new(&["restartBackoff", key], m));
                None
            }
            Some(Ok(v)) => Some(v),
            None => None,
        };
        let initial = bound("initial", &b.initial);
        let max = bound("max", &b.max);
        let i = initial.unwrap_or(Backoff::DEFAULT_INITIAL).0;
        let m = max.unwrap_or(Backoff::DEFAULT_MAX).0;
        if i == 0 || i > m {
            problems.push(Problem::new(
                &["restartBackoff"],
                format!(
                    "restartBackoff: initial ({i} ms) must be above 0 and at most max ({m} ms)"
                ),
            ));
        }
        if problems.is_empty() {
            Ok(Backoff { initial, max })
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let text = |t: &str| Millis::read(&NumberOrText::Text(t.into()));
        assert_eq!(text("250ms"), Ok(Millis(250)));
        assert_eq!(text("2m"), Ok(Millis(120_000)));
        assert_eq!(Millis::read(&NumberOrText::Number(10)), Ok(Millis(10_000)));
        assert_eq!(text("10"), Ok(Millis(10_000)));
        assert!(text("soon")
            .unwrap_err()
            .starts_with("\"soon\" is not a duration like 250ms, 10s or 2m ("));
        assert!(Millis::read(&NumberOrText::Number(-1)).is_err());
        assert_eq!(
            Millis::read(&NumberOrText::Number(i64::MAX)).unwrap_err(),
            format!("{} seconds is too long", i64::MAX)
        );
    }

    #[test]
    fn backoff_bounds() {
        let raw = |i: Option<&str>, m: Option<&str>| RawBackoff {
            initial: i.map(|t| NumberOrText::Text(t.into())),
            max: m.map(|t| NumberOrText::Text(t.into())),
        };
        assert_eq!(
            Backoff::read(&raw(Some("100ms"), None)),
            Ok(Backoff {
                initial: Some(Millis(100)),
                max: None
            })
        );
        let e = Backoff::read(&raw(Some("1m"), Some("1s"))).unwrap_err();
        assert_eq!(
            e[0].message,
            "restartBackoff: initial (60000 ms) must be above 0 and at most max (1000 ms)"
        );
        // A bad bound is reported, and the other check uses the default.
        let e = Backoff::read(&raw(Some("soon"), Some("0"))).unwrap_err();
        assert_eq!(e[0].path, ["restartBackoff", "initial"]);
        assert!(e[1].message.contains("initial (250 ms)"));
    }
}
