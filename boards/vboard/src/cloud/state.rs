//! The cloud link's state as the console sees it, shared between the MQTT thread and the console.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// Notices kept for the `notices` command; older ones are dropped.
pub const MAX_NOTICES: usize = 16;
/// Longest notice or error text kept, in characters.
pub const MAX_TEXT: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Launched without a cloud.
    Off,
    Disconnected,
    Connected,
}

#[derive(Debug)]
struct Inner {
    link: Link,
    url: Option<String>,
    last_error: Option<String>,
    /// (received at, Unix ms; text), oldest first.
    notices: VecDeque<(u64, String)>,
    /// The owner's name as entered on the device, which presence reports carry; none before one is
    /// entered and after an erase.
    owner_name: Option<String>,
}

/// A cheap, cloneable handle on the shared state.
#[derive(Debug, Clone)]
pub struct CloudView(Arc<Mutex<Inner>>);

impl Default for CloudView {
    fn default() -> Self {
        Self::off()
    }
}

impl CloudView {
    /// A board launched without a cloud.
    pub fn off() -> Self {
        Self::with(Link::Off, None)
    }

    /// A board that will connect to `url` (shown as given: it never holds credentials).
    pub fn new(url: &str) -> Self {
        Self::with(Link::Disconnected, Some(url.to_string()))
    }

    fn with(link: Link, url: Option<String>) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            link,
            url,
            last_error: None,
            notices: VecDeque::new(),
            owner_name: None,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain data behind: still readable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn link(&self) -> Link {
        self.lock().link
    }

    /// `cloud=connected|disconnected|off url=<url> last_error=<text or ->`.
    pub fn status_line(&self) -> String {
        let s = self.lock();
        let link = match s.link {
            Link::Off => "off",
            Link::Disconnected => "disconnected",
            Link::Connected => "connected",
        };
        format!(
            "cloud={link} url={} last_error={}",
            s.url.as_deref().unwrap_or("-"),
            s.last_error.as_deref().unwrap_or("-")
        )
    }

    /// Stored notices, oldest first.
    pub fn notices(&self) -> Vec<String> {
        self.lock().notices.iter().map(|(_, t)| t.clone()).collect()
    }

    /// Stored notices with the Unix ms they arrived at, oldest first.
    pub fn timed_notices(&self) -> Vec<(u64, String)> {
        self.lock().notices.iter().cloned().collect()
    }

    /// The name presence reports carry, if any.
    pub fn owner_name(&self) -> Option<String> {
        self.lock().owner_name.clone()
    }

    /// Sets the name presence reports carry (`None`: no name).
    pub fn set_owner_name(&self, name: Option<&str>) {
        let mut s = self.lock();
        if s.owner_name.as_deref() != name {
            s.owner_name = name.map(str::to_string);
        }
    }

    pub fn set_connected(&self) {
        self.lock().link = Link::Connected;
    }

    /// Records a failed or lost connection. `error` must hold no secret.
    pub fn set_disconnected(&self, error: &str) {
        let mut s = self.lock();
        s.link = Link::Disconnected;
        s.last_error = Some(printable(error.as_bytes(), MAX_TEXT));
    }

    /// Stores a notice payload as printable text.
    pub fn push_notice(&self, payload: &[u8]) {
        let mut s = self.lock();
        if s.notices.len() == MAX_NOTICES {
            s.notices.pop_front();
        }
        s.notices
            .push_back((unix_now_ms(), printable(payload, MAX_TEXT)));
    }
}

fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One console-safe line of at most `max_chars`: no control characters (text from the network must
/// not drive the host's terminal).
pub fn printable(bytes: &[u8], max_chars: usize) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_follows_the_link() {
        assert_eq!(
            CloudView::off().status_line(),
            "cloud=off url=- last_error=-"
        );
        let v = CloudView::new("mqtts://127.0.0.1:8883");
        assert_eq!(
            v.status_line(),
            "cloud=disconnected url=mqtts://127.0.0.1:8883 last_error=-"
        );
        v.set_disconnected("TLS: invalid peer certificate:\r\nUnknownIssuer");
        assert_eq!(v.link(), Link::Disconnected);
        assert_eq!(
            v.status_line(),
            "cloud=disconnected url=mqtts://127.0.0.1:8883 \
             last_error=TLS: invalid peer certificate:  UnknownIssuer"
        );
        v.set_connected();
        assert!(v.status_line().starts_with("cloud=connected "));
    }

    #[test]
    fn keeps_the_last_sixteen_notices_as_safe_text() {
        let v = CloudView::off();
        for i in 0..20 {
            v.push_notice(format!("n{i}").as_bytes());
        }
        let n = v.notices();
        assert_eq!(n.len(), MAX_NOTICES);
        assert_eq!(n.first().map(String::as_str), Some("n4"));
        assert_eq!(n.last().map(String::as_str), Some("n19"));
        v.push_notice(b"\x1b[2Jwipe\xff");
        assert_eq!(v.notices().last().unwrap(), " [2Jwipe\u{fffd}");
        v.push_notice(&[b'x'; 1000]);
        assert_eq!(v.notices().last().unwrap().len(), 200);
    }
}
