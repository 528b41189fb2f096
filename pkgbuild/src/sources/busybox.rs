//! `busybox-links:` a symlink for every applet of a busybox binary.

use std::path::Path;

use fstree::{Entry, Kind, Tree};

/// Creates `bin/NAME -> busybox` for every applet of a busybox binary.
///
/// The applet list is read from the binary itself (busybox keeps the names
/// as one NUL-separated, sorted string starting with "[" and "[["), because
/// running `busybox --list` is impossible for another architecture.
pub fn add_links(tree: &mut Tree, binary: &str) -> Result<(), String> {
    let data = match tree.get(binary).map(|e| &e.kind) {
        Some(Kind::File(d)) => d.clone(),
        _ => {
            return Err(format!(
                "busybox-links: {binary} is not a file in the package"
            ))
        }
    };
    let applets = applets(&data)
        .ok_or_else(|| format!("busybox-links: no applet table found in {binary}"))?;
    let dir = Path::new(binary)
        .parent()
        .unwrap_or(Path::new("bin"))
        .to_path_buf();
    let file = Path::new(binary)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    for a in applets {
        let link = dir.join(&a);
        if !tree.contains(&link) {
            tree.insert(&link, Entry::symlink(&file))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The applet names in a busybox binary, if it has the table.
pub fn applets(data: &[u8]) -> Option<Vec<String>> {
    let start = data.windows(5).position(|w| w == b"[\0[[\0")?;
    let mut names = Vec::new();
    for chunk in data[start..].split(|&b| b == 0) {
        if chunk.is_empty() || !chunk.iter().all(|b| b.is_ascii_graphic()) || chunk.len() > 32 {
            break;
        }
        names.push(String::from_utf8_lossy(chunk).into_owned());
    }
    // The table is sorted; stop where it is not (whatever string follows it).
    let sorted_len = names
        .windows(2)
        .position(|w| w[0] >= w[1])
        .map(|i| i + 1)
        .unwrap_or(names.len());
    names.truncate(sorted_len);
    names.retain(|n| n != "busybox");
    (names.len() > 10).then_some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applet_table_is_read_from_the_binary() {
        let mut bin = b"\x7fELF junk\0\0".to_vec();
        bin.extend_from_slice(
            b"[\0[[\0acpid\0ash\0cat\0echo\0ls\0mkdir\0mount\0sh\0sleep\0touch\0zcat\0",
        );
        bin.extend_from_slice(b"\x01\x02 other data");
        let names = applets(&bin).unwrap();
        assert_eq!(names.first().unwrap(), "[");
        assert!(names.contains(&"sh".to_string()));
        assert_eq!(names.last().unwrap(), "zcat");
    }
}
