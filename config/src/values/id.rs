//! `uid`, `gid`, `additionalGids` and the `uid`/`gid` of `files`: a number,
//! or the name of a container (LinuxKit gives every container an id).

use std::collections::BTreeMap;

use crate::raw::NumberOrText;
use crate::suggest::hint;

/// A user or group id as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    /// A number (`root`, or nothing written, is 0).
    Number(u32),
    /// The id LinuxKit gives the container of this name.
    Container(String),
}

impl Id {
    pub(crate) fn read(v: &NumberOrText) -> Id {
        match v.number().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Id::Number(n),
            None => match v.text() {
                s if s.is_empty() || s == "root" => Id::Number(0),
                s => Id::Container(s),
            },
        }
    }

    /// The number, looking a container's name up in `ids` (see
    /// [`crate::Config::id_map`]).
    pub fn resolve(&self, ids: &BTreeMap<String, u32>) -> Result<u32, String> {
        match self {
            Id::Number(n) => Ok(*n),
            Id::Container(s) => ids.get(s).copied().ok_or_else(|| {
                let hint = hint(s, ids.keys().map(String::as_str));
                format!("{s:?} is neither a number nor the name of a container{hint}")
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_root_and_container_names() {
        let ids = BTreeMap::from([("web".to_string(), 101)]);
        let read = |t: &str| Id::read(&NumberOrText::Text(t.into()));
        assert_eq!(Id::read(&NumberOrText::Number(5)), Id::Number(5));
        assert_eq!(read(" 7 "), Id::Number(7));
        assert_eq!(read("root").resolve(&ids), Ok(0));
        assert_eq!(read("").resolve(&ids), Ok(0));
        assert_eq!(read("web").resolve(&ids), Ok(101));
        assert_eq!(
            read("wen").resolve(&ids).unwrap_err(),
            "\"wen\" is neither a number nor the name of a container (did you mean \"web\"?)"
        );
        assert!(Id::read(&NumberOrText::Number(-1)).resolve(&ids).is_err());
    }
}
