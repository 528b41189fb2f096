//! `stopSignal`: a name (`SIGTERM`, `TERM`, `term`) or a number, read with
//! the one signal table ([`contract::signal`]), so that the number written
//! at build time is the guest's.

use crate::raw::NumberOrText;

/// A signal number Linux has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal(pub i32);

impl Signal {
    pub(crate) fn read(v: &NumberOrText) -> Result<Signal, String> {
        let n = match v {
            NumberOrText::Number(n) => contract::signal::from_number(*n),
            NumberOrText::Text(t) => contract::signal::parse(t),
        };
        n.map(Signal).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        let text = |t: &str| Signal::read(&NumberOrText::Text(t.into()));
        assert_eq!(text("SIGINT"), Ok(Signal(2)));
        assert_eq!(text("hup"), Ok(Signal(1)));
        assert_eq!(Signal::read(&NumberOrText::Number(15)), Ok(Signal(15)));
        assert_eq!(
            text("SIGSTAHP").unwrap_err(),
            "\"SIGSTAHP\" is not a signal name (like SIGTERM or SIGINT)"
        );
        assert_eq!(
            Signal::read(&NumberOrText::Number(0)).unwrap_err(),
            "0 is not a signal number (1-64)"
        );
    }
}
