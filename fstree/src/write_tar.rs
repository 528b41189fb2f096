//! Writing a [`Tree`] as a tar stream: sorted, every mtime the same, so that
//! equal trees give byte-identical archives (the layers of `hull pkg build`,
//! the `tar` output, the `kernel.tar` of kernel packages).

use std::io::Write;

use crate::{Kind, Tree, TreeError};

impl Tree {
    /// Writes the tree as a tar stream, sorted, with every mtime set to `mtime`
    /// (SOURCE_DATE_EPOCH), so that equal trees give byte-identical archives.
    pub fn write_tar<W: Write>(&self, writer: W, mtime: u64) -> Result<W, TreeError> {
        let mut b = tar::Builder::new(writer);
        b.mode(tar::HeaderMode::Deterministic);
        for (path, e) in &self.entries {
            if let Some(x) = self.xattrs.get(path) {
                let records: Vec<(String, &[u8])> = x
                    .iter()
                    .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
                    .collect();
                b.append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))
                    .map_err(TreeError::Write)?;
            }
            let mut h = tar::Header::new_gnu();
            h.set_mtime(mtime);
            h.set_uid(e.uid as u64);
            h.set_gid(e.gid as u64);
            h.set_mode(e.mode);
            match &e.kind {
                Kind::File(data) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, path, data.as_slice())
                        .map_err(TreeError::Write)?;
                }
                Kind::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    b.append_data(&mut h, path, std::io::empty())
                        .map_err(TreeError::Write)?;
                }
                Kind::Symlink(t) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, path, t).map_err(TreeError::Write)?;
                }
                Kind::Hardlink(t) => {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, path, t).map_err(TreeError::Write)?;
                }
            }
        }
        b.into_inner().map_err(TreeError::Write)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Entry, Tree};

    #[test]
    fn tar_roundtrip_is_deterministic_and_whiteouts_apply() {
        let mut t = Tree::new();
        t.insert("a/b", Entry::file(b"hello".to_vec(), 0o644))
            .unwrap();
        t.insert("a/c", Entry::file(b"bye".to_vec(), 0o600))
            .unwrap();
        let one = t.write_tar(Vec::new(), 0).unwrap();
        let two = t.clone().write_tar(Vec::new(), 0).unwrap();
        assert_eq!(one, two);
        let mut back = Tree::new();
        back.apply_tar(one.as_slice()).unwrap();
        assert_eq!(back, t);

        let mut layer = Tree::new();
        layer
            .insert("a/.wh.b", Entry::file(Vec::new(), 0o644))
            .unwrap();
        back.apply_tar(layer.write_tar(Vec::new(), 0).unwrap().as_slice())
            .unwrap();
        assert!(!back.contains("a/b"));
        assert!(back.contains("a/c"));
    }
}
