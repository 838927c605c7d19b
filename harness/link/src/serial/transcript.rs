//! The evidence of a session: every chunk each way with its time, bounded, rendered with secrets
//! masked as a text log and as JSON lines.

use std::fmt::Write;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::escape::escape_into;
use super::mask::{Hit, Secrets, marker};

/// Default bound on recorded bytes.
pub const DEFAULT_TRANSCRIPT_LIMIT: usize = 8 * 1024 * 1024;

/// Which way a chunk went: `Rx` device to host, `Tx` host to device, `Note` a harness annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    Rx,
    Tx,
    Note,
}

impl Dir {
    fn symbol(self) -> char {
        match self {
            Dir::Rx => '<',
            Dir::Tx => '>',
            Dir::Note => '#',
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

enum Payload {
    Bytes(Vec<u8>),
    /// Sent with `send_secret`: the bytes are never stored.
    Secret(String),
    /// Where the limit was reached; the counts are rendered from the transcript's totals.
    Truncated,
}

struct Entry {
    t_us: u64,
    dir: Dir,
    payload: Payload,
}

/// Timestamped record of a session's traffic. Secrets registered at any time are masked in
/// every rendering, in any ASCII case, also when they arrived split across several chunks.
pub struct Transcript {
    start: String,
    origin: Instant,
    limit: usize,
    recorded: usize,
    dropped: [u64; 2],
    entries: Vec<Entry>,
    secrets: Secrets,
}

/// Counts and secret labels only: the traffic (which may hold a secret in clear until it is
/// rendered) never reaches a log through `{:?}`.
impl std::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcript")
            .field("start", &self.start)
            .field("limit", &self.limit)
            .field("recorded", &self.recorded)
            .field("entries", &self.entries.len())
            .field("truncated_bytes", &self.truncated_bytes())
            .field("secrets", &self.secrets)
            .finish()
    }
}

enum Seg<'a> {
    Plain(&'a [u8]),
    Mask(String),
}

#[derive(Serialize)]
struct JsonEntry<'a> {
    t_us: u64,
    dir: Dir,
    data: &'a str,
}

#[derive(Serialize)]
struct JsonHeader<'a> {
    format: &'static str,
    start: &'a str,
    limit: usize,
    truncated_bytes: u64,
}

impl Transcript {
    /// `start` is the wall-clock start as RFC 3339; `None` takes the current time.
    pub fn new(start: Option<String>, limit: usize) -> Self {
        let start = start.unwrap_or_else(|| {
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        });
        Self {
            start,
            origin: Instant::now(),
            limit,
            recorded: 0,
            dropped: [0; 2],
            entries: Vec::new(),
            secrets: Secrets::default(),
        }
    }

    /// Wall-clock start of the session (RFC 3339).
    pub fn start(&self) -> &str {
        &self.start
    }

    /// Time since the session started (the transcript's time base).
    pub fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Bytes held (data and notes).
    pub fn recorded_bytes(&self) -> usize {
        self.recorded
    }

    /// Rx and tx bytes not recorded because the limit was reached.
    pub fn truncated_bytes(&self) -> u64 {
        self.dropped[0] + self.dropped[1]
    }

    /// Number of entries (chunks, notes, markers).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Mask `secret` wherever it appears, in either direction and in any ASCII case, in every
    /// rendering.
    pub fn add_secret(&mut self, secret: &[u8], label: &str) {
        self.secrets.add(secret, label);
    }

    pub(crate) fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Record a chunk of traffic (`Dir::Note` is recorded as a note).
    pub fn record(&mut self, dir: Dir, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let t_us = self.now_us();
        if dir == Dir::Note {
            self.recorded += data.len();
            self.push(t_us, dir, Payload::Bytes(data.to_vec()));
            return;
        }
        let room = if self.truncated_bytes() > 0 {
            0
        } else {
            self.limit.saturating_sub(self.recorded)
        };
        let kept = data.len().min(room);
        if kept > 0 {
            self.recorded += kept;
            self.push(t_us, dir, Payload::Bytes(data[..kept].to_vec()));
        }
        if kept < data.len() {
            self.truncate(t_us, dir, (data.len() - kept) as u64);
        }
    }

    /// Record that a secret of `len` bytes was sent, by label only.
    pub fn record_secret(&mut self, label: &str, len: usize) {
        let t_us = self.now_us();
        if self.truncated_bytes() > 0 || self.recorded + label.len() > self.limit {
            self.truncate(t_us, Dir::Tx, len as u64);
            return;
        }
        self.recorded += label.len();
        self.push(t_us, Dir::Tx, Payload::Secret(label.to_string()));
    }

