//! `hullctl dmesg`: the kernel's message buffer, read from /dev/kmsg.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

/// Every record still in the buffer, as `[seconds] message`.
pub fn read_all() -> Vec<String> {
    let mut out = Vec::new();
    let Ok(mut f) = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open("/dev/kmsg")
    else {
        return out;
    };
    // One record per read(2); a record is at most about 8 KiB.
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if let Some(line) =
                    format_record(&String::from_utf8_lossy(buf.get(..n).unwrap_or_default()))
                {
                    out.push(line);
                }
            }
            // EPIPE: records were overwritten while reading; go on.
            Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    out
}

/// `PRI,SEQ,USEC,FLAGS;message\n KEY=value...` -> `[  1.234567] message`.
fn format_record(rec: &str) -> Option<String> {
    let (head, rest) = rec.split_once(';')?;
    let usec: u64 = head.split(',').nth(2)?.parse().ok()?;
    let msg = rest.lines().next().unwrap_or("");
    Some(format!(
        "[{:5}.{:06}] {msg}",
        usec / 1_000_000,
        usec % 1_000_000
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn records_are_formatted_like_dmesg() {
        assert_eq!(
            super::format_record(
                "6,339,5140900,-;NET: Registered protocol family 10\n SUBSYSTEM=net\n"
            )
            .unwrap(),
            "[    5.140900] NET: Registered protocol family 10"
        );
        assert!(super::format_record("garbage").is_none());
    }
}
