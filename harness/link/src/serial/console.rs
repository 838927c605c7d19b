//! The expect session over a [`Port`]: send, expect, drain, with a transcript of everything.
//!
//! With a [`Reattach`] set, a link whose device end went away (read EOF, write broken pipe) is
//! reopened when the device comes back, and the session goes on: see [`Console::set_reattach`].

use std::io;
use std::time::{Duration, Instant};

use regex::Regex;
use tracing::{debug, info, trace, warn};

use super::escape::{escape_into, tail_chars};
use super::expect::{ExpectError, Match, describe, earliest, named_captures};
use super::port::{Port, is_closed};
use super::reattach::{Gone, Reattach};
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
    /// The link was lost and is back on a new port; nothing read from it yet.
    Reattached,
}

/// How a wait for the device to return ended.
enum Return {
    Back,
    Gone,
    Interrupted,
}

/// A lost link: why, and whether the transcript already says so.
struct Lost {
    why: String,
    announced: bool,
}

/// A [`Reattach`] and how to make this console's port type from the port it yields.
struct Armed<P> {
    reattach: Reattach,
    into_port: fn(Box<dyn Port>) -> P,
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
    armed: Option<Armed<P>>,
    /// The link went away; it is reopened at the next read or write.
    lost: Option<Lost>,
}

