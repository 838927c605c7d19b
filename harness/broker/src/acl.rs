//! An identity's ACL with its placeholders filled in, checked on every PUBLISH and SUBSCRIBE.

use crate::config::Acl;
use crate::topic::{covers, matches, valid_filter};

/// The filters in force for one connection.
#[derive(Debug, Clone, Default)]
pub struct ResolvedAcl {
    publish: Vec<String>,
    subscribe: Vec<String>,
}

impl ResolvedAcl {
    /// Substitute `{identity}`/`%u` and `{client_id}`/`%c`. A rule whose substituted value holds `/`, `+` or
    /// `#` is dropped: otherwise a client id such as `#` would widen its own access.
    pub fn resolve(acl: &Acl, identity: &str, client_id: &str) -> ResolvedAcl {
        let fill = |rules: &[String]| -> Vec<String> {
            rules
                .iter()
                .filter_map(|r| {
                    let uses_id = r.contains("{identity}") || r.contains("%u");
                    let uses_client = r.contains("{client_id}") || r.contains("%c");
                    if (uses_id && unsafe_value(identity))
                        || (uses_client && unsafe_value(client_id))
                    {
                        return None;
                    }
                    let f = r.replace("{identity}", identity).replace("%u", identity);
                    let f = f.replace("{client_id}", client_id).replace("%c", client_id);
                    valid_filter(&f).then_some(f)
                })
                .collect()
        };
        ResolvedAcl {
            publish: fill(&acl.publish),
            subscribe: fill(&acl.subscribe),
        }
    }

    pub fn allow_all() -> ResolvedAcl {
        ResolvedAcl {
            publish: vec!["#".into()],
            subscribe: vec!["#".into()],
        }
    }

    pub fn may_publish(&self, topic: &str) -> bool {
        self.publish.iter().any(|f| matches(topic, f))
    }

    pub fn may_subscribe(&self, filter: &str) -> bool {
        self.subscribe.iter().any(|f| covers(f, filter))
    }
}

fn unsafe_value(v: &str) -> bool {
    v.is_empty() || v.contains(['/', '+', '#'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(publish: &[&str], subscribe: &[&str]) -> Acl {
        Acl {
            publish: publish.iter().map(|s| s.to_string()).collect(),
            subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn placeholders_are_substituted() {
        let a = ResolvedAcl::resolve(
            &acl(
                &["devices/{identity}/tele", "c/%c/#"],
                &["devices/%u/cmd/+"],
            ),
            "dev1",
            "cl1",
        );
        assert!(a.may_publish("devices/dev1/tele"));
        assert!(!a.may_publish("devices/dev2/tele"));
        assert!(a.may_publish("c/cl1/x/y"));
        assert!(a.may_subscribe("devices/dev1/cmd/+"));
        assert!(a.may_subscribe("devices/dev1/cmd/reboot"));
        assert!(!a.may_subscribe("devices/dev1/cmd/#"));
        assert!(!a.may_subscribe("devices/+/cmd/reboot"));
    }

    #[test]
    fn wildcard_identities_cannot_widen_access() {
        let a = ResolvedAcl::resolve(
            &acl(&["devices/{identity}/tele"], &["devices/{client_id}/#"]),
            "#",
            "+",
        );
        assert!(!a.may_publish("devices/#/tele"));
        assert!(!a.may_publish("devices/x/tele"));
        assert!(!a.may_subscribe("devices/x/y"));
    }

    #[test]
    fn empty_acl_denies() {
        let a = ResolvedAcl::resolve(&Acl::default(), "x", "y");
        assert!(!a.may_publish("a"));
        assert!(!a.may_subscribe("a"));
    }
}
