//! The checks that need more than one value: names and their uses across
//! entries and files (duplicates, `depends` and its cycles, uids by
//! container name, volumes named by binds), hull's keys in the right
//! section, `files`, `volumes`, image references and `@pkg:` packages.
//! Each value was read (and its mistakes found) when the file was loaded;
//! the checks report those too, in their place, so that `hull validate`
//! lists every mistake in one order.

mod containers;
mod files;
mod packages;

use crate::position::ConfigErrors;
use crate::schema::Config;

pub use containers::valid_name;
pub use packages::check_packages;

/// Checks a whole (merged) description; adds every problem to `errs`.
pub fn check(config: &Config, errs: &mut ConfigErrors) {
    containers::check_names(config, errs);
    let ids = config.id_map();
    containers::check_entries(config, &ids, errs);
    containers::check_cycles(config, errs);
    check_kernel(config, errs);
    for i in &config.init {
        if i.value.trim().is_empty() {
            errs.push(i.error(&[], "an empty image reference in `init`"));
        }
    }
    files::check_files(config, &ids, errs);
    files::check_volumes(config, errs);
    for (pos, reference) in config.image_refs() {
        if reference.starts_with("@pkg:") || reference.trim().is_empty() {
            continue; // folders are checked by check_packages; empty ones above
        }
        if let Some(m) = crate::image_map::reference_problem(&reference) {
            errs.push(pos.error(m));
        }
    }
}

