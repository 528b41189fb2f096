//! Reading YAML text into position-carrying nodes, the way every
//! description, label and package `config:` is read.
//!
//! marked-yaml keeps the line and column of every value (which every error
//! message needs) but refuses anchors and aliases (`&name`, `*name`,
//! `<<: *name`), which Go's YAML library (LinuxKit's) reads. For a file that
//! uses them, a small loader of our own on the same event parser
//! (yaml-rust2) builds the same nodes, copying an anchored node wherever an
//! alias names it; no crate does that while keeping positions. Other files
//! go through marked-yaml exactly as before.

use std::collections::HashMap;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
use marked_yaml::{LoadError, LoaderOptions, Marker, Node, Span};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker as YamlMarker, TScalarStyle};

/// What went wrong and where (`None`: no position).
pub type Failure = (Option<Marker>, String);

/// Parses the first document of `text` (a mapping). A key whose value is a
/// plain `~` or `null` is dropped: a null value means the key is not set (as
/// a nil pointer in LinuxKit's Go structs). A quoted "null" stays a string.
pub fn load(text: &str) -> Result<Node, Failure> {
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    let mut node = match marked_yaml::parse_yaml_with_options(0, text, options) {
        Ok(n) => n,
        Err(LoadError::UnexpectedAnchor(_)) => load_with_aliases(text)?,
        Err(e) => return Err(load_failure(&e)),
    };
    settle(&mut node);
    Ok(node)
}

fn load_failure(e: &LoadError) -> Failure {
    match e {
        LoadError::TopLevelMustBeMapping(m) | LoadError::TopLevelMustBeSequence(m) => (
            Some(*m),
            "the description must be a mapping (kernel:, init:, ...)".into(),
        ),
        LoadError::UnexpectedAnchor(m) => (Some(*m), "unexpected YAML anchor".into()),
        LoadError::MappingKeyMustBeScalar(m) => {
            (Some(*m), "a mapping key must be a plain value".into())
        }
        LoadError::UnexpectedTag(m) => (Some(*m), "YAML tags (!tag) are not supported".into()),
        LoadError::ScanError(m, s) => (Some(*m), format!("not valid YAML: {s}")),
        LoadError::DuplicateKey(d) => (
            d.key.span().start().copied(),
            duplicate_message(d.key.as_str(), d.prev_key.span().start()),
        ),
    }
}

fn duplicate_message(key: &str, first: Option<&Marker>) -> String {
    match first {
        Some(m) => format!(
            "key {key:?} is written twice in this mapping (first at line {})",
            m.line()
        ),
        None => format!("key {key:?} is written twice in this mapping"),
    }
}

/// Drops null values (see [`load`]) and lets every scalar be read as a
/// number or a boolean again: quoting was only needed to tell `null` from
/// "null"; a quoted `"true"` or `"5"` keeps reading as before.
fn settle(node: &mut Node) {
    match node {
        Node::Mapping(m) => {
            m.retain(|_, v| {
                !matches!(v, Node::Scalar(s) if s.may_coerce() && matches!(s.as_str(), "~" | "null"))
            });
            for (_, v) in m.iter_mut() {
                settle(v);
            }
        }
        Node::Sequence(s) => s.iter_mut().for_each(settle),
        Node::Scalar(s) => s.set_coerce(true),
    }
}

enum Frame {
    Mapping {
        start: Marker,
        anchor: usize,
        map: Box<MarkedMappingNode>,
        key: Option<MarkedScalarNode>,
        /// `<<` values, applied at the end: explicit keys win over them.
        merges: Vec<(Marker, Node)>,
    },
    Sequence {
        start: Marker,
        anchor: usize,
        items: Vec<Node>,
    },
}

#[derive(Default)]
struct AliasLoader {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    done: Option<Node>,
    failure: Option<Failure>,
    /// Nodes copied by aliases so far: nested aliases can multiply a small
    /// file into billions of nodes ("billion laughs"); past a bound, stop.
    copied: usize,
}

