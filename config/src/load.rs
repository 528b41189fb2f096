//! Reading one file: YAML with positions ([`crate::yaml`]), serde for the
//! shape of each entry ([`crate::raw`]), then typed values
//! ([`crate::entry`]). Parsing goes entry by entry and keeps going after a
//! mistake, so that one run reports every error of a file, each as
//! `FILE:LINE:COL: message`; `marked_yaml` keeps every node's position,
//! which `serde_yaml` (deprecated) does only for syntax errors.

use std::path::Path;

use marked_yaml::types::MarkedMappingNode;
use marked_yaml::Node;
use serde::de::DeserializeOwned;

use crate::entry::ImageEntry;
use crate::position::{marker_pos, pos_of, ConfigErrors, Located, Pos, Problem};
use crate::raw::{RawEntry, RawFile, RawTrust};
use crate::schema::{Config, FileEntry, Kernel, Volume};
use crate::suggest::unknown_key_message;
use crate::values::{FileMode, Id};

pub const TOP_KEYS: &[&str] = &[
    "kernel",
    "init",
    "onboot",
    "onshutdown",
    "services",
    "files",
    "volumes",
    "trust",
];

/// What an entry of a section is read as: serde reads its shape, `read`
/// its values.
pub(crate) trait Entry: Sized {
    type Raw: DeserializeOwned;
    fn read(raw: Self::Raw) -> (Self, Vec<Problem>);
}

impl Entry for ImageEntry {
    type Raw = RawEntry;
    fn read(raw: RawEntry) -> (Self, Vec<Problem>) {
        ImageEntry::read(&raw, true)
    }
}

impl Entry for FileEntry {
    type Raw = RawFile;
    fn read(f: RawFile) -> (Self, Vec<Problem>) {
        let mut problems = Vec::new();
        let mode = f.mode.as_ref().and_then(|m| {
            let mode = FileMode::parse(m);
            if mode.is_none() {
                problems.push(Problem::new(
                    &["mode"],
                    format!("mode {m:?} is not an octal number like \"0644\""),
                ));
            }
            mode
        });
        let entry = FileEntry {
            path: f.path,
            directory: f.directory,
            symlink: f.symlink,
            contents: f.contents,
            source: f.source,
            metadata: f.metadata,
            optional: f.optional,
            mode,
            uid: f.uid.as_ref().map(Id::read),
            gid: f.gid.as_ref().map(Id::read),
        };
        (entry, problems)
    }
}

/// Entries whose values serde reads whole.
macro_rules! as_read {
    ($($t:ty),*) => {$(
        impl Entry for $t {
            type Raw = $t;
            fn read(raw: $t) -> (Self, Vec<Problem>) {
                (raw, Vec::new())
            }
        }
    )*};
}
as_read!(Kernel, Volume, String, RawTrust);

/// Reads and parses one YAML file: what could be parsed, and every mistake.
pub fn load(path: &Path) -> (Config, ConfigErrors) {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_partial(path, &text),
        Err(e) => (
            Config::default(),
            ConfigErrors(vec![Pos::file(path).error(format!("cannot read: {e}"))]),
        ),
    }
}

/// Parses one file; any mistake of shape is an error (the mistakes in
/// values stay with their entries, for the checks).
#[cfg(test)]
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let (config, errs) = parse_partial(path, text);
    if errs.is_empty() {
        Ok(config)
    } else {
        Err(errs)
    }
}

