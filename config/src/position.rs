//! Where things are written: positions in the input files, values that
//! keep theirs, and the positioned errors every mistake becomes.

use std::fmt;
use std::path::{Path, PathBuf};

use marked_yaml::Node;

/// One mistake in an input file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Every mistake found in the input files, in file order; printed one per
/// line, exit code 2.
#[derive(Debug, Default, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(|e| e.to_string()).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl ConfigErrors {
    /// Adds a mistake, unless the same one is already there.
    pub fn push(&mut self, e: ConfigError) {
        if !self.0.contains(&e) {
            self.0.push(e);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Files in the order given (others after them, in the order they were
    /// first met), each file's errors by position.
    pub fn sort(&mut self, files: &[PathBuf]) {
        let mut order: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        for e in &self.0 {
            if !order.contains(&e.file) {
                order.push(e.file.clone());
            }
        }
        self.0.sort_by_key(|e| {
            let f = order.iter().position(|f| *f == e.file).unwrap_or(0);
            (f, e.line, e.col)
        });
    }
}

/// A position in a file: where an entry (or one of its keys) was written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pos {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl Pos {
    /// The whole file (a mistake that has no line, such as an unreadable file).
    pub fn file(file: &Path) -> Pos {
        Pos {
            file: file.to_path_buf(),
            line: 0,
            col: 0,
        }
    }

    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.display().to_string(),
            line: self.line,
            col: self.col,
            message: message.into(),
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// A value with the file it came from and its YAML node, so that any later
/// check can point at the exact key (merging keeps each entry's own file,
/// no search needed).
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub value: T,
    pub file: PathBuf,
    pub node: Node,
    /// The keys that were read into `value`: those written, less any left
    /// out for a mistake of shape (an unknown key, a list where a word was
    /// wanted), which is reported where it is found.
    pub keys: Vec<String>,
    /// The mistakes in its values (left out of `value`), reported by the
    /// checks in their place among the others.
    pub problems: Vec<Problem>,
}

impl<T> Located<T> {
    /// Where the entry starts.
    pub fn pos(&self) -> Pos {
        pos_of(&self.file, &self.node)
    }

    /// Where `key` (a path of mapping keys; a number indexes a sequence) is
    /// written; the entry itself when a key is missing.
    pub fn pos_of(&self, path: &[&str]) -> Pos {
        let mut node = &self.node;
        let mut best = self.pos();
        for seg in path {
            let next = match node {
                Node::Mapping(m) => m.iter().find(|(k, _)| k.as_str() == *seg).map(|(k, v)| {
                    best = marker_pos(&self.file, k.span().start());
                    v
                }),
                Node::Sequence(s) => {
                    seg.parse::<usize>()
                        .ok()
                        .and_then(|i| s.get(i))
                        .inspect(|v| {
                            best = pos_of(&self.file, v);
                        })
                }
                Node::Scalar(_) => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        best
    }

    pub fn error(&self, path: &[&str], message: impl Into<String>) -> ConfigError {
        self.pos_of(path).error(message)
    }

    /// Whether `key` was read (see [`Located::keys`]).
    pub fn has_key(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k == key)
    }
}

pub(crate) fn marker_pos(file: &Path, m: Option<&marked_yaml::Marker>) -> Pos {
    let (line, col) = m.map(|m| (m.line(), m.column())).unwrap_or((0, 0));
    Pos {
        file: file.to_path_buf(),
        line,
        col,
    }
}

/// Where a node starts. For a block mapping, marked_yaml's start mark is
/// after its first key; the first key is where a reader looks.
pub(crate) fn pos_of(file: &Path, node: &Node) -> Pos {
    let first_key = node
        .as_mapping()
        .and_then(|m| m.keys().next().and_then(|k| k.span().start()));
    marker_pos(file, first_key.or(node.span().start()))
}

/// A mistake found in one value, before it has a file position: the key
/// path it is at (`["binds", "2"]`) and what is wrong. The entry it belongs
/// to turns it into a [`ConfigError`] at that key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: Vec<String>,
    pub message: String,
}

impl Problem {
    pub fn new(path: &[&str], message: impl Into<String>) -> Problem {
        Problem {
            path: path.iter().map(|s| s.to_string()).collect(),
            message: message.into(),
        }
    }

    /// The key path as dots: `binds.2`.
    pub fn dotted(&self) -> String {
        self.path.join(".")
    }

    /// The error at this problem's key in `at`.
    pub fn at<T>(&self, at: &Located<T>) -> ConfigError {
        let p: Vec<&str> = self.path.iter().map(String::as_str).collect();
        at.error(&p, self.message.clone())
    }
}
