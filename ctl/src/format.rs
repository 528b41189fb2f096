//! How answers are printed: the `ps` and `boot-time` tables, event lines.

use contract::control::{BootPhase, Event, ServiceStatus};

fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{}.{}s", s, (ms % 1000) / 100),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

/// The `hullctl ps` table; a failed service gets its reason and last lines.
pub fn ps_table(services: &[ServiceStatus]) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "STATE".into(),
        "PID".into(),
        "RESTARTS".into(),
        "UPTIME".into(),
        "LAST EXIT".into(),
        "READINESS".into(),
    ]];
    for s in services {
        let mut state = s.state.as_str().to_string();
        if let Some(d) = s.restart_delay_ms {
            state.push_str(&format!(" ({})", duration(d)));
        }
        if !s.waiting_for.is_empty() {
            state.push_str(&format!(" (for {})", s.waiting_for.join(",")));
        }
        rows.push([
            s.name.clone(),
            state,
            s.pid.map_or("-".into(), |p| p.to_string()),
            s.restarts.to_string(),
            s.uptime_ms.map_or("-".into(), duration),
            s.last_exit.map_or("-".into(), |e| e.to_string()),
            format!("{}{}", s.readiness, if s.ready { " (ready)" } else { "" }),
        ]);
    }
    let mut widths = [0usize; 7];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    for s in services {
        if !s.reason.is_empty() {
            out.push_str(&format!("{}: {}\n", s.name, s.reason));
        }
        for l in &s.last_lines {
            out.push_str(&format!("{} | {l}\n", s.name));
        }
    }
    out
}

pub(crate) fn event_line(e: &Event) -> String {
    format!(
        "{:10.3} {} {}{}",
        e.time,
        e.name,
        e.state.as_str(),
        if e.detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", e.detail)
        }
    )
}

/// The `hullctl boot-time` table.
pub fn boot_table(phases: &[BootPhase]) -> String {
    let mut out = String::from("     START  DURATION  PHASE\n");
    for p in phases {
        out.push_str(&format!(
            "{:9.3}s {:8.3}s  {}\n",
            p.start, p.duration, p.name
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::control::{ExitStatus, ServiceState};

    #[test]
    fn ps_table_shows_delay_and_last_lines_of_a_failed_service() {
        let s = ServiceStatus {
            name: "crashy".into(),
            state: ServiceState::Failed,
            pid: None,
            restarts: 5,
            uptime_ms: None,
            last_exit: Some(ExitStatus::Code(1)),
            readiness: "started".into(),
            ready: false,
            waiting_for: vec![],
            restart_delay_ms: None,
            reason: "start limit reached".into(),
            last_lines: vec!["boom".into()],
        };
        let t = ps_table(&[s]);
        assert!(t.starts_with("NAME "), "{t}");
        assert!(t.contains("crashy  failed"), "{t}");
        assert!(t.contains("exit code 1"), "{t}");
        assert!(
            t.contains("crashy: start limit reached\ncrashy | boom\n"),
            "{t}"
        );
    }
}