/// Parses one file, collecting every mistake of shape; what could be
/// parsed is returned too (entries without their bad keys, each with the
/// mistakes in its values), so that the checks across entries can still
/// run and report their findings in the same run.
pub fn parse_partial(path: &Path, text: &str) -> (Config, ConfigErrors) {
    // A byte-order mark (some Windows editors write one) is not content; the
    // YAML parser would read it as part of the first key.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut errs = ConfigErrors::default();
    let node = match crate::yaml::load(text) {
        Ok(n) => n,
        Err((mark, message)) => {
            errs.push(marker_pos(path, mark.as_ref()).error(message));
            return (Config::default(), errs);
        }
    };
    let mut config = Config::default();
    let Some(top) = node.as_mapping() else {
        let at = Pos {
            file: path.to_path_buf(),
            line: 1,
            col: 1,
        };
        errs.push(at.error("the description must be a mapping (kernel:, init:, ...)"));
        return (config, errs);
    };
    for (key, value) in top.iter() {
        let key_pos = marker_pos(path, key.span().start());
        match key.as_str() {
            "kernel" => {
                if let Some(k) = item::<Kernel>(path, value, &mut errs) {
                    config.kernels.push(k);
                }
            }
            "init" => config.init = list(path, key.as_str(), value, &mut errs),
            "onboot" => config.onboot = list(path, key.as_str(), value, &mut errs),
            "onshutdown" => config.onshutdown = list(path, key.as_str(), value, &mut errs),
            "services" => config.services = list(path, key.as_str(), value, &mut errs),
            "files" => config.files = list(path, key.as_str(), value, &mut errs),
            "volumes" => config.volumes = list(path, key.as_str(), value, &mut errs),
            "trust" => {
                let _ = item::<RawTrust>(path, value, &mut errs);
                config.trust.push(key_pos);
            }
            "outputs" => errs.push(key_pos.error(
                "`outputs` was dropped from LinuxKit's format in 2017; choose the format with `hull build -f`",
            )),
            other => errs.push(key_pos.error(unknown_key_message(other, TOP_KEYS))),
        }
    }
    (config, errs)
}

/// A sequence value (an absent or null value is an empty list).
fn list<T: Entry>(
    path: &Path,
    key: &str,
    value: &Node,
    errs: &mut ConfigErrors,
) -> Vec<Located<T>> {
    match value {
        Node::Sequence(s) => s.iter().filter_map(|n| item::<T>(path, n, errs)).collect(),
        Node::Scalar(s) if s.as_str().is_empty() || s.as_str() == "~" || s.as_str() == "null" => {
            Vec::new()
        }
        _ => {
            errs.push(pos_of(path, value).error(format!("`{key}` must be a list")));
            Vec::new()
        }
    }
}

/// Reads one entry; on a mistake of shape, records it, drops the offending
/// key and tries again, so every bad key of the entry is reported at once.
pub(crate) fn item<T: Entry>(
    path: &Path,
    node: &Node,
    errs: &mut ConfigErrors,
) -> Option<Located<T>> {
    let mut work = node.clone();
    // Each round removes one key, so this ends; the cap guards against a
    // removal that makes no progress.
    for _ in 0..256 {
        match marked_yaml::from_node::<T::Raw>(&work) {
            Ok(raw) => {
                let (value, problems) = T::read(raw);
                let keys = work
                    .as_mapping()
                    .map(|m| m.keys().map(|k| k.as_str().to_string()).collect())
                    .unwrap_or_default();
                return Some(Located {
                    value,
                    file: path.to_path_buf(),
                    node: node.clone(),
                    keys,
                    problems,
                });
            }
            Err(e) => {
                let mark = e.start_mark().or_else(|| work.span().start().copied());
                let message = serde_message(&e);
                errs.push(marker_pos(path, mark.as_ref()).error(message));
                let mark = mark?;
                if !remove_at(&mut work, (mark.line(), mark.column())) {
                    return None;
                }
            }
        }
    }
    None
}

/// Removes the innermost mapping entry that holds `pos` (the key itself or
/// anything in its value). Entries are in document order, so the entry that
/// holds a position is the last one whose key starts at or before it.
fn remove_at(node: &mut Node, pos: (usize, usize)) -> bool {
    match node {
        Node::Mapping(m) => remove_in_mapping(m, pos),
        Node::Sequence(s) => {
            let idx = s.iter().rposition(|n| start(n) <= Some(pos));
            match idx.and_then(|i| s.get_mut(i)) {
                Some(n) => remove_at(n, pos),
                None => false,
            }
        }
        Node::Scalar(_) => false,
    }
}

fn remove_in_mapping(m: &mut MarkedMappingNode, pos: (usize, usize)) -> bool {
    let key = m
        .iter()
        .rfind(|(k, _)| k.span().start().map(|s| (s.line(), s.column())) <= Some(pos))
        .map(|(k, _)| k.clone());
    let Some(key) = key else { return false };
    let at_key = key.span().start().map(|s| (s.line(), s.column())) == Some(pos);
    if !at_key {
        if let Some(v) = m.get_mut(&key) {
            if remove_at(v, pos) {
                // An emptied mapping would only give a second, confusing
                // error (`readiness: {tcp: x}` -> "empty map"): drop it whole.
                if v.as_mapping().is_some_and(|inner| inner.is_empty()) {
                    m.remove(&key);
                }
                return true;
            }
        }
    }
    m.remove(&key).is_some()
}

