//! "Did you mean": the known word closest to a mistyped one.

/// "unknown key" with the closest known key as a suggestion.
pub fn unknown_key_message(field: &str, expected: &[&str]) -> String {
    match closest(field, expected.iter().copied()) {
        Some(c) => format!("unknown key {field:?} (did you mean {c:?}?)"),
        None => format!(
            "unknown key {field:?} (known keys: {})",
            expected.join(", ")
        ),
    }
}

/// The candidate within a small edit distance of `word`, if any.
pub fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// `" (did you mean X?)"`, or nothing.
pub(crate) fn hint<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    closest(word, candidates)
        .map(|c| format!(" (did you mean {c:?}?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_words_are_suggested_far_ones_are_not() {
        let keys = ["command", "capabilities", "cwd"];
        assert_eq!(closest("comand", keys.iter().copied()), Some("command"));
        assert_eq!(
            closest("Capabilites", keys.iter().copied()),
            Some("capabilities")
        );
        assert_eq!(closest("network", keys.iter().copied()), None);
        assert_eq!(
            unknown_key_message("zzz", &["a", "b"]),
            "unknown key \"zzz\" (known keys: a, b)"
        );
    }
}