    /// A harness annotation, e.g. "step 3: login". Notes are kept even past the limit.
    pub fn note(&mut self, text: &str) {
        self.record(Dir::Note, text.as_bytes());
    }

    fn push(&mut self, t_us: u64, dir: Dir, payload: Payload) {
        self.entries.push(Entry { t_us, dir, payload });
    }

    fn truncate(&mut self, t_us: u64, dir: Dir, bytes: u64) {
        if self.truncated_bytes() == 0 {
            tracing::warn!(limit = self.limit, "transcript limit reached");
            self.push(t_us, Dir::Note, Payload::Truncated);
        }
        self.dropped[dir.index()] += bytes;
    }

    fn truncation_text(&self) -> String {
        format!(
            "transcript limit of {} bytes reached: truncated {} bytes (rx {}, tx {})",
            self.limit,
            self.truncated_bytes(),
            self.dropped[0],
            self.dropped[1]
        )
    }

    /// Each entry with its content split into plain bytes and secret markers.
    fn masked_entries(&self) -> Vec<(&Entry, Vec<Seg<'_>>)> {
        let mut streams: [Vec<u8>; 3] = Default::default();
        for e in &self.entries {
            if let Payload::Bytes(b) = &e.payload {
                streams[e.dir.index()].extend_from_slice(b);
            }
        }
        let hits: Vec<Vec<Hit>> = streams.iter().map(|s| self.secrets.hits(s)).collect();
        let mut offset = [0usize; 3];
        let mut next_hit = [0usize; 3];
        let mut out = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            let segs = match &e.payload {
                Payload::Bytes(b) => {
                    let d = e.dir.index();
                    let segs = self.split(b, offset[d], &hits[d], &mut next_hit[d]);
                    offset[d] += b.len();
                    segs
                }
                Payload::Secret(label) => vec![Seg::Mask(marker(label))],
                Payload::Truncated => vec![Seg::Mask(self.truncation_text())],
            };
            out.push((e, segs));
        }
        out
    }

    /// Split one chunk at `base` in its direction's stream around the hits overlapping it. A
    /// secret's marker goes where the secret starts; its continuation in later chunks is dropped.
    fn split<'a>(
        &self,
        data: &'a [u8],
        base: usize,
        hits: &[Hit],
        next: &mut usize,
    ) -> Vec<Seg<'a>> {
        let end = base + data.len();
        let mut segs = Vec::new();
        let mut pos = 0;
        while let Some(h) = hits.get(*next) {
            if h.range.start >= end {
                break;
            }
            let hs = h.range.start.max(base) - base;
            if hs > pos {
                segs.push(Seg::Plain(&data[pos..hs]));
            }
            if h.range.start >= base {
                segs.push(Seg::Mask(self.secrets.marker(h.label)));
            }
            pos = h.range.end.min(end) - base;
            if h.range.end > end {
                break;
            }
            *next += 1;
        }
        if pos < data.len() {
            segs.push(Seg::Plain(&data[pos..]));
        }
        segs
    }

    /// Human-readable log: one line per chunk or device line, control bytes escaped.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# hilt serial transcript");
        let _ = writeln!(out, "# start: {}", self.start);
        let _ = writeln!(
            out,
            "# times from session start; > host to device, < device to host, # note"
        );
        for (e, segs) in self.masked_entries() {
            let prefix = format!(
                "[{:>5}.{:03} ms] {} ",
                e.t_us / 1000,
                e.t_us % 1000,
                e.dir.symbol()
            );
            for line in lines(&segs) {
                let _ = writeln!(out, "{prefix}{line}");
            }
        }
        out
    }

    /// JSON lines: a header object, then `{"t_us":..,"dir":"rx"|"tx"|"note","data":".."}` per
    /// entry, `data` escaped as in the text log.
    pub fn render_jsonl(&self) -> String {
        let mut out = String::new();
        let header = JsonHeader {
            format: "hilt-serial-transcript/1",
            start: &self.start,
            limit: self.limit,
            truncated_bytes: self.truncated_bytes(),
        };
        push_json(&mut out, &header);
        for (e, segs) in self.masked_entries() {
            let mut data = String::new();
            for seg in &segs {
                match seg {
                    Seg::Plain(b) => escape_into(&mut data, b),
                    Seg::Mask(m) => data.push_str(m),
                }
            }
            let entry = JsonEntry {
                t_us: e.t_us,
                dir: e.dir,
                data: &data,
            };
            push_json(&mut out, &entry);
        }
        out
    }
}

fn push_json<T: Serialize>(out: &mut String, value: &T) {
    // Serializing these plain structs cannot fail; an empty line would show if it ever did.
    out.push_str(&serde_json::to_string(value).unwrap_or_default());
    out.push('\n');
}

