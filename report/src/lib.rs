//! How every hull binary (`hull`, `hullctl`, `hull-init`) reports a failure:
//! one line holding the error and each of its causes, and an exit code that
//! says whose fault it was (DESIGN.md, "Conventions"):
//!
//! - 0: it worked;
//! - 1: the operation failed (a network, a disk, a guest that did not answer);
//! - 2: bad usage or bad input (a flag, a YAML file, a package definition).
//!
//! Libraries never print. They return typed errors whose message says what
//! failed at their step and whose `#[source]` is the cause; a message never
//! repeats its source, because [`chain`] prints it. Bad input is marked by
//! wrapping it in [`BadInput`] (or by any error in the chain being one), so
//! the exit code is decided in one place, [`exit_code`]. An enum variant that
//! carries a `BadInput` must keep it reachable through `source()`: use
//! `#[error("{0}")] Input(#[from] BadInput)`, not `#[error(transparent)]`,
//! which forwards `source()` past it ([`chain`] drops the repeated text).

use std::error::Error;
use std::fmt;

/// The exit codes of every hull binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Failed = 1,
    BadInput = 2,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// Marks an error as the user's input being wrong (exit code 2): a bad flag,
/// a malformed file, a value out of range. Its message is printed as is.
#[derive(Debug)]
pub struct BadInput {
    message: String,
    source: Option<Box<dyn Error + Send + Sync + 'static>>,
}

impl BadInput {
    /// Bad input described by one message.
    pub fn new(message: impl Into<String>) -> Self {
        BadInput {
            message: message.into(),
            source: None,
        }
    }

    /// The marker a library error carries as its `#[source]` when the user's
    /// input is at fault: it adds nothing to the printed chain (an empty
    /// message is skipped) and makes [`exit_code`] answer [`Exit::BadInput`].
    pub fn marker() -> Self {
        BadInput::new("")
    }

    /// Bad input whose details are another error (printed after `message`).
    pub fn because(
        message: impl Into<String>,
        source: impl Into<Box<dyn Error + Send + Sync + 'static>>,
    ) -> Self {
        BadInput {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for BadInput {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// The error and each of its causes, outermost first, joined by `": "`.
/// Empty messages (transparent wrappers) are skipped, and so is a cause whose
/// text its parent already ends with (a parent that repeats its source).
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut out = String::new();
    let mut cur: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        if !text.is_empty() && !out.ends_with(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        cur = e.source();
    }
    out
}

/// [`Exit::BadInput`] when any error in the chain is [`BadInput`], else
/// [`Exit::Failed`].
pub fn exit_code(err: &(dyn Error + 'static)) -> Exit {
    let mut cur: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<BadInput>().is_some() {
            return Exit::BadInput;
        }
        cur = e.source();
    }
    Exit::Failed
}

/// Prints `PROGRAM: chain` on stderr and returns the exit code to use.
pub fn fail(program: &str, err: &(dyn Error + 'static)) -> i32 {
    eprintln!("{program}: {}", chain(err));
    exit_code(err).code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum StepError {
        #[error("reading /etc/x")]
        Read(#[source] std::io::Error),
        // Not `transparent`: that would hide the BadInput from `source()`.
        #[error("{0}")]
        Input(#[from] BadInput),
        #[error("writing: {0}")]
        Repeats(#[source] std::io::Error),
    }

    fn not_found() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")
    }

    #[test]
    fn the_chain_is_one_line_outermost_first() {
        let e = StepError::Read(not_found());
        assert_eq!(chain(&e), "reading /etc/x: no such file");
        assert_eq!(exit_code(&e), Exit::Failed);
    }

    #[test]
    fn bad_input_anywhere_in_the_chain_gives_2() {
        let e = StepError::Input(BadInput::because("--arch sparc", not_found()));
        assert_eq!(chain(&e), "--arch sparc: no such file");
        assert_eq!(exit_code(&e), Exit::BadInput);
        assert_eq!(Exit::BadInput.code(), 2);
    }

    #[test]
    fn a_marker_adds_no_text_but_gives_2() {
        #[derive(Debug, thiserror::Error)]
        #[error("--disk x: size must be a number")]
        struct BadDisk(#[source] BadInput);
        let e = BadDisk(BadInput::marker());
        assert_eq!(chain(&e), "--disk x: size must be a number");
        assert_eq!(exit_code(&e), Exit::BadInput);
    }

    #[test]
    fn a_cause_the_parent_already_printed_is_not_printed_twice() {
        let e = StepError::Repeats(not_found());
        assert_eq!(chain(&e), "writing: no such file");
    }
}
