//! Consent decisions made in the companion app, as the device learns them: the mock cloud's
//! `GET /device/users/{user}/consents` answers `{"user": ID, "consents": {PURPOSE: [{"granted": BOOL,
//! "time": RFC3339}, ...]}}`, every purpose's history oldest first (the app's decisions and the
//! device's own reports). Here are that route, the reading of its answer down to the latest decision
//! on one purpose, and RFC 3339 times as unix milliseconds. Whether the device adopts the decision is
//! [`super::state::should_adopt`]'s call.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::state::Purpose;
use crate::update::http::HttpError;

/// Longest piece of a bad time kept for the log.
const MAX_SHOWN_TIME: usize = 40;

/// The newest decision in the cloud's history of one user on one purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudDecision {
    pub granted: bool,
    /// When the cloud recorded it, unix ms.
    pub at_ms: u64,
}

/// Why the cloud's consent history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("malformed consent history: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("the consent history is another user's")]
    OtherUser,
    #[error("not an RFC 3339 time: {0:?}")]
    BadTime(String),
}

/// The path of `user`'s consent history (a valid user id: it goes into the path as it is).
pub fn history_path(user: &str) -> String {
    format!("/device/users/{user}/consents")
}

#[derive(Debug, Deserialize)]
struct History {
    user: String,
    #[serde(default)]
    consents: BTreeMap<String, Vec<Entry>>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    granted: bool,
    time: String,
}

/// The latest decision of `user` on `purpose` in the answer `body`; `None` for an empty history.
pub fn latest(
    body: &[u8],
    user: &str,
    purpose: Purpose,
) -> Result<Option<CloudDecision>, SyncError> {
    let history: History = serde_json::from_slice(body)?;
    if history.user != user {
        return Err(SyncError::OtherUser);
    }
    let Some(entry) = history
        .consents
        .get(purpose.name())
        .and_then(|entries| entries.last())
    else {
        return Ok(None);
    };
    let at_ms = unix_ms(&entry.time)
        .ok_or_else(|| SyncError::BadTime(entry.time.chars().take(MAX_SHOWN_TIME).collect()))?;
    Ok(Some(CloudDecision {
        granted: entry.granted,
        at_ms,
    }))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` as unix milliseconds (the fraction cut to ms); `None`
/// for anything else, or a time before 1970.
pub fn unix_ms(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if b.len() < 20 || !separators.iter().all(|&(i, c)| b[i] == c) || !matches!(b[10], b'T' | b't')
    {
        return None;
    }
    let (year, month, day) = (
        digits(text, 0, 4)?,
        digits(text, 5, 7)?,
        digits(text, 8, 10)?,
    );
    let (hour, minute, second) = (
        digits(text, 11, 13)?,
        digits(text, 14, 16)?,
        digits(text, 17, 19)?,
    );
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        // 60: a leap second.
        || second > 60
    {
        return None;
    }
    let (millis, zone) = fraction(&text[19..])?;
    let offset_s = offset_secs(zone)?;
    let secs = days_since_epoch(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
        - offset_s;
    u64::try_from(secs.checked_mul(1_000)? + millis).ok()
}

/// The number in `text[from..to]`, all ASCII digits.
fn digits(text: &str, from: usize, to: usize) -> Option<i64> {
    let part = text.get(from..to)?;
    part.bytes().try_fold(0i64, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
    })
}

/// The milliseconds of an optional `.fraction`, and what follows it.
fn fraction(rest: &str) -> Option<(i64, &str)> {
    let Some(after_dot) = rest.strip_prefix('.') else {
        return Some((0, rest));
    };
    let len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 {
        return None;
    }
    let padded = format!("{:0<3}", &after_dot[..len.min(3)]);
    Some((digits(&padded, 0, 3)?, &after_dot[len..]))
}

/// `Z` or `±HH:MM` as seconds east of UTC.
fn offset_secs(zone: &str) -> Option<i64> {
    if zone.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    if zone.len() != 6 || zone.as_bytes()[3] != b':' {
        return None;
    }
    let (hours, minutes) = (digits(zone, 1, 3)?, digits(zone, 4, 6)?);
    (hours <= 23 && minutes <= 59).then_some(sign * (hours * 3_600 + minutes * 60))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_since_epoch(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_become_unix_milliseconds() {
        assert_eq!(unix_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_ms("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
        assert_eq!(
            unix_ms("2023-11-14T22:13:20.123456Z"),
            Some(1_700_000_000_123)
        );
        assert_eq!(unix_ms("2023-11-14T22:13:20.5z"), Some(1_700_000_000_500));
        assert_eq!(
            unix_ms("2023-11-15T00:13:20+02:00"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            unix_ms("2023-11-14t20:43:20-01:30"),
            Some(1_700_000_000_000)
        );
        assert_eq!(unix_ms("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        for bad in [
            "",
            "2023-11-14 22:13:20Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20.Z",
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:13:20+0200",
            "1969-12-31T23:59:59Z",
            "+023-11-14T22:13:20Z",
            "2023-11-14T22:13:20Zjunk",
        ] {
            assert_eq!(unix_ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_latest_entry_of_the_purpose_is_read() {
        let body = br#"{"user":"alice","consents":{"analytics":[
            {"granted":true,"time":"2023-11-14T22:13:20Z"},
            {"granted":false,"time":"2023-11-14T22:13:21.000001Z"}],
            "marketing":[{"granted":true,"time":"2030-01-01T00:00:00Z"}]}}"#;
        assert_eq!(
            latest(body, "alice", Purpose::Analytics).unwrap(),
            Some(CloudDecision {
                granted: false,
                at_ms: 1_700_000_001_000
            })
        );
        for empty in [
            &br#"{"user":"alice","consents":{}}"#[..],
            br#"{"user":"alice","consents":{"analytics":[]}}"#,
            br#"{"user":"alice"}"#,
        ] {
            assert_eq!(latest(empty, "alice", Purpose::Analytics).unwrap(), None);
        }
    }

    #[test]
    fn another_users_or_a_malformed_history_is_an_error() {
        let bob = br#"{"user":"bob","consents":{}}"#;
        assert!(matches!(
            latest(bob, "alice", Purpose::Analytics),
            Err(SyncError::OtherUser)
        ));
        let bad_time =
            br#"{"user":"alice","consents":{"analytics":[{"granted":true,"time":"yesterday"}]}}"#;
        assert!(matches!(
            latest(bad_time, "alice", Purpose::Analytics),
            Err(SyncError::BadTime(t)) if t == "yesterday"
        ));
        for malformed in [
            &b"not json"[..],
            br#"{"consents":{}}"#,
            br#"{"user":"alice","consents":{"analytics":[{"granted":"yes","time":"x"}]}}"#,
        ] {
            assert!(matches!(
                latest(malformed, "alice", Purpose::Analytics),
                Err(SyncError::Malformed(_))
            ));
        }
        assert_eq!(history_path("alice"), "/device/users/alice/consents");
    }
}
