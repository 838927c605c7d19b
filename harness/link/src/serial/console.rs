//! The expect session over a [`Port`]: send, expect, drain, with a transcript of everything.

use std::io;
use std::time::{Duration, Instant};

use regex::Regex;
use tracing::{debug, trace};

use super::escape::{escape_into, tail_chars};
use super::expect::{ExpectError, Match, describe, earliest, named_captures};
use super::port::{Port, is_closed};
use super::rxbuf::RxBuffer;
use super::transcript::{DEFAULT_TRANSCRIPT_LIMIT, Dir, Transcript};
use crate::{Cancel, LinkError};

/// Default bound on received, not yet consumed bytes.
pub const DEFAULT_MAX_BUFFER: usize = 64 * 1024;
const TAIL_CHARS: usize = 200;
const READ_CHUNK: usize = 16 * 1024;

/// Write delays for real UARTs whose firmware drops input typed too fast. Zero = no delay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pacing {
    /// After every byte.
    pub per_byte: Duration,
    /// After every `\r` or `\n`.
    pub per_line: Duration,
}

#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// Most received bytes kept for matching; older ones are discarded (and counted).
    pub max_buffer: usize,
    pub pacing: Pacing,
    /// Most bytes the transcript records; the rest is counted in one truncation note.
    pub transcript_limit: usize,
    /// Wall-clock start as RFC 3339 for the transcript header; `None` = now.
    pub start_time: Option<String>,
    /// When set, `expect` and `drain` give up within [`crate::cancel::POLL`] of cancellation.
    pub cancel: Option<Cancel>,
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        Self {
            max_buffer: DEFAULT_MAX_BUFFER,
            pacing: Pacing::default(),
            transcript_limit: DEFAULT_TRANSCRIPT_LIMIT,
            start_time: None,
            cancel: None,
        }
    }
}

enum Fill {
    Data,
    Quiet,
    Closed,
}

/// An expect session on a device console.
pub struct Console<P: Port> {
    port: P,
    pacing: Pacing,
    rx: RxBuffer,
    transcript: Transcript,
    closed: bool,
    scratch: Vec<u8>,
    cancel: Option<Cancel>,
}

impl<P: Port> Console<P> {
    pub fn new(port: P, opts: ConsoleOptions) -> Self {
        Self {
            port,
            pacing: opts.pacing,
            rx: RxBuffer::new(opts.max_buffer),
            transcript: Transcript::new(opts.start_time, opts.transcript_limit),
            closed: false,
            scratch: vec![0; READ_CHUNK.min(opts.max_buffer.max(1))],
            cancel: opts.cancel,
        }
    }

    /// Send bytes as they are; they appear in the transcript (masked if they hold a secret).
    pub fn send(&mut self, data: &[u8]) -> Result<(), LinkError> {
        debug!(bytes = data.len(), "tx");
        self.transcript.record(Dir::Tx, data);
        self.write(data)
    }

    /// Send a secret: the transcript shows `‹secret:label›`, and the secret is masked wherever
    /// the device echoes it.
    pub fn send_secret(&mut self, data: &[u8], label: &str) -> Result<(), LinkError> {
        debug!(label, "tx secret");
        self.transcript.add_secret(data, label);
        self.transcript.record_secret(label, data.len());
        self.write(data)
    }

    /// Mask `secret` in every rendering of the transcript, in `Match` texts and error tails.
    pub fn add_secret(&mut self, secret: &[u8], label: &str) {
        self.transcript.add_secret(secret, label);
    }

    /// A harness annotation in the transcript, e.g. "step 3: login".
    pub fn note(&mut self, text: &str) {
        self.transcript.note(text);
    }

    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    pub fn into_parts(self) -> (P, Transcript) {
        (self.port, self.transcript)
    }

    /// Received bytes not yet consumed by a match.
    pub fn buffered_len(&self) -> usize {
        self.rx.len()
    }

    /// Received bytes dropped unmatched because the buffer was full.
    pub fn discarded_bytes(&self) -> u64 {
        self.rx.discarded()
    }

    /// Whether the device end has gone away.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Wait for the first of `alts` (name, pattern) to match the received text, at most
    /// `timeout`. The alternative whose match ends earliest wins (ties: first listed); the
    /// buffer is consumed up to the end of the match.
    pub fn expect(
        &mut self,
        alts: &[(&str, &Regex)],
        timeout: Duration,
    ) -> Result<Match, ExpectError> {
        let started = Instant::now();
        let mut changed = true;
        let mut polled = false;
        loop {
            if changed && let Some(m) = self.try_match(alts, started) {
                debug!(alternative = %m.name, elapsed_ms = m.elapsed.as_millis() as u64, "matched");
                return Ok(m);
            }
            if self.closed {
                debug!("device closed during expect");
                return Err(ExpectError::Closed {
                    expected: describe(alts),
                    tail: self.tail(),
                });
            }
            if self.cancelled() {
                return Err(ExpectError::Cancelled {
                    expected: describe(alts),
                });
            }
            let left = timeout.saturating_sub(started.elapsed());
            // A zero timeout still takes what has already arrived.
            if left.is_zero() && polled {
                debug!(expected = %describe(alts), "expect timed out");
                return Err(ExpectError::Timeout {
                    waited: started.elapsed(),
                    expected: describe(alts),
                    tail: self.tail(),
                });
            }
            changed = matches!(self.fill(self.poll_slice(left))?, Fill::Data);
            polled = true;
        }
    }

