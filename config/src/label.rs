//! An image's `org.mobyproject.config` label: the image entry its author
//! gave it, which the YAML entry overrides field by field (at build time).

use crate::entry::ImageEntry;
use crate::load::serde_message;
use crate::position::Problem;
use crate::raw::RawEntry;

/// Parses a label (JSON, which is YAML) with the same types and the same
/// strictness as the YAML. A mistake of shape is an error; the mistakes in
/// values come with the entry (those values left out), since the YAML may
/// replace them; and so do those between two fields, for the merged entry.
pub fn parse_label(text: &str) -> Result<(ImageEntry, Vec<Problem>), String> {
    let (entry, problems) = read(text, false)?;
    if entry.name.is_some() {
        return Err("a label cannot set `name`".into());
    }
    if entry.image.is_some() {
        return Err("a label cannot set `image`".into());
    }
    Ok((entry, problems))
}

/// Reads one image entry written on its own (YAML or JSON): a mistake of
/// shape is an error, the mistakes in values come with the entry.
pub fn parse_entry(text: &str) -> Result<(ImageEntry, Vec<Problem>), String> {
    read(text, true)
}

fn read(text: &str, between_fields: bool) -> Result<(ImageEntry, Vec<Problem>), String> {
    let node = crate::yaml::load(text).map_err(|(_, m)| m)?;
    let raw: RawEntry = marked_yaml::from_node(&node).map_err(|e| serde_message(&e))?;
    Ok(ImageEntry::read(&raw, between_fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::{Capability, Id, Namespace};

    #[test]
    fn labels_as_linuxkit_writes_them_parse() {
        // `linuxkit pkg build` writes the `config:` of build.yml as Go's
        // json.Marshal does: one line, every key of a struct that is not
        // omitempty (createInRoot, bindNS), device modes as strings.
        let label = r#"{"capabilities":["CAP_SYS_ADMIN","CAP_MKNOD"],"binds":["/dev:/dev"],"devices":[{"path":"all","type":"b","major":0,"minor":0},{"path":"/dev/console","type":"c","major":5,"minor":1,"mode":"0666"}],"net":"new","ipc":"new","pid":"host","readonly":true,"oomScoreAdj":-800,"rootfsPropagation":"shared","sysctl":{"net.ipv4.ip_forward":"1"},"resources":{"devices":[{"allow":true,"access":"rwm"}],"memory":{"limit":1048576}},"runtime":{"mkdir":["/var/lib/x"],"interfaces":[{"name":"wg0","add":"wireguard","createInRoot":true},{"name":"eth1","createInRoot":false}],"bindNS":{"net":"/run/netns/wg0"},"namespace":"ns"}}"#;
        let (e, problems) = parse_label(label).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(e.net, Some(Namespace::New));
        assert_eq!(e.devices.as_ref().unwrap().len(), 2);
        assert_eq!(e.oom_score_adj, Some(-800));
        let rt = e.runtime.unwrap();
        assert_eq!(rt.interfaces.unwrap()[0].add, "wireguard");
        assert_eq!(rt.bind_ns.unwrap().net.as_deref(), Some("/run/netns/wg0"));
        // An empty bindNS and null fields, as Go writes a zero struct.
        let e = parse_label(r#"{"runtime":{"bindNS":{},"mounts":null},"capabilities":null}"#);
        assert!(e.is_ok(), "{e:?}");
        // A device in a YAML config may leave out what `path: all` does not need.
        let e = parse_label("devices:\n  - path: all\n    type: b\n  - {path: /dev/tty0, type: c, major: 4, minor: 0, mode: 0666}\n");
        assert!(e.is_ok_and(|(_, p)| p.is_empty()));
    }

    #[test]
    fn label_is_parsed_strictly() {
        let (l, _) =
            parse_label(r#"{"capabilities":["CAP_NET_ADMIN"],"binds":["/a:/a"],"uid":5}"#).unwrap();
        assert_eq!(l.uid, Some(Id::Number(5)));
        assert_eq!(
            l.capabilities,
            Some(crate::values::Capabilities::List(vec![
                Capability::NetAdmin
            ]))
        );
        assert!(parse_label(r#"{"name":"x"}"#).is_err());
        assert!(parse_label(r#"{"capabilitiez":[]}"#)
            .unwrap_err()
            .contains("did you mean \"capabilities\""));
        // A bad value is a problem at its key, the value left out.
        let (l, p) = parse_label(r#"{"capabilities":["CAP_FLY"],"net":"host"}"#).unwrap();
        assert_eq!(l.capabilities, None);
        assert_eq!(p[0].dotted(), "capabilities.0");
        assert_eq!(p[0].message, "unknown capability \"CAP_FLY\"");
    }
}