fn start(n: &Node) -> Option<(usize, usize)> {
    n.span().start().map(|s| (s.line(), s.column()))
}

/// serde's message, in the words of this file: keys, values, suggestions.
pub(crate) fn serde_message(e: &marked_yaml::FromNodeError) -> String {
    use marked_yaml::Error as E;
    // The key the value belongs to, when serde knows it (`readiness.tcp` -> `tcp`).
    let key = e
        .path()
        .and_then(|p| p.rsplit('.').next())
        .filter(|k| !k.is_empty() && !k.starts_with('?') && !k.starts_with('['));
    let msg = match &**e {
        E::UnknownFieldError(field, expected, _) => return unknown_key_message(field, expected),
        E::NotBoolean(_) => "expected true or false".to_string(),
        E::IntegerParseFailure(err, _) => format!("expected a number ({err})"),
        E::FloatParseFailure(err, _) => format!("expected a number ({err})"),
        E::Other(msg, _) => {
            let mut msg = msg
                .replace(
                    "data did not match any variant of untagged enum NumberOrText",
                    "expected a single value (a number or a word)",
                )
                .replace("expected a sequence", "expected a list");
            if let Some(i) = msg.find("expected struct ") {
                msg.truncate(i);
                msg.push_str("expected a mapping (key: value lines)");
            }
            msg
        }
    };
    match key {
        Some(k) => format!("{k}: {msg}"),
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::{Millis, Signal};
    use contract::ReadinessCheck;

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_key() {
        let c = p("\u{feff}kernel:\n  image: k\nservices:\n  - name: a\n    image: b\n").unwrap();
        assert_eq!(c.services.len(), 1);
        // Positions stay those an editor shows.
        let e = errors("\u{feff}kernel:\n  imag: k\n");
        assert!(
            e[0].starts_with("t.yml:2:3: unknown key \"imag\""),
            "{e:#?}"
        );
    }

    #[test]
    fn linuxkits_old_outputs_key_gets_its_own_message() {
        let e = errors("kernel:\n  image: k\noutputs:\n  - format: kernel+initrd\n");
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(
            e[0].starts_with("t.yml:3:1: `outputs` was dropped"),
            "{e:#?}"
        );
    }

    fn p(text: &str) -> Result<Config, ConfigErrors> {
        parse(Path::new("t.yml"), text)
    }

    fn errors(text: &str) -> Vec<String> {
        p(text)
            .unwrap_err()
            .0
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn spine_example_parses() {
        let c = p("kernel:\n  image: \"@pkg:pkg/kernel\"\n  cmdline: console=ttyS0\ninit:\n  - \"@pkg:pkg/init\"\nonboot:\n  - name: a\n    image: busybox\n    command: [sh, -c, 'echo hi']\n    binds: [/run/x:/x]\n    runtime:\n      mkdir: [/run/x]\nservices:\n  - name: s\n    image: busybox\n    restart: always\n").unwrap();
        assert_eq!(c.onboot[0].value.name(), "a");
        assert_eq!(
            c.services[0].value.restart,
            Some(contract::RestartPolicy::Always)
        );
        assert_eq!(c.init[0].value, "@pkg:pkg/init");
        assert_eq!(c.services[0].pos().line, 14);
    }

    #[test]
    fn unknown_key_names_file_line_and_suggestion() {
        let e = errors("services:\n  - name: s\n    image: busybox\n    comand: [true]\n");
        assert_eq!(
            e,
            ["t.yml:4:5: unknown key \"comand\" (did you mean \"command\"?)"]
        );
    }

    #[test]
    fn every_error_of_a_file_is_reported() {
        let e = errors(
            "kernal: {}\nservices:\n  - name: s\n    image: x\n    comand: [true]\n    readonly: perhaps\n    runtime:\n      mkdirs: [/x]\n  - name: t\n    image: y\n    netx: host\n",
        );
        assert_eq!(e.len(), 5, "{e:#?}");
        assert!(
            e[0].starts_with("t.yml:1:1: unknown key \"kernal\""),
            "{e:#?}"
        );
        assert!(
            e[1].starts_with("t.yml:5:5: unknown key \"comand\""),
            "{e:#?}"
        );
        assert!(e[2].starts_with("t.yml:6:15: "), "{e:#?}");
        assert!(
            e[3].starts_with("t.yml:8:7: unknown key \"mkdirs\" (did you mean \"mkdir\"?)"),
            "{e:#?}"
        );
        assert!(
            e[4].starts_with("t.yml:11:5: unknown key \"netx\""),
            "{e:#?}"
        );
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_are_positioned() {
        let e = errors("services:\n  - name: s\n    name: t\n");
        assert!(
            e[0].starts_with("t.yml:3:5: key \"name\" is written twice"),
            "{e:?}"
        );
        let e = errors("services: [\n");
        assert!(e[0].contains("not valid YAML"), "{e:?}");
    }

    #[test]
    fn kernel_fields_merge_later_wins() {
        let a = p("kernel:\n  image: k1\n  cmdline: a\n").unwrap();
        let b = p("kernel:\n  cmdline: b\n  tar: none\n").unwrap();
        let c = p("kernel:\n  image: k3\n").unwrap();
        let m = Config::merge(vec![a, b, c]);
        let (k, image) = m.kernel().unwrap();
        assert_eq!(k.image.as_deref(), Some("k3"));
        assert_eq!(k.cmdline.as_deref(), Some("b"));
        assert_eq!(k.tar.as_deref(), Some("none"));
        assert_eq!(image.pos().line, 2);
    }

    #[test]
    fn lists_append_in_file_order_and_keep_their_file() {
        let a = parse(
            Path::new("a.yml"),
            "init: [i1]\nservices:\n  - {name: s1, image: x}\n",
        )
        .unwrap();
        let b = parse(
            Path::new("b.yml"),
            "init: [i2]\nonboot:\n  - {name: o1, image: x}\nonshutdown:\n  - {name: d1, image: x}\nservices:\n  - {name: s2, image: y}\n",
        )
        .unwrap();
        let m = Config::merge(vec![a, b]);
        let init: Vec<&str> = m.init.iter().map(|i| i.value.as_str()).collect();
        assert_eq!(init, ["i1", "i2"]);
        let s: Vec<(&str, String)> = m
            .services
            .iter()
            .map(|e| (e.value.name(), e.file.display().to_string()))
            .collect();
        assert_eq!(s, [("s1", "a.yml".into()), ("s2", "b.yml".into())]);
        // uids from 100: onboot, then onshutdown, then services, each in
        // merged order (LinuxKit's rule), whatever file they came from.
        let ids = m.id_map();
        assert_eq!(
            (ids["o1"], ids["d1"], ids["s1"], ids["s2"]),
            (100, 101, 102, 103)
        );
    }

    #[test]
    fn hull_keys_parse() {
        let c = p("services:\n  - name: web\n    image: x\n    restartBackoff: {initial: 250ms, max: 30s}\n    startLimit: 3\n    depends: [db]\n    readiness: {tcp: 8080}\n    readinessTimeout: 1m\n    stopSignal: SIGINT\n    stopGracePeriod: 5\n  - name: db\n    image: x\n    readiness: notify\n  - name: f\n    image: x\n    readiness: {file: /run/f.ready}\n").unwrap();
        let w = &c.services[0].value;
        assert!(c.services.iter().all(|s| s.problems.is_empty()));
        assert_eq!(w.readiness, Some(ReadinessCheck::Tcp(8080)));
        assert_eq!(w.stop_signal, Some(Signal(2)));
        assert_eq!(w.stop_grace_period, Some(Millis(5000)));
        assert_eq!(w.readiness_timeout, Some(Millis(60_000)));
        assert_eq!(c.services[1].value.readiness, Some(ReadinessCheck::Notify));
        assert_eq!(
            c.services[2].value.readiness,
            Some(ReadinessCheck::File("/run/f.ready".into()))
        );
    }

    #[test]
    fn a_bad_value_stays_with_its_entry_and_its_key_stays_read() {
        let c = p("onboot:\n  - name: o\n    image: i\n    stopSignal: SIGFOO\n    comand: [x]\n")
            .unwrap_err();
        assert_eq!(c.0.len(), 1, "only the unknown key is a mistake of shape");
        let (c, _) = parse_partial(
            Path::new("t.yml"),
            "onboot:\n  - name: o\n    image: i\n    stopSignal: SIGFOO\n    comand: [x]\n",
        );
        let o = &c.onboot[0];
        assert_eq!(o.value.stop_signal, None);
        assert_eq!(o.problems[0].dotted(), "stopSignal");
        assert!(o.has_key("stopSignal") && !o.has_key("comand"));
    }
}
