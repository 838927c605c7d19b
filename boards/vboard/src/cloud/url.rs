//! Broker addresses: `mqtts://HOST[:PORT]` (TLS) or `mqtt://HOST[:PORT]` (plain).

use std::fmt;
use std::net::IpAddr;

pub const DEFAULT_TLS_PORT: u16 = 8883;
pub const DEFAULT_PLAIN_PORT: u16 = 1883;

/// A parsed broker URL. Credentials are never part of it: they come from their own options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub tls: bool,
    /// Host name or IP address, without IPv6 brackets.
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("'{0}': the scheme must be mqtts:// or mqtt://")]
    Scheme(String),
    #[error("'{0}': no host")]
    NoHost(String),
    #[error(
        "'{0}': user information is not allowed in the URL (use --mqtt-username and --mqtt-password-file)"
    )]
    UserInfo(String),
    #[error("'{0}': a path, query or fragment is not allowed")]
    Path(String),
    #[error("'{0}': invalid port")]
    Port(String),
    #[error("'{0}': invalid host")]
    Host(String),
}

impl BrokerUrl {
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let (tls, rest) = if let Some(r) = text.strip_prefix("mqtts://") {
            (true, r)
        } else if let Some(r) = text.strip_prefix("mqtt://") {
            (false, r)
        } else {
            return Err(UrlError::Scheme(shown(text)));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        // Checked before anything is echoed, so a password typed into the URL is never printed back.
        if rest.contains('@') {
            return Err(UrlError::UserInfo(redacted(tls)));
        }
        if rest.contains(['/', '?', '#']) {
            return Err(UrlError::Path(shown(text)));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| UrlError::Host(shown(text)))?;
        if host.is_empty() {
            return Err(UrlError::NoHost(shown(text)));
        }
        let port = match port {
            None => {
                if tls {
                    DEFAULT_TLS_PORT
                } else {
                    DEFAULT_PLAIN_PORT
                }
            }
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 => n,
                _ => return Err(UrlError::Port(shown(text))),
            },
        };
        let valid_name = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if !(valid_name || host.parse::<IpAddr>().is_ok()) {
            return Err(UrlError::Host(shown(text)));
        }
        Ok(Self {
            tls,
            host: host.to_string(),
            port,
        })
    }

    pub fn is_ip(&self) -> bool {
        self.host.parse::<IpAddr>().is_ok()
    }
}

/// `host[:port]` or `[v6][:port]`; `None` when the brackets are unbalanced. Shared with the update
/// agent's URLs.
pub(crate) fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(inner) = s.strip_prefix('[') {
        let (host, after) = inner.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        return match after {
            "" => Some((host, None)),
            a => Some((host, Some(a.strip_prefix(':')?))),
        };
    }
    match s.split_once(':') {
        None => Some((s, None)),
        Some((h, p)) => Some((h, Some(p))),
    }
}

fn shown(text: &str) -> String {
    text.chars()
        .take(100)
        .collect::<String>()
        .escape_default()
        .to_string()
}

fn redacted(tls: bool) -> String {
    format!("{}://<redacted>", if tls { "mqtts" } else { "mqtt" })
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(tls: bool, host: &str, port: u16) -> BrokerUrl {
        BrokerUrl {
            tls,
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_hosts_ports_and_defaults() {
        assert_eq!(
            BrokerUrl::parse("mqtts://127.0.0.1:18883"),
            Ok(url(true, "127.0.0.1", 18883))
        );
        assert_eq!(
            BrokerUrl::parse("mqtt://cloud.example/"),
            Ok(url(false, "cloud.example", 1883))
        );
        assert_eq!(
            BrokerUrl::parse("mqtts://cloud.example"),
            Ok(url(true, "cloud.example", 8883))
        );
        assert_eq!(
            BrokerUrl::parse("mqtts://[::1]:9000"),
            Ok(url(true, "::1", 9000))
        );
        assert!(BrokerUrl::parse("mqtts://[::1]").unwrap().is_ip());
        assert!(!BrokerUrl::parse("mqtts://localhost").unwrap().is_ip());
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "mqtts://127.0.0.1:8883",
            "mqtt://h.example:1",
            "mqtts://[::1]:9",
        ] {
            assert_eq!(BrokerUrl::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn refuses_bad_urls_without_echoing_credentials() {
        assert!(matches!(
            BrokerUrl::parse("http://h:1"),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(
            BrokerUrl::parse("mqtts://:8883"),
            Err(UrlError::NoHost(_))
        ));
        assert!(matches!(
            BrokerUrl::parse("mqtts://h:0"),
            Err(UrlError::Port(_))
        ));
        assert!(matches!(
            BrokerUrl::parse("mqtts://h:99999"),
            Err(UrlError::Port(_))
        ));
        assert!(matches!(
            BrokerUrl::parse("mqtts://h:1/x"),
            Err(UrlError::Path(_))
        ));
        assert!(matches!(
            BrokerUrl::parse("mqtts://h h:1"),
            Err(UrlError::Host(_))
        ));
        assert!(matches!(
            BrokerUrl::parse("mqtts://[::1:9"),
            Err(UrlError::Host(_))
        ));
        let err = BrokerUrl::parse("mqtts://dev:s3cret@h:1").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
