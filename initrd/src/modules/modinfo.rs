//! One module's `.modinfo` ELF section: decompressing the module file
//! (`.ko.xz`, `.ko.zst`, `.ko.gz`) and reading the keys [`super::select`]
//! needs.

use std::io::Read;
use std::path::Path;

use super::{normalize_name, ModulesError};

/// The parts of a `.modinfo` section [`super::select`] needs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Modinfo {
    pub name: Option<String>,
    pub depends: Vec<String>,
    pub aliases: Vec<String>,
    pub softdeps_pre: Vec<String>,
}

/// Parses the contents of a `.modinfo` section: NUL-separated `key=value`
/// strings (runs of NULs from alignment padding are skipped). Keys `name`,
/// `depends` (comma-separated), `alias` (repeatable) and `softdep`
/// (`pre: a b post: c`, repeatable) are kept; the rest is ignored.
pub fn parse_modinfo(section: &[u8]) -> Modinfo {
    let mut info = Modinfo::default();
    for raw in section.split(|b| *b == 0) {
        let Ok(s) = std::str::from_utf8(raw) else {
            continue;
        };
        let Some((key, value)) = s.split_once('=') else {
            continue;
        };
        match key {
            "name" => info.name = Some(normalize_name(value.trim())),
            "depends" => info.depends.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(normalize_name),
            ),
            "alias" => info.aliases.push(value.to_string()),
            "softdep" => {
                let mut in_pre = false;
                for word in value.split_whitespace() {
                    match word {
                        "pre:" => in_pre = true,
                        "post:" => in_pre = false,
                        w if in_pre => info.softdeps_pre.push(normalize_name(w)),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    info
}

/// A module file's contents, decompressed according to its name.
pub(crate) fn decompress(path: &Path, data: &[u8]) -> Result<Vec<u8>, ModulesError> {
    let name = path.to_string_lossy();
    let err = |source| ModulesError::Decompress {
        path: path.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    if name.ends_with(".xz") {
        liblzma::read::XzDecoder::new(data)
            .read_to_end(&mut out)
            .map_err(err)?;
    } else if name.ends_with(".zst") {
        out = zstd::stream::decode_all(data).map_err(err)?;
    } else if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .map_err(err)?;
    } else {
        out = data.to_vec();
    }
    Ok(out)
}

/// The `.modinfo` section of an ELF object (any class, any endianness).
pub(crate) fn modinfo_of(path: &Path, elf: &[u8]) -> Result<Modinfo, ModulesError> {
    use object::{Object, ObjectSection};
    let file = object::File::parse(elf).map_err(|source| ModulesError::Elf {
        path: path.to_path_buf(),
        source,
    })?;
    let section = file
        .section_by_name(".modinfo")
        .ok_or_else(|| ModulesError::NoModinfo(path.to_path_buf()))?;
    let data = section.data().map_err(|source| ModulesError::Elf {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_modinfo(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_modinfo() {
        let raw = b"\0\0version=1\0license=GPL\0alias=pci:v00001AF4d*sv*sd*bc*sc*i*\0\
                    depends=virtio,virtio_ring,dm-mod\0softdep=pre: crc32c  foo-bar post: baz\0\
                    alias=virtio:d00000002v*\0\0\0name=virtio_blk\0vermagic=6.1.0 SMP mod_unload \0";
        let mi = parse_modinfo(raw);
        assert_eq!(mi.name.as_deref(), Some("virtio_blk"));
        assert_eq!(mi.depends, ["virtio", "virtio_ring", "dm_mod"]);
        assert_eq!(
            mi.aliases,
            ["pci:v00001AF4d*sv*sd*bc*sc*i*", "virtio:d00000002v*"]
        );
        assert_eq!(mi.softdeps_pre, ["crc32c", "foo_bar"]);
        let empty = parse_modinfo(b"depends=\0name=x\0");
        assert!(empty.depends.is_empty());
    }
}