fn check_kernel(config: &Config, errs: &mut ConfigErrors) {
    for k in &config.kernels {
        if let Some(i) = &k.value.image {
            if i.trim().is_empty() {
                errs.push(k.error(&["image"], "an empty kernel image reference"));
            }
        }
        // An empty `ucode` is LinuxKit's way to say "no microcode" (its
        // default); an empty `binary` means nothing.
        if k.value.binary.as_deref() == Some("") {
            errs.push(k.error(
                &["binary"],
                "`binary` names a file in the kernel image; it cannot be empty",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::parse;
    use std::path::Path;

    fn errors_of(files: &[(&str, &str)]) -> Vec<String> {
        let cfgs: Vec<Config> = files
            .iter()
            .map(|(n, t)| parse(Path::new(n), t).unwrap())
            .collect();
        let cfg = Config::merge(cfgs);
        let mut errs = ConfigErrors::default();
        check(&cfg, &mut errs);
        errs.0.iter().map(|e| e.to_string()).collect()
    }

    fn errors(text: &str) -> Vec<String> {
        errors_of(&[("t.yml", text)])
    }

    /// Every wanted message starts one of the reported lines.
    fn assert_has_errors(e: &[String], want: &[&str]) {
        for w in want {
            assert!(
                e.iter().any(|l| l.starts_with(w)),
                "missing {w:?} in {e:#?}"
            );
        }
    }

    #[test]
    fn duplicate_names_name_both_places_across_files() {
        let e = errors_of(&[
            ("a.yml", "onboot:\n  - name: x\n    image: i\n"),
            (
                "b.yml",
                "services:\n  - name: y\n    image: i\n  - name: x\n    image: i\n",
            ),
        ]);
        assert_eq!(e, ["b.yml:4:5: container name \"x\" is used twice: here (services) and at a.yml:2:5 (onboot)"]);
    }

    #[test]
    fn run_once_steps_may_repeat_a_name_within_their_section() {
        let ok = errors("onboot:\n  - name: mount\n    image: i\n  - name: mount\n    image: i\nonshutdown:\n  - name: bye\n    image: i\n  - name: bye\n    image: i\n");
        assert!(ok.is_empty(), "{ok:#?}");
        let e = errors_of(&[
            ("a.yml", "services:\n  - name: s\n    image: i\n"),
            (
                "b.yml",
                "onshutdown:\n  - name: mount\n    image: i\nservices:\n  - name: s\n    image: i\nonboot:\n  - name: mount\n    image: i\n",
            ),
        ]);
        assert_eq!(
            e,
            [
                "b.yml:2:5: container name \"mount\" is used twice: here (onshutdown) and at b.yml:8:5 (onboot)",
                "b.yml:5:5: container name \"s\" is used twice: here (services) and at a.yml:2:5 (services)",
            ],
        );
    }

    #[test]
    fn depends_unknown_self_and_cycles() {
        let e = errors("onboot:\n  - {name: init, image: i}\nservices:\n  - {name: a, image: i, depends: [b]}\n  - {name: b, image: i, depends: [c]}\n  - {name: c, image: i, depends: [a, init, bb, c]}\n");
        assert!(
            e.iter()
                .any(|l| l
                    .starts_with("t.yml:6:38: `depends` names \"init\", which is not a service")),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .any(|l| l.contains("\"bb\", which is not a service (did you mean \"b\"?)")),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .any(|l| l.contains("service \"c\" depends on itself")),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .any(|l| l == "t.yml:6:35: dependency cycle: a -> b -> c -> a"),
            "{e:#?}"
        );
        assert_eq!(e.len(), 4, "{e:#?}");
    }

    #[test]
    fn a_long_dependency_chain_does_not_overflow_the_stack() {
        let n = 30_000;
        let mut text = String::from("services:\n");
        for i in 0..n {
            text.push_str(&format!(
                "  - {{name: s{i}, image: x, depends: [s{}]}}\n",
                i + 1
            ));
        }
        text.push_str(&format!("  - {{name: s{n}, image: x, depends: [s0]}}\n"));
        let e = errors(&text);
        assert_eq!(e.len(), 1);
        assert!(e[0].ends_with(&format!("s{n} -> s0")), "{}", &e[0][..80]);
    }

    #[test]
    fn hull_keys_in_the_wrong_section() {
        let e = errors("onboot:\n  - name: o\n    image: i\n    restart: always\n    stopGracePeriod: 5s\n    required: true\nonshutdown:\n  - name: s\n    image: i\n    required: true\nservices:\n  - name: v\n    image: i\n    required: false\n");
        assert_eq!(e.len(), 4, "{e:#?}");
        assert!(
            e[0].starts_with("t.yml:4:5: `restart` applies to services only"),
            "{e:#?}"
        );
        assert!(
            e[1].starts_with("t.yml:5:5: `stopGracePeriod` applies to services only"),
            "{e:#?}"
        );
        assert!(
            e[2].starts_with("t.yml:10:5: `required` applies to onboot containers only"),
            "{e:#?}"
        );
        assert!(e[3].starts_with("t.yml:14:5: "), "{e:#?}");
    }

    #[test]
    fn value_errors_point_at_their_key() {
        let e = errors("services:\n  - name: s\n    image: i\n    capabilities: [CAP_NET_ADMN, all]\n    pid: private\n    stopSignal: SIGFOO\n    stopGracePeriod: soon\n    restartBackoff: {initial: 1m, max: 1s}\n    readiness: {tcp: 0}\n    uid: nobody\n    binds: [relative:/x]\n");
        let want = [
            "t.yml:4:20: unknown capability \"CAP_NET_ADMN\" (did you mean \"CAP_NET_ADMIN\"?)",
            "t.yml:4:34: \"all\" must be the only entry of `capabilities`",
            "t.yml:5:5: pid: \"private\" is not `host`, `new` or the path of a namespace to join",
            "t.yml:11:13: bind source \"relative\" is not an absolute path, so it names a volume, but no volume has that name (there are no `volumes`)",
            "t.yml:8:5: restartBackoff: initial (60000 ms) must be above 0 and at most max (1000 ms)",
            "t.yml:7:5: \"soon\" is not a duration like 250ms, 10s or 2m",
            "t.yml:6:5: \"SIGFOO\" is not a signal name (like SIGTERM or SIGINT)",
            "t.yml:9:5: port 0 is not a TCP port (1-65535)",
            "t.yml:10:5: \"nobody\" is neither a number nor the name of a container",
        ];
        assert_has_errors(&e, &want);
    }

    #[test]
    fn files_and_volumes() {
        let e = errors("files:\n  - path: etc/a\n    contents: x\n    directory: true\n  - path: etc/b\n  - path: etc/a\n    contents: y\n    mode: '0999'\n    uid: nobody\nvolumes:\n  - name: Bad\n  - name: v\n    format: raw\n  - name: v\n");
        let want = [
            "t.yml:4:5: `contents` and `directory` cannot be combined",
            "t.yml:5:5: a file needs one of",
            "t.yml:6:5: path \"etc/a\" is already written at t.yml:2:5",
            "t.yml:8:5: mode \"0999\" is not an octal number",
            "t.yml:9:5: \"nobody\" is neither a number",
            "t.yml:11:5: volume name \"Bad\" must be",
            "t.yml:13:5: volume format \"raw\"",
            "t.yml:14:5: volume name \"v\" is used twice: here and at t.yml:12:5",
        ];
        assert_has_errors(&e, &want);
        assert_eq!(e.len(), want.len(), "{e:#?}");
    }

    #[test]
    fn binds_may_name_a_volume_and_root_means_host() {
        // LinuxKit: a bind or `type: bind` mount whose source is no path uses
        // the volume of that name; `root` is the host's namespace.
        let ok = errors("services:\n  - name: s\n    image: i\n    net: root\n    ipc: root\n    binds: [data:/data]\n    binds.add: ['data:/ro:ro']\n    mounts: [{type: bind, source: data, destination: /m}]\nvolumes:\n  - name: data\n");
        assert!(ok.is_empty(), "{ok:#?}");
        let e = errors("services:\n  - name: s\n    image: i\n    binds: [data:/data, 'Not A Volume:/x']\n    mounts: [{type: bind, source: dta, destination: /m}]\nvolumes:\n  - name: datas\n");
        let want = [
            "t.yml:4:13: bind source \"data\" is not an absolute path, so it names a volume, but no volume has that name (volumes: datas)",
            "t.yml:4:25: bind \"Not A Volume:/x\": the source must be an absolute path or a volume name",
            "t.yml:5:27: bind source \"dta\" is not an absolute path",
        ];
        assert_has_errors(&e, &want);
        assert_eq!(e.len(), want.len(), "{e:#?}");
    }

    #[test]
    fn a_good_file_has_no_errors() {
        let e = errors("onboot:\n  - {name: a, image: i, required: true}\nservices:\n  - name: db\n    image: i\n    readiness: notify\n    uid: a\n  - name: web\n    image: i\n    depends: [db]\n    readiness: {file: /run/web.ready}\n    readinessTimeout: 30s\n    restart: always\n    stopSignal: 2\nfiles:\n  - {path: etc/x, contents: hi, uid: web, mode: '0644'}\n  - {path: etc/y, metadata: yaml}\n");
        assert!(e.is_empty(), "{e:#?}");
    }
}
