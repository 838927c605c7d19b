//! HTTP(S) addresses the update agent talks to: `https://HOST[:PORT]/PATH` or `http://...`.

use crate::cloud::url::split_host_port;
use std::fmt;
use std::net::IpAddr;

/// Longest URL accepted (manifest image URLs come from the network).
const MAX_URL: usize = 2048;

/// A parsed URL. User information is never part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub tls: bool,
    /// Host name or IP address, without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// The path and query, starting with `/`.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("'{0}': the scheme must be https:// or http://")]
    Scheme(String),
    #[error("'{0}': invalid host")]
    Host(String),
    #[error("'{0}': invalid port")]
    Port(String),
    #[error("a URL with user information is not allowed")]
    UserInfo,
    #[error("'{0}': a fragment or a non-printable character is not allowed")]
    Character(String),
    #[error("the URL is longer than {MAX_URL} characters")]
    TooLong,
}

impl HttpUrl {
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        if text.len() > MAX_URL {
            return Err(UrlError::TooLong);
        }
        if text.contains('#') || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(UrlError::Character(shown(text)));
        }
        let (tls, rest) = if let Some(r) = text.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = text.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(UrlError::Scheme(shown(text)));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        // Checked before anything is echoed, so a password in the URL is never printed back.
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| UrlError::Host(shown(text)))?;
        let port = match port {
            None if tls => 443,
            None => 80,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 => n,
                _ => return Err(UrlError::Port(shown(text))),
            },
        };
        if !valid_host(host) {
            return Err(UrlError::Host(shown(text)));
        }
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        Ok(Self {
            tls,
            host: host.to_string(),
            port,
            path,
        })
    }

    /// `scheme://host:port`, with no path.
    pub fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority())
    }

    /// `host:port` as the `Host` header carries it (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The same origin with `leaf` appended to this URL's path (one `/` between them).
    pub fn join(&self, leaf: &str) -> Self {
        let base = self.path.trim_end_matches('/');
        Self {
            path: format!("{base}/{}", leaf.trim_start_matches('/')),
            ..self.clone()
        }
    }

    /// The same origin with `path` as its path.
    pub fn with_path(&self, path: &str) -> Self {
        Self {
            path: path.to_string(),
            ..self.clone()
        }
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin(), self.path)
    }
}

fn valid_host(host: &str) -> bool {
    let name = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    name || host.parse::<IpAddr>().is_ok()
}

fn shown(text: &str) -> String {
    text.chars()
        .take(100)
        .collect::<String>()
        .escape_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_joins() {
        let u = HttpUrl::parse("https://127.0.0.1:8443/update/VRB-1").unwrap();
        assert!(u.tls && u.host == "127.0.0.1" && u.port == 8443);
        assert_eq!(u.path, "/update/VRB-1");
        assert_eq!(
            u.join("manifest.json").to_string(),
            "https://127.0.0.1:8443/update/VRB-1/manifest.json"
        );
        assert_eq!(u.origin(), "https://127.0.0.1:8443");
        assert_eq!(
            u.with_path("/device/notices").to_string(),
            "https://127.0.0.1:8443/device/notices"
        );
        let u = HttpUrl::parse("http://cloud.example").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (false, 80, "/"));
        assert_eq!(u.join("/m.json").path, "/m.json");
        let u = HttpUrl::parse("https://[::1]/x?y=1").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 443));
        assert_eq!(u.authority(), "[::1]:443");
        assert_eq!(u.path, "/x?y=1");
    }

    #[test]
    fn refuses_bad_urls_without_echoing_credentials() {
        for bad in [
            "ftp://h/x",
            "https://",
            "https://h:0/",
            "https://h:70000/",
            "https://h h/",
            "https://h/x#frag",
            "https://h/\u{1b}[2J",
            "https://[::1/x",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
        let err = HttpUrl::parse("https://dev:s3cret@h/x").unwrap_err();
        assert_eq!(err, UrlError::UserInfo);
        assert!(!err.to_string().contains("s3cret"));
        assert_eq!(
            HttpUrl::parse(&format!("https://h/{}", "a".repeat(3000))),
            Err(UrlError::TooLong)
        );
    }
}
