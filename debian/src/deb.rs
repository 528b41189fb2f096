//! Unpacking a `.deb` (an `ar` archive: `debian-binary`, `control.tar*`,
//! `data.tar*`) into a [`Tree`], without running any maintainer script.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use fstree::Tree;

use crate::DebianError;

/// Unpacks the `data.tar{,.xz,.gz,.zst}` member of the .deb at `deb` into `tree`
/// (through [`Tree::apply_tar`]). Maintainer scripts are not run; the control
/// member is not read. Paths are taken as they are in the package (on bookworm some
/// still live under /bin, /lib: what to do about merged /usr is the caller's call).
pub fn unpack_deb(deb: &Path, tree: &mut Tree) -> Result<(), DebianError> {
    unpack_deb_skipped(deb, tree).map(|_| ())
}

/// Like [`unpack_deb`], and returns the paths of device nodes and FIFOs it skipped.
pub fn unpack_deb_skipped(deb: &Path, tree: &mut Tree) -> Result<Vec<PathBuf>, DebianError> {
    let bad = |reason: String| DebianError::BadDeb {
        path: deb.to_path_buf(),
        reason,
    };
    let file = File::open(deb).map_err(|source| DebianError::Io {
        path: deb.to_path_buf(),
        source,
    })?;
    let mut archive = ar::Archive::new(BufReader::new(file));
    let mut first = true;
    while let Some(entry) = archive.next_entry() {
        let mut entry = entry.map_err(|e| bad(format!("reading ar member: {e}")))?;
        let id = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches('/')
            .trim()
            .to_string();
        if first {
            first = false;
            let mut version = String::new();
            entry
                .by_ref()
                .take(64)
                .read_to_string(&mut version)
                .map_err(|e| bad(format!("reading debian-binary: {e}")))?;
            if id != "debian-binary" || !version.starts_with("2.") {
                return Err(bad(format!(
                    "first member is {id:?} with {version:?}, expected debian-binary 2.x"
                )));
            }
            continue;
        }
        let Some(suffix) = id.strip_prefix("data.tar") else {
            continue;
        };
        let reader: Box<dyn Read + '_> =
            match suffix {
                "" => Box::new(&mut entry),
                ".xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(&mut entry)),
                ".gz" => Box::new(flate2::read::GzDecoder::new(&mut entry)),
                ".zst" => Box::new(zstd::stream::read::Decoder::new(&mut entry).map_err(
                    |source| DebianError::Decompress {
                        path: deb.to_path_buf(),
                        source,
                    },
                )?),
                other => {
                    return Err(bad(format!(
                        "unsupported data member compression {other:?}"
                    )))
                }
            };
        return tree
            .apply_tar(reader)
            .map_err(|source| DebianError::Unpack {
                path: deb.to_path_buf(),
                source,
            });
    }
    Err(bad("no data.tar member".into()))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write;

    use super::*;

    fn make_deb(member: &str, data: Vec<u8>) -> Vec<u8> {
        let mut b = ar::Builder::new(Vec::new());
        b.append(
            &ar::Header::new(b"debian-binary".to_vec(), 4),
            &b"2.0\n"[..],
        )
        .unwrap();
        let control = Tree::new().write_tar(Vec::new(), 0).unwrap();
        b.append(
            &ar::Header::new(b"control.tar".to_vec(), control.len() as u64),
            control.as_slice(),
        )
        .unwrap();
        b.append(
            &ar::Header::new(member.as_bytes().to_vec(), data.len() as u64),
            data.as_slice(),
        )
        .unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn unpacks_each_compression() {
        let mut src = Tree::new();
        src.insert("bin/busybox", fstree::Entry::file(b"elf".to_vec(), 0o755))
            .unwrap();
        src.insert(
            "usr/share/doc/x/copyright",
            fstree::Entry::file(b"c".to_vec(), 0o644),
        )
        .unwrap();
        let tar = src.write_tar(Vec::new(), 0).unwrap();
        let xz = {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(&tar).unwrap();
            e.finish().unwrap()
        };
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&tar).unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::stream::encode_all(tar.as_slice(), 3).unwrap();
        let dir = std::env::temp_dir().join(format!("hull-debian-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for (member, data) in [
            ("data.tar", tar.clone()),
            ("data.tar.xz", xz),
            ("data.tar.gz", gz),
            ("data.tar.zst", zst),
        ] {
            let path = dir.join(format!("{member}.deb"));
            fs::write(&path, make_deb(member, data)).unwrap();
            let mut t = Tree::new();
            unpack_deb(&path, &mut t).unwrap();
            assert_eq!(t, src, "{member}");
        }
        let path = dir.join("bad.deb");
        fs::write(&path, b"not an ar archive").unwrap();
        assert!(matches!(
            unpack_deb(&path, &mut Tree::new()),
            Err(DebianError::BadDeb { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
