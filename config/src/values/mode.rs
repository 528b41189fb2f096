//! File modes: `mode` of `files` and of `devices`.

/// A file mode, written in octal: `0644` or `0o644`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(pub u32);

impl FileMode {
    pub fn parse(m: &str) -> Option<FileMode> {
        let t = m.trim().trim_start_matches("0o");
        if t.is_empty() {
            return None;
        }
        u32::from_str_radix(t, 8)
            .ok()
            .filter(|v| *v <= 0o7777)
            .map(FileMode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_modes() {
        assert_eq!(FileMode::parse("0644"), Some(FileMode(0o644)));
        assert_eq!(FileMode::parse("0o1777"), Some(FileMode(0o1777)));
        assert_eq!(FileMode::parse("644"), Some(FileMode(0o644)));
        for bad in ["", "0999", "rw-r--r--", "017777"] {
            assert_eq!(FileMode::parse(bad), None, "{bad}");
        }
    }
}
