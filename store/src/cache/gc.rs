//! Keeping the store sound: `clean` removes blobs no name reaches (waiting
//! for running writers), `verify` checks every blob every name needs.

use std::fs;

use nix::fcntl::FlockArg;

use super::{blob_digests, io, Cache, CacheError, Cleaned};

impl Cache {
    /// The digests every name in the index reaches (manifests, configs, layers).
    fn reachable(&self) -> Result<Vec<String>, CacheError> {
        let mut out = Vec::new();
        for rec in self.images()? {
            out.push(rec.digest.clone());
            if let Ok(m) = self.json_blob(&rec.digest) {
                out.extend(blob_digests(&m));
            }
        }
        Ok(out)
    }

    /// Removes blobs no name reaches and leftover temp files. Waits for
    /// running writers (they hold `gc.lock` shared).
    pub fn clean(&self) -> Result<Cleaned, CacheError> {
        let _gc = self.lock("gc.lock", FlockArg::LockExclusive)?;
        let keep: std::collections::BTreeSet<String> = self
            .reachable()?
            .into_iter()
            .filter_map(|d| d.strip_prefix("sha256:").map(String::from))
            .collect();
        let mut done = Cleaned::default();
        let blobs = self.root.join("blobs/sha256");
        for e in fs::read_dir(&blobs).map_err(io(&blobs))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                done.bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(e.path()).map_err(io(&e.path()))?;
                done.blobs += 1;
            }
        }
        let tmp = self.tmp_dir();
        for e in fs::read_dir(&tmp).map_err(io(&tmp))?.flatten() {
            let _ = fs::remove_file(e.path());
        }
        Ok(done)
    }

    /// Checks every blob every name reaches: present and matching its digest.
    /// Returns one line per problem (empty: the cache is sound).
    pub fn verify(&self) -> Result<Vec<String>, CacheError> {
        let mut problems = Vec::new();
        for rec in self.images()? {
            let mut digests = vec![rec.digest.clone()];
            match self.json_blob(&rec.digest) {
                Ok(m) => digests.extend(blob_digests(&m)),
                Err(e) => {
                    problems.push(format!("{} ({}): {e}", rec.name, rec.arch));
                    continue;
                }
            }
            for d in digests.iter().skip(1) {
                if let Err(e) = self.verify_blob(d) {
                    problems.push(format!("{} ({}): {e}", rec.name, rec.arch));
                }
            }
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use contract::Arch;
    use fstree::{Entry, Tree};

    #[test]
    fn corrupt_blob_is_detected_and_clean_keeps_what_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let stray = cache.put_blob(b"hello").unwrap();
        let mut t = Tree::new();
        t.insert("a", Entry::file(b"a".to_vec(), 0o644)).unwrap();
        let m = cache
            .write_image("x:1", Arch::X86_64, &t, &serde_json::Map::new(), 0)
            .unwrap();
        let manifest = cache.json_blob(&m).unwrap();
        let layer = manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();

        let cleaned = cache.clean().unwrap();
        assert_eq!(cleaned.blobs, 1);
        assert!(!cache.has_blob(&stray));
        assert!(cache.read_image("x:1", Arch::X86_64).is_ok());

        let path = cache.blob_path(&layer).unwrap();
        let mut data = fs::read(&path).unwrap();
        data[20] ^= 0xff;
        fs::write(&path, data).unwrap();
        assert!(matches!(
            cache.read_image("x:1", Arch::X86_64),
            Err(CacheError::Corrupt { .. })
        ));
        let problems = cache.verify().unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains(&layer), "{problems:?}");

        assert_eq!(cache.remove("x:1", None).unwrap(), 1);
        assert!(cache.images().unwrap().is_empty());
    }
}
