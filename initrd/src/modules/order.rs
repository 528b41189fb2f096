//! Closing a wanted set of modules over `depends=` and softdep `pre:` names,
//! and ordering it so that every module loads after what it needs.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::{normalize_name, ModuleInfo, ModulesError};

/// The outcome of resolving a wanted set against a kernel: what to ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Module names in a valid load order (dependencies first).
    pub order: Vec<String>,
    /// For each module of `order`, what must be loaded before it: its
    /// `depends=` plus the `softdep` pre-dependencies that were selected
    /// (a softdep that would close a cycle is dropped).
    pub load_after: BTreeMap<String, Vec<String>>,
    /// Wanted names that are built into the kernel (nothing to load).
    pub builtin: Vec<String>,
    /// Wanted names that are neither modules nor built in (only when
    /// skipping them was asked for; otherwise they are an error).
    pub skipped: Vec<String>,
}

/// Closes `wanted` over `depends=` and softdep `pre:` names and orders the
/// result (dependencies first; otherwise in `wanted` order, a module's own
/// dependencies in name order). A softdep name that is no module is looked up
/// among the modules' aliases (every module with that exact alias is taken,
/// `crc32c` -> `crc32c_generic`, `crc32c_intel`) and is ignored if nothing matches.
pub fn resolve(
    modules: &BTreeMap<String, ModuleInfo>,
    builtin: &BTreeSet<String>,
    wanted: &[String],
    skip_unknown: bool,
) -> Result<Resolution, ModulesError> {
    let mut by_alias: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in modules.values() {
        for a in &m.aliases {
            by_alias
                .entry(a.as_str())
                .or_default()
                .push(m.name.as_str());
        }
    }
    let soft_targets = |m: &ModuleInfo| -> Vec<String> {
        let mut out = BTreeSet::new();
        for s in &m.softdeps_pre {
            if modules.contains_key(s) {
                out.insert(s.clone());
            } else if let Some(ms) = by_alias.get(s.as_str()) {
                out.extend(ms.iter().map(|n| n.to_string()));
            } else if let Some(ms) = by_alias.get(s.replace('_', "-").as_str()) {
                out.extend(ms.iter().map(|n| n.to_string()));
            }
        }
        out.remove(&m.name);
        out.into_iter().collect()
    };

    let mut res = Resolution {
        order: Vec::new(),
        load_after: BTreeMap::new(),
        builtin: Vec::new(),
        skipped: Vec::new(),
    };
    let mut roots = Vec::new();
    let mut seen_wanted = HashSet::new();
    for w in wanted {
        let n = normalize_name(w.trim());
        if !seen_wanted.insert(n.clone()) {
            continue;
        }
        if modules.contains_key(&n) {
            roots.push(n);
        } else if builtin.contains(&n) {
            res.builtin.push(n);
        } else if skip_unknown {
            res.skipped.push(n);
        } else {
            return Err(ModulesError::Unknown(n));
        }
    }

    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Visiting,
        Done,
    }
    let mut state: HashMap<String, State> = HashMap::new();
    // Iterative DFS: (module, its pending prerequisites, hard-dependency flags).
    struct Frame {
        name: String,
        pending: std::vec::IntoIter<(String, bool)>,
        after: Vec<String>,
    }
    for root in roots {
        if state.contains_key(&root) {
            continue;
        }
        let mut stack: Vec<Frame> = Vec::new();
        let open = |name: &str| -> Result<Frame, ModulesError> {
            let m = &modules[name];
            let mut prereqs: Vec<(String, bool)> = Vec::new();
            let mut hard: Vec<&String> = m.depends.iter().collect();
            hard.sort();
            hard.dedup();
            for d in hard {
                if !modules.contains_key(d) {
                    if builtin.contains(d) {
                        continue;
                    }
                    return Err(ModulesError::MissingDependency {
                        module: name.to_string(),
                        dep: d.clone(),
                    });
                }
                prereqs.push((d.clone(), true));
            }
            for s in soft_targets(m) {
                if !prereqs.iter().any(|(p, _)| *p == s) {
                    prereqs.push((s, false));
                }
            }
            Ok(Frame {
                name: name.to_string(),
                pending: prereqs.into_iter(),
                after: Vec::new(),
            })
        };
        state.insert(root.clone(), State::Visiting);
        stack.push(open(&root)?);
        while let Some(top) = stack.last_mut() {
            match top.pending.next() {
                Some((dep, is_hard)) => match state.get(&dep) {
                    Some(State::Done) => top.after.push(dep),
                    Some(State::Visiting) => {
                        if is_hard {
                            let mut cycle: Vec<String> =
                                stack.iter().map(|f| f.name.clone()).collect();
                            if let Some(i) = cycle.iter().position(|n| *n == dep) {
                                cycle.drain(..i);
                            }
                            cycle.push(dep);
                            return Err(ModulesError::Cycle(cycle));
                        }
                        // A softdep closing a cycle: dropped.
                    }
                    None => {
                        top.after.push(dep.clone());
                        state.insert(dep.clone(), State::Visiting);
                        let f = open(&dep)?;
                        stack.push(f);
                    }
                },
                None => {
                    if let Some(done) = stack.pop() {
                        state.insert(done.name.clone(), State::Done);
                        res.order.push(done.name.clone());
                        res.load_after.insert(done.name, done.after);
                    }
                }
            }
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::select::dep_line;
    use crate::modules::test_util::{m, set, strings};

    #[test]
    fn closure_and_load_order() {
        let mods = set(vec![
            m("virtio", &[], &[], &[]),
            m("virtio_ring", &[], &[], &[]),
            m("virtio_pci_modern_dev", &[], &[], &[]),
            m(
                "virtio_pci",
                &["virtio_pci_modern_dev", "virtio_ring", "virtio"],
                &[],
                &["pci:v00001AF4d*"],
            ),
            m(
                "virtio_blk",
                &["virtio", "virtio_ring"],
                &[],
                &["virtio:d00000002v*"],
            ),
            m("dm_mod", &[], &[], &[]),
            m("dm_bufio", &[], &[], &[]),
            m("dm_verity", &["dm_bufio", "dm_mod"], &[], &[]),
            m("libcrc32c", &[], &["crc32c"], &[]),
            m("crc32c_generic", &[], &[], &["crc32c", "crypto-crc32c"]),
            m("unused", &[], &[], &[]),
        ]);
        let builtin = BTreeSet::from(["ext4".to_string()]);
        let r = resolve(
            &mods,
            &builtin,
            &strings(&[
                "virtio-pci",
                "virtio_blk",
                "ext4",
                "dm-verity",
                "libcrc32c",
                "virtio_pci",
            ]),
            false,
        )
        .unwrap();
        assert_eq!(
            r.order,
            [
                "virtio",
                "virtio_pci_modern_dev",
                "virtio_ring",
                "virtio_pci",
                "virtio_blk",
                "dm_bufio",
                "dm_mod",
                "dm_verity",
                "crc32c_generic",
                "libcrc32c",
            ]
        );
        assert_eq!(r.builtin, ["ext4"]);
        assert_eq!(r.load_after["libcrc32c"], ["crc32c_generic"]);
        assert_eq!(r.load_after["virtio_blk"], ["virtio", "virtio_ring"]);
        // Every module comes after what it needs.
        let pos = |n: &str| r.order.iter().position(|o| o == n).unwrap();
        for (n, after) in &r.load_after {
            for a in after {
                assert!(pos(a) < pos(n), "{a} before {n}");
            }
        }
        let position: HashMap<&str, usize> = r
            .order
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        // modules.dep order: reverse load order, transitive.
        assert_eq!(
            dep_line("virtio_pci", &mods, &position),
            ["virtio_ring", "virtio_pci_modern_dev", "virtio"]
        );
    }

    #[test]
    fn unknown_missing_and_cycles() {
        let mods = set(vec![
            m("a", &["b"], &[], &[]),
            m("b", &["a"], &[], &[]),
            m("c", &["gone"], &[], &[]),
            m("d", &[], &["e"], &[]),
            m("e", &[], &["d"], &[]),
        ]);
        let none = BTreeSet::new();
        assert!(matches!(
            resolve(&mods, &none, &strings(&["zzz"]), false),
            Err(ModulesError::Unknown(n)) if n == "zzz"
        ));
        let r = resolve(&mods, &none, &strings(&["zzz", "d"]), true).unwrap();
        assert_eq!(r.skipped, ["zzz"]);
        // A softdep cycle is broken, not an error.
        assert_eq!(r.order, ["e", "d"]);
        assert!(matches!(
            resolve(&mods, &none, &strings(&["a"]), false),
            Err(ModulesError::Cycle(c)) if c == ["a", "b", "a"]
        ));
        assert!(matches!(
            resolve(&mods, &none, &strings(&["c"]), false),
            Err(ModulesError::MissingDependency { .. })
        ));
    }
}