/// Escaped text of the segments, broken after each newline byte.
fn lines(segs: &[Seg<'_>]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for seg in segs {
        match seg {
            Seg::Mask(m) => cur.push_str(m),
            Seg::Plain(b) => {
                for piece in b.split_inclusive(|&c| c == b'\n') {
                    escape_into(&mut cur, piece);
                    if piece.ends_with(b"\n") {
                        lines.push(std::mem::take(&mut cur));
                    }
                }
            }
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Transcript {
        Transcript::new(Some("2026-01-01T00:00:00Z".into()), 1024)
    }

    #[test]
    fn masks_secret_split_across_chunks_and_notes() {
        let mut tr = t();
        tr.record(Dir::Rx, b"Password: hun");
        tr.record(Dir::Tx, b"x");
        tr.record(Dir::Rx, b"ter2\r\nok\r\n");
        tr.note("typed hunter2");
        tr.add_secret(b"hunter2", "pw");
        for r in [tr.render_text(), tr.render_jsonl()] {
            assert!(!r.contains("hun"), "{r}");
            assert!(!r.contains("ter2"), "{r}");
            assert_eq!(r.matches("‹secret:pw›").count(), 2, "{r}");
            assert!(r.contains("ok\\"), "{r}");
        }
    }

    #[test]
    fn masks_every_case_form_and_debug_shows_no_traffic() {
        let mut tr = t();
        tr.record(Dir::Tx, b"2A7438EDA0CD\r");
        tr.record(Dir::Rx, b"echo 2a7438EDA0cd\r\n");
        tr.add_secret(b"2a7438eda0cd", "pw");
        for r in [tr.render_text(), tr.render_jsonl()] {
            assert!(!r.to_ascii_lowercase().contains("2a7438eda0cd"), "{r}");
            assert_eq!(r.matches("‹secret:pw›").count(), 2, "{r}");
        }
        let shown = format!("{tr:?}");
        assert!(!shown.to_ascii_lowercase().contains("2a7438"), "{shown}");
        assert!(shown.contains("pw"), "{shown}");
    }

    #[test]
    fn masks_other_evidence_and_tells_what_reveals_a_secret() {
        let mut secrets = Secrets::default();
        secrets.add(b"hunter2", "pw");
        secrets.add(b"s3cret", "other");
        assert_eq!(
            secrets.mask_bytes(b"{\"p\":\"HUNTER2\",\"q\":\"S3cret\"}"),
            "{\"p\":\"‹secret:pw›\",\"q\":\"‹secret:other›\"}".as_bytes()
        );
        assert_eq!(Secrets::default().mask_bytes(b"plain"), b"plain");
        assert!(secrets.revealed_by(b"HUNTER2"));
        assert!(secrets.revealed_by(b"hunt"));
        assert!(!secrets.revealed_by(b"hun"));
        assert!(!secrets.revealed_by(b"unter2"));
    }

    #[test]
    fn text_lines_and_json() {
        let mut tr = t();
        tr.record(Dir::Tx, b"root\r");
        tr.record(Dir::Rx, b"a\nb");
        tr.record_secret("pw", 7);
        let text = tr.render_text();
        assert!(text.contains("# start: 2026-01-01T00:00:00Z"));
        assert!(text.contains("ms] > root\\r\n"), "{text}");
        assert!(text.contains("ms] < a\\n\n"), "{text}");
        assert!(text.contains("ms] < b\n"), "{text}");
        assert!(text.contains("ms] > ‹secret:pw›\n"), "{text}");
        let lines: Vec<serde_json::Value> = tr
            .render_jsonl()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["start"], "2026-01-01T00:00:00Z");
        assert_eq!(lines[1]["dir"], "tx");
        assert_eq!(lines[2]["data"], "a\\nb");
        assert!(lines[2]["t_us"].as_u64() >= lines[1]["t_us"].as_u64());
    }

    #[test]
    fn bounded_with_single_truncation_note() {
        let mut tr = t();
        for _ in 0..10 {
            tr.record(Dir::Rx, &[b'x'; 300]);
        }
        tr.record(Dir::Tx, b"late");
        tr.note("still noted");
        assert_eq!(tr.recorded_bytes(), 1024 + "still noted".len());
        assert_eq!(tr.truncated_bytes(), 3000 - 1024 + 4);
        let text = tr.render_text();
        assert_eq!(text.matches("truncated").count(), 1, "{text}");
        assert!(
            text.contains("truncated 1980 bytes (rx 1976, tx 4)"),
            "{text}"
        );
        assert!(text.contains("still noted"));
        assert!(!text.contains("late"));
    }
}