    /// Read and discard until the line has been quiet for `quiet`, at most `max` (labgrid's
    /// settle). Everything read stays in the transcript.
    pub fn drain(&mut self, quiet: Duration, max: Duration) -> Result<(), LinkError> {
        let started = Instant::now();
        let mut last_rx = started;
        let result = loop {
            let quiet_left = quiet.saturating_sub(last_rx.elapsed());
            if quiet_left.is_zero() {
                break Ok(());
            }
            let max_left = max.saturating_sub(started.elapsed());
            if max_left.is_zero() {
                break Err(LinkError::Unsettled { quiet, max });
            }
            if self.cancelled() {
                break Err(LinkError::Cancelled);
            }
            match self.fill(self.poll_slice(quiet_left.min(max_left))) {
                Ok(Fill::Data) => last_rx = Instant::now(),
                Ok(Fill::Quiet) => {}
                Ok(Fill::Closed) => break Err(LinkError::Closed),
                Err(source) => break Err(LinkError::Io { op: "read", source }),
            }
        };
        self.rx.clear();
        result
    }

    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(Cancel::is_cancelled)
    }

    /// A wait is cut into poll-sized slices only when something may cancel it.
    fn poll_slice(&self, left: Duration) -> Duration {
        match self.cancel {
            Some(_) => left.min(crate::cancel::POLL),
            None => left,
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), LinkError> {
        let res = if self.pacing == Pacing::default() {
            self.port.write_all(data)
        } else {
            self.write_paced(data)
        };
        res.map_err(|e| {
            if is_closed(&e) {
                self.closed = true;
                LinkError::Closed
            } else {
                LinkError::Io {
                    op: "write",
                    source: e,
                }
            }
        })
    }

    fn write_paced(&mut self, data: &[u8]) -> io::Result<()> {
        let Pacing { per_byte, per_line } = self.pacing;
        let pieces: Vec<&[u8]> = if per_byte.is_zero() {
            data.split_inclusive(|&b| b == b'\r' || b == b'\n')
                .collect()
        } else {
            data.chunks(1).collect()
        };
        for piece in pieces {
            self.port.write_all(piece)?;
            std::thread::sleep(per_byte);
            if piece.ends_with(b"\r") || piece.ends_with(b"\n") {
                std::thread::sleep(per_line);
            }
        }
        Ok(())
    }

    /// Read what arrives within `timeout`, then whatever is already waiting (up to half the
    /// buffer), so a fast device is matched once per batch rather than once per read.
    fn fill(&mut self, timeout: Duration) -> io::Result<Fill> {
        if self.closed {
            return Ok(Fill::Closed);
        }
        let cap = (self.rx.max() / 2).max(1);
        let mut total = 0;
        let mut wait = timeout;
        while total < cap {
            match self.port.read_timeout(&mut self.scratch, wait) {
                Ok(0) => break,
                Ok(n) => {
                    let chunk = &self.scratch[..n.min(self.scratch.len())];
                    trace!(bytes = chunk.len(), "rx");
                    self.transcript.record(Dir::Rx, chunk);
                    self.rx.push(chunk);
                    total += n;
                    wait = Duration::ZERO;
                }
                Err(e) if is_closed(&e) => {
                    debug!(error = %e, "device closed the link");
                    self.closed = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted || total > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(if total > 0 {
            Fill::Data
        } else if self.closed {
            Fill::Closed
        } else {
            Fill::Quiet
        })
    }

    fn try_match(&mut self, alts: &[(&str, &Regex)], started: Instant) -> Option<Match> {
        let decoded = self.rx.decode();
        let (idx, caps) = earliest(&decoded.text, alts)?;
        let whole = caps.get(0)?;
        let (name, re) = alts.get(idx)?;
        let secrets = self.transcript.secrets();
        let captures = named_captures(re, &caps)
            .into_iter()
            .map(|(k, v)| (k, secrets.mask_str(&v)))
            .collect();
        let m = Match {
            name: name.to_string(),
            captures,
            before: secrets.mask_str(&decoded.text[..whole.start()]),
            matched: secrets.mask_str(whole.as_str()),
            elapsed: started.elapsed(),
        };
        let consumed = decoded.raw_offset(whole.end());
        self.rx.consume(consumed);
        Some(m)
    }

    /// The end of the unconsumed output, secrets masked, escaped.
    fn tail(&self) -> String {
        let bytes = self.rx.bytes();
        let secrets = self.transcript.secrets();
        let hits = secrets.hits(bytes);
        let mut from = bytes.len().saturating_sub(TAIL_CHARS * 4);
        if let Some(h) = hits.iter().find(|h| h.range.contains(&from)) {
            from = h.range.start;
        }
        let mut out = String::new();
        let mut at = from;
        for h in hits.iter().filter(|h| h.range.start >= from) {
            escape_into(&mut out, &bytes[at..h.range.start]);
            out.push_str(&secrets.marker(h.label));
            at = h.range.end;
        }
        escape_into(&mut out, &bytes[at..]);
        tail_chars(&out, TAIL_CHARS)
    }
}
