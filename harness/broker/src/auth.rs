//! Who a CONNECT is from: username/password, client certificate, or anonymous.

use crate::acl::ResolvedAcl;
use crate::config::BrokerConfig;
use crate::wire::ConnCode;

#[derive(Debug)]
pub enum Auth {
    Accepted {
        identity: Option<String>,
        acl: ResolvedAcl,
        /// `password`, `certificate` or `anonymous`, for the flow log.
        method: &'static str,
    },
    /// The CONNACK code and a reason for the flow log (never containing the password).
    Refused(ConnCode, String),
}

/// Compare without an early exit, so response time does not reveal how much of a password matched.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Credentials win over a certificate when both are offered; a wrong password is refused even if a
/// known certificate was presented, so a device's misconfiguration shows up in the evidence.
pub fn authenticate(
    cfg: &BrokerConfig,
    username: Option<&str>,
    password: Option<&str>,
    cert_cn: Option<&str>,
    client_id: &str,
) -> Auth {
    if let Some(user) = username {
        let found = cfg.users.iter().find(|u| u.username == user);
        return match (found, password) {
            (Some(u), Some(p)) if same(&u.password, p) => Auth::Accepted {
                identity: Some(user.to_string()),
                acl: ResolvedAcl::resolve(&u.acl, user, client_id),
                method: "password",
            },
            // A certificate login may carry a username for information only (as AWS IoT devices do).
            (_, None)
                if cert_cn.is_some_and(|cn| cfg.cert_identities.iter().any(|c| c.cn == cn)) =>
            {
                cert_login(cfg, cert_cn, client_id)
            }
            _ => Auth::Refused(
                ConnCode::BadCredentials,
                format!("bad username or password (user {user:?})"),
            ),
        };
    }
    if password.is_some() {
        return Auth::Refused(
            ConnCode::BadCredentials,
            "password without a username".into(),
        );
    }
    if let Some(cn) = cert_cn {
        if cfg.cert_identities.iter().any(|c| c.cn == cn) {
            return cert_login(cfg, cert_cn, client_id);
        }
        if !cfg.allow_anonymous {
            return Auth::Refused(
                ConnCode::NotAuthorized,
                format!("client certificate {cn:?} is not authorised"),
            );
        }
    }
    if cfg.allow_anonymous {
        return Auth::Accepted {
            identity: None,
            acl: ResolvedAcl::allow_all(),
            method: "anonymous",
        };
    }
    Auth::Refused(
        ConnCode::NotAuthorized,
        "no credentials and anonymous access is off".into(),
    )
}

fn cert_login(cfg: &BrokerConfig, cert_cn: Option<&str>, client_id: &str) -> Auth {
    match cert_cn.and_then(|cn| cfg.cert_identities.iter().find(|c| c.cn == cn)) {
        Some(c) => Auth::Accepted {
            identity: Some(c.cn.clone()),
            acl: ResolvedAcl::resolve(&c.acl, &c.cn, client_id),
            method: "certificate",
        },
        None => Auth::Refused(
            ConnCode::NotAuthorized,
            "client certificate is not authorised".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Acl, CertIdentity, User};

    fn cfg() -> BrokerConfig {
        BrokerConfig {
            users: vec![User {
                username: "dev".into(),
                password: "s3cret".into(),
                acl: Acl::allow_all(),
            }],
            cert_identities: vec![CertIdentity {
                cn: "VRB-1".into(),
                acl: Acl::allow_all(),
            }],
            ..Default::default()
        }
    }

    fn code(a: Auth) -> Option<ConnCode> {
        match a {
            Auth::Refused(c, reason) => {
                assert!(
                    !reason.contains("s3cret") && !reason.contains("wrong"),
                    "no password in {reason}"
                );
                Some(c)
            }
            Auth::Accepted { .. } => None,
        }
    }

    #[test]
    fn passwords_certificates_and_anonymous() {
        let c = cfg();
        assert_eq!(
            code(authenticate(&c, Some("dev"), Some("s3cret"), None, "x")),
            None
        );
        assert_eq!(
            code(authenticate(&c, Some("dev"), Some("wrong"), None, "x")),
            Some(ConnCode::BadCredentials)
        );
        assert_eq!(
            code(authenticate(&c, Some("nobody"), Some("s3cret"), None, "x")),
            Some(ConnCode::BadCredentials)
        );
        assert_eq!(
            code(authenticate(&c, None, None, None, "x")),
            Some(ConnCode::NotAuthorized)
        );
        assert_eq!(code(authenticate(&c, None, None, Some("VRB-1"), "x")), None);
        assert_eq!(
            code(authenticate(&c, Some("VRB-1"), None, Some("VRB-1"), "x")),
            None
        );
        assert_eq!(
            code(authenticate(&c, None, None, Some("VRB-2"), "x")),
            Some(ConnCode::NotAuthorized)
        );
        assert_eq!(
            code(authenticate(
                &c,
                Some("dev"),
                Some("wrong"),
                Some("VRB-1"),
                "x"
            )),
            Some(ConnCode::BadCredentials)
        );
        let open = BrokerConfig {
            allow_anonymous: true,
            ..cfg()
        };
        assert_eq!(code(authenticate(&open, None, None, None, "x")), None);
        match authenticate(&c, None, None, Some("VRB-1"), "x") {
            Auth::Accepted {
                identity, method, ..
            } => {
                assert_eq!(identity.as_deref(), Some("VRB-1"));
                assert_eq!(method, "certificate");
            }
            Auth::Refused(..) => panic!("refused"),
        }
    }
}