impl<P: Port + From<Box<dyn Port>>> Console<P> {
    /// Survive the device going away and coming back (a USB device re-enumerating), e.g. with
    /// [`Reattach::usb`]. Available when the console's port type can hold any port, as
    /// `Console<Box<dyn Port>>` does.
    ///
    /// When the port says the device end went away (read end of file, write broken pipe), the
    /// old port is closed and, at that read or write, `reopen` is called about every 50 ms until
    /// it gives a port, `within` has passed, it gives up, or the console's [`Cancel`] is set.
    /// The transcript notes each step: "link lost (...); waiting up to N ms for the same
    /// device", then "reattached at PATH after N ms", "the device did not return within N ms",
    /// "stopped waiting ...: why" or "interrupted while waiting ...".
    ///
    /// Back: the session goes on with the new port. Bytes received before the loss stay
    /// buffered, so a pattern can span it; registered secrets stay masked. An `expect` in
    /// progress keeps waiting for its pattern within its own timeout, which the wait for the
    /// device counts towards but never cuts short: a link left half-recovered would fail every
    /// later step. So an `expect` can overrun its timeout by up to `within`; if its time is up
    /// when the device is back, it takes one look at what has already arrived and otherwise ends
    /// [`ExpectError::Timeout`] (not `Closed`: the link is back and usable). A `send` that found
    /// the device gone sends all its bytes again to the returned device. A `drain` starts a new
    /// quiet period.
    ///
    /// Not back: the console is closed as without a `Reattach`: `expect` ends
    /// [`ExpectError::Closed`], `send` and `drain` [`LinkError::Closed`], and it stays closed.
    /// Interrupted: the operation ends `Cancelled` and the link stays lost; the next read or
    /// write waits for it again.
    pub fn set_reattach(&mut self, reattach: Reattach) {
        self.armed = Some(Armed {
            reattach,
            into_port: P::from,
        });
    }
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
            armed: None,
            lost: None,
        }
    }

    /// Stop reattaching: a lost link closes the console again. Returns the [`Reattach`] that was set.
    pub fn clear_reattach(&mut self) -> Option<Reattach> {
        self.armed.take().map(|a| a.reattach)
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

    /// Whether the device end has gone away for good (with a [`Reattach`] set: and did not return).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether the link is lost and waits to be reattached at the next read or write.
    pub fn is_lost(&self) -> bool {
        self.lost.is_some()
    }

    /// Wait for the first of `alts` (name, pattern) to match the received text, at most
    /// `timeout`. The alternative whose match ends earliest wins (ties: first listed); the
    /// buffer is consumed up to the end of the match.
    ///
    /// If the link is lost and a [`Reattach`] is set, the wait for the device to return counts
    /// towards `timeout` but is not cut short by it (see [`Console::set_reattach`]).
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
            match self.fill(self.poll_slice(left))? {
                Fill::Data => (changed, polled) = (true, true),
                // Even out of time, take one look at what the returned device has already said.
                Fill::Reattached => (changed, polled) = (false, false),
                Fill::Quiet | Fill::Closed => (changed, polled) = (false, true),
            }
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
                // A returned device starts a new quiet period.
                Ok(Fill::Data | Fill::Reattached) => last_rx = Instant::now(),
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
        if self.lost.is_some() {
            self.reattach_or_err()?;
        }
        match self.write_once(data) {
            Err(LinkError::Closed) if self.lost.is_some() => {
                // The device received none of it (or a part, before it went): the returned one
                // gets all of it.
                self.reattach_or_err()?;
                self.transcript.note(&format!(
                    "sending the {} bytes again after reattaching",
                    data.len()
                ));
                self.write_once(data)
            }
            other => other,
        }
    }

    fn reattach_or_err(&mut self) -> Result<(), LinkError> {
        match self.reattach() {
            Return::Back => Ok(()),
            Return::Gone => Err(LinkError::Closed),
            Return::Interrupted => Err(LinkError::Cancelled),
        }
    }

    fn write_once(&mut self, data: &[u8]) -> Result<(), LinkError> {
        let res = if self.pacing == Pacing::default() {
            self.port.write_all(data)
        } else {
            self.write_paced(data)
        };
        res.map_err(|e| {
            if is_closed(&e) {
                self.link_gone(&e);
                LinkError::Closed
            } else {
                LinkError::Io {
                    op: "write",
                    source: e,
                }
            }
        })
    }

    /// The port said the device end went away: closed for good, or lost until reattached.
    fn link_gone(&mut self, e: &io::Error) {
        match &self.armed {
            Some(armed) if !self.closed => {
                // Let go of the dead tty now rather than when the device is back.
                self.port = (armed.into_port)(Box::new(Gone));
                self.lost = Some(Lost {
                    why: e.to_string(),
                    announced: false,
                });
            }
            _ => self.closed = true,
        }
    }

    /// Wait for the lost link to come back, as the [`Reattach`] says, noting it in the transcript.
    fn reattach(&mut self) -> Return {
        let Some(armed) = self.armed.as_mut() else {
            self.lost = None;
            self.closed = true;
            return Return::Gone;
        };
        let within = armed.reattach.within;
        let ms = within.as_millis();
        let cancelled = self.cancel.as_ref().is_some_and(Cancel::is_cancelled);
        match self.lost.as_mut() {
            // Already said, and still interrupted: nothing new for the transcript.
            Some(lost) if lost.announced && cancelled => return Return::Interrupted,
            Some(lost) if lost.announced => self
                .transcript
                .note(&format!("waiting again up to {ms} ms for the same device")),
            Some(lost) => {
                lost.announced = true;
                let why = &lost.why;
                // A reset re-enumerates a native-USB console: expected, so not a warning.
                info!(
                    reason = %why,
                    within_ms = ms as u64,
                    "link lost; waiting for the device"
                );
                self.transcript.note(&format!(
                    "link lost ({why}); waiting up to {ms} ms for the same device"
                ));
            }
            None => {}
        }
        let started = Instant::now();
        loop {
            if self.cancel.as_ref().is_some_and(Cancel::is_cancelled) {
                self.transcript.note(&format!(
                    "interrupted while waiting for the device, after {} ms",
                    started.elapsed().as_millis()
                ));
                return Return::Interrupted;
            }
            match (armed.reattach.reopen)() {
                Ok(Some((path, port))) => {
                    self.port = (armed.into_port)(port);
                    self.lost = None;
                    let after = started.elapsed().as_millis();
                    info!(path = %path.display(), after_ms = after as u64, "reattached");
                    self.transcript.note(&format!(
                        "reattached at {} after {after} ms",
                        path.display()
                    ));
                    return Return::Back;
                }
                Ok(None) => {}
                Err(why) => {
                    self.transcript.note(&format!(
                        "stopped waiting for the device after {} ms: {why}",
                        started.elapsed().as_millis()
                    ));
                    self.lost = None;
                    self.closed = true;
                    return Return::Gone;
                }
            }
            let left = within.saturating_sub(started.elapsed());
            if left.is_zero() {
                warn!(within_ms = ms as u64, "the device did not return");
                self.transcript
                    .note(&format!("the device did not return within {ms} ms"));
                self.lost = None;
                self.closed = true;
                return Return::Gone;
            }
            let pause = left.min(crate::cancel::POLL);
            match &self.cancel {
                Some(c) => {
                    c.sleep(pause);
                }
                None => std::thread::sleep(pause),
            }
        }
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
        if self.lost.is_some() {
            return Ok(self.fill_reattach());
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
                    self.link_gone(&e);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted || total > 0 => break,
                Err(e) => return Err(e),
            }
        }
        // What arrived before the loss is matched first; the next fill reattaches.
        Ok(if total > 0 {
            Fill::Data
        } else if self.lost.is_some() {
            self.fill_reattach()
        } else if self.closed {
            Fill::Closed
        } else {
            Fill::Quiet
        })
    }

    fn fill_reattach(&mut self) -> Fill {
        match self.reattach() {
            Return::Back => Fill::Reattached,
            Return::Gone => Fill::Closed,
            // The caller sees the cancellation and says so.
            Return::Interrupted => Fill::Quiet,
        }
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