const MAX_COPIED_NODES: usize = 100_000;

fn size(n: &Node) -> usize {
    match n {
        Node::Scalar(_) => 1,
        Node::Sequence(s) => 1 + s.iter().map(size).sum::<usize>(),
        Node::Mapping(m) => 1 + m.values().map(size).sum::<usize>(),
    }
}

fn marker(m: YamlMarker) -> Marker {
    Marker::new(0, m.index(), m.line(), m.col() + 1)
}

fn load_with_aliases(text: &str) -> Result<Node, Failure> {
    let mut loader = AliasLoader::default();
    let mut parser = Parser::new(text.chars());
    if let Err(e) = parser.load(&mut loader, false) {
        return Err((Some(marker(*e.marker())), format!("not valid YAML: {e}")));
    }
    if let Some(f) = loader.failure {
        return Err(f);
    }
    match loader.done {
        Some(n @ Node::Mapping(_)) => Ok(n),
        Some(n) => Err((
            n.span().start().copied(),
            "the description must be a mapping (kernel:, init:, ...)".into(),
        )),
        None => Ok(Node::Mapping(MarkedMappingNode::new_empty(
            Span::new_blank(),
        ))),
    }
}

impl AliasLoader {
    fn fail(&mut self, at: Marker, message: impl Into<String>) {
        if self.failure.is_none() {
            self.failure = Some((Some(at), message.into()));
        }
    }

    /// A finished node goes to its parent (or becomes the document).
    fn emit(&mut self, node: Node, anchor: usize, at: Marker) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.done = Some(node),
            Some(Frame::Sequence { items, .. }) => items.push(node),
            Some(Frame::Mapping {
                map, key, merges, ..
            }) => match key.take() {
                None => match node {
                    Node::Scalar(s) => *key = Some(s),
                    _ => self.fail(at, "a mapping key must be a plain value"),
                },
                Some(k) if k.as_str() == "<<" && k.may_coerce() => merges.push((at, node)),
                Some(k) => {
                    let first = map
                        .keys()
                        .find(|p| p.as_str() == k.as_str())
                        .map(|p| p.span().start().copied());
                    match first {
                        Some(first) => {
                            let m = duplicate_message(k.as_str(), first.as_ref());
                            let at = k.span().start().copied().unwrap_or(at);
                            self.fail(at, m);
                        }
                        None => {
                            map.insert(k, node);
                        }
                    }
                }
            },
        }
    }
}

