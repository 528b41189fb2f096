//! Running one subcommand: a request, its replies printed on stdout.

use std::io::Write;
use std::path::Path;

use contract::control::{Op, Reply, ServiceStatus};

use crate::format::{boot_table, event_line, ps_table};
use crate::{parse_signal, Client, CtlCommand, CtlError, ANSWER_TIMEOUT};

/// Runs one subcommand against the control socket at `path`, printing to
/// stdout; returns the exit code (for `exec`, the command's).
pub fn run(path: &Path, cmd: CtlCommand) -> Result<i32, CtlError> {
    // Bad input is reported as such before anything is asked.
    if let CtlCommand::Kill { signal, .. } = &cmd {
        parse_signal(signal)?;
    }
    let mut c = Client::connect(path)?;
    let mut out = std::io::stdout().lock();
    match cmd {
        CtlCommand::Ps { json } => {
            let services: Vec<ServiceStatus> = c
                .call(Op::Ps)?
                .into_iter()
                .find_map(|r| match r {
                    Reply::Ps { services } => Some(services),
                    _ => None,
                })
                .unwrap_or_default();
            if json {
                writeln!(out, "{}", pretty(&services))?;
            } else {
                write!(out, "{}", ps_table(&services))?;
            }
        }
        CtlCommand::Inspect { name } => {
            for r in c.call(Op::Inspect { name })? {
                if let Reply::Inspect(i) = r {
                    writeln!(out, "{}", pretty(&i))?;
                }
            }
        }
        CtlCommand::Logs {
            follow,
            tail,
            timestamps,
            name,
        } => {
            let id = c.send(Op::Logs { name, follow, tail })?;
            let timeout = (!follow).then_some(ANSWER_TIMEOUT);
            loop {
                match c.next(id, timeout)? {
                    Reply::Log(l) => {
                        if timestamps {
                            writeln!(out, "{:10.3} {}", l.time, l.line)?;
                        } else {
                            writeln!(out, "{}", l.line)?;
                        }
                        if follow {
                            out.flush()?;
                        }
                    }
                    Reply::Error { message } => return Err(CtlError::Refused(message)),
                    Reply::End { .. } => break,
                    _ => {}
                }
            }
        }
        CtlCommand::Events { follow, json } => {
            let id = c.send(Op::Events { follow })?;
            let timeout = (!follow).then_some(ANSWER_TIMEOUT);
            loop {
                match c.next(id, timeout)? {
                    Reply::Event(e) => {
                        if json {
                            writeln!(out, "{}", serde_json::to_string(&e).unwrap_or_default())?;
                        } else {
                            writeln!(out, "{}", event_line(&e))?;
                        }
                        if follow {
                            out.flush()?;
                        }
                    }
                    Reply::Error { message } => return Err(CtlError::Refused(message)),
                    Reply::End { .. } => break,
                    _ => {}
                }
            }
        }
        CtlCommand::Exec { tty, name, cmd } => {
            drop(out);
            return crate::exec::exec(&mut c, name, cmd, tty);
        }
        CtlCommand::Start { name } => done(&mut out, c.call(Op::Start { name })?)?,
        CtlCommand::Stop { name } => done(&mut out, c.call(Op::Stop { name })?)?,
        CtlCommand::Restart { name } => done(&mut out, c.call(Op::Restart { name })?)?,
        CtlCommand::Kill { signal, name } => {
            let signal = parse_signal(&signal)?;
            done(&mut out, c.call(Op::Kill { name, signal })?)?
        }
        CtlCommand::Dmesg => {
            for r in c.call(Op::Dmesg)? {
                if let Reply::Dmesg { lines } = r {
                    for l in lines {
                        writeln!(out, "{l}")?;
                    }
                }
            }
        }
        CtlCommand::BootTime { json } => {
            for r in c.call(Op::BootTime)? {
                if let Reply::BootTime { phases } = r {
                    if json {
                        writeln!(out, "{}", pretty(&phases))?;
                    } else {
                        write!(out, "{}", boot_table(&phases))?;
                    }
                }
            }
        }
        CtlCommand::Shutdown => done(&mut out, c.call(Op::Shutdown)?)?,
        CtlCommand::Reboot => done(&mut out, c.call(Op::Reboot)?)?,
    }
    Ok(0)
}

fn pretty<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn done(out: &mut impl Write, replies: Vec<Reply>) -> Result<(), CtlError> {
    for r in replies {
        if let Reply::End { message } = r {
            writeln!(out, "{message}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_socket_is_a_clear_error() {
        let e = run(Path::new("/nonexistent/control.sock"), CtlCommand::Dmesg).unwrap_err();
        assert!(
            report::chain(&e).starts_with("cannot reach hull-init at /nonexistent/control.sock: "),
            "{e}"
        );
    }
}