impl MarkedEventReceiver for AliasLoader {
    fn on_event(&mut self, ev: Event, mark: YamlMarker) {
        if self.failure.is_some() || self.done.is_some() {
            return; // the first document only, as LinuxKit
        }
        let at = marker(mark);
        match ev {
            Event::MappingStart(anchor, tag) | Event::SequenceStart(anchor, tag)
                if tag.is_some() =>
            {
                let _ = anchor;
                self.fail(at, "YAML tags (!tag) are not supported");
            }
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Mapping {
                start: at,
                anchor,
                map: Box::new(MarkedMappingNode::new_empty(Span::new_start(at))),
                key: None,
                merges: Vec::new(),
            }),
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Sequence {
                start: at,
                anchor,
                items: Vec::new(),
            }),
            Event::MappingEnd => {
                if let Some(Frame::Mapping {
                    start,
                    anchor,
                    map,
                    merges,
                    ..
                }) = self.stack.pop()
                {
                    let mut node = *map;
                    node.span_mut().set_end(Some(at));
                    // `<<: *base` (or a list of them): the keys not written here.
                    for (m_at, m) in merges {
                        let sources: Vec<Node> = match m {
                            Node::Sequence(s) => s.iter().cloned().collect(),
                            other => vec![other],
                        };
                        for s in sources {
                            let Node::Mapping(src) = s else {
                                self.fail(m_at, "`<<` merges only mappings");
                                return;
                            };
                            for (k, v) in src.iter() {
                                if !node.keys().any(|p| p.as_str() == k.as_str()) {
                                    node.insert(k.clone(), v.clone());
                                }
                            }
                        }
                    }
                    self.emit(Node::Mapping(node), anchor, start);
                }
            }
            Event::SequenceEnd => {
                if let Some(Frame::Sequence {
                    start,
                    anchor,
                    items,
                }) = self.stack.pop()
                {
                    let node = MarkedSequenceNode::new(Span::new_with_marks(start, at), items);
                    self.emit(Node::Sequence(node), anchor, start);
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                if tag.is_some() {
                    self.fail(at, "YAML tags (!tag) are not supported");
                    return;
                }
                let mut s = MarkedScalarNode::new(Span::new_start(at), value);
                s.set_coerce(matches!(style, TScalarStyle::Plain));
                self.emit(Node::Scalar(s), anchor, at);
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(node) => {
                    self.copied += size(&node);
                    if self.copied > MAX_COPIED_NODES {
                        self.fail(at, "aliases expand to too many values");
                        return;
                    }
                    self.emit(node, 0, at)
                }
                None => self.fail(at, "an alias (*name) names no anchor (&name) before it"),
            },
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd
            | Event::Nothing => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> (usize, usize, String) {
        let (m, msg) = load(text).unwrap_err();
        let m = m.unwrap();
        (m.line(), m.column(), msg)
    }

    #[test]
    fn aliases_copy_anchored_values_with_their_positions() {
        let n = load("common: &binds\n  - /a:/a\n  - /b:/b\nx:\n  binds: *binds\n  base: &b {net: host, pid: host}\ny:\n  <<: *b\n  pid: new\n").unwrap();
        let m = n.as_mapping().unwrap();
        let x = m.get_mapping("x").unwrap();
        let binds = x.get_sequence("binds").unwrap();
        assert_eq!(binds.len(), 2);
        // The copy keeps where the anchored value was written.
        assert_eq!(binds[1].span().start().unwrap().line(), 3);
        let y = m.get_mapping("y").unwrap();
        assert_eq!(
            y.get_scalar("pid").unwrap().as_str(),
            "new",
            "explicit keys win"
        );
        assert_eq!(y.get_scalar("net").unwrap().as_str(), "host", "merged");
    }

    #[test]
    fn nulls_go_quoted_nulls_stay_and_scalars_coerce() {
        let n = load("a: ~\nb: null\nc: \"null\"\nd:\ne: \"5\"\n").unwrap();
        let m = n.as_mapping().unwrap();
        assert!(m.get("a").is_none() && m.get("b").is_none());
        assert_eq!(m.get_scalar("c").unwrap().as_str(), "null");
        assert!(m.get_scalar("e").unwrap().may_coerce());
        let n = load("x: &v ~\ny: *v\nz: 1\n").unwrap();
        assert_eq!(n.as_mapping().unwrap().len(), 1);
    }

    #[test]
    fn mistakes_in_files_with_anchors_are_positioned() {
        let (line, col, msg) = at("a: &x 1\nb: *nope\n");
        assert_eq!((line, col), (2, 4));
        assert!(msg.contains("unknown anchor"), "{msg}");
        let (line, col, msg) = at("a: &x 1\nb: 2\nb: 3\n");
        assert_eq!((line, col), (3, 1));
        assert!(
            msg.contains("written twice") && msg.contains("line 2"),
            "{msg}"
        );
        assert!(at("a: &x 1\nb: !t 2\n").2.contains("tags"));
        assert!(at("a: &x [1]\nb:\n  <<: *x\n")
            .2
            .contains("merges only mappings"));
        assert!(at("&x [1]\n").2.contains("must be a mapping"));
        // Nested aliases that would multiply into billions of values.
        let mut bomb = String::from("a: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let prev = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        assert!(at(&bomb).2.contains("too many values"));
    }
}
