//! Fast tests of the expect engine on an in-memory port.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use regex::Regex;

use super::*;
use crate::LinkError;

/// Hands out scripted chunks one per read; empty = quiet for the timeout (capped), then EOF
/// if `eof` is set. Replies are queued when a write contains their trigger.
#[derive(Default)]
struct FakePort {
    chunks: VecDeque<Vec<u8>>,
    replies: Vec<(Vec<u8>, Vec<u8>)>,
    written: Vec<u8>,
    eof: bool,
}

impl FakePort {
    fn with(chunks: &[&[u8]]) -> Self {
        Self {
            chunks: chunks.iter().map(|c| c.to_vec()).collect(),
            ..Self::default()
        }
    }
}

impl Port for FakePort {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let Some(mut chunk) = self.chunks.pop_front() else {
            if self.eof {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            std::thread::sleep(timeout.min(Duration::from_millis(5)));
            return Ok(0);
        };
        let n = chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        if n < chunk.len() {
            self.chunks.push_front(chunk.split_off(n));
        }
        Ok(n)
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.written.extend_from_slice(data);
        for (trigger, reply) in &self.replies {
            if self
                .written
                .windows(trigger.len())
                .any(|w| w == trigger.as_slice())
            {
                self.chunks.push_back(reply.clone());
            }
        }
        self.replies
            .retain(|(t, _)| !self.written.windows(t.len()).any(|w| w == t.as_slice()));
        Ok(())
    }
}

fn console(port: FakePort) -> Console<FakePort> {
    Console::new(port, ConsoleOptions::default())
}

fn re(p: &str) -> Regex {
    Regex::new(p).unwrap()
}

const SHORT: Duration = Duration::from_millis(50);

#[test]
fn matches_across_reads_with_captures_and_consumes() {
    let mut c = console(FakePort::with(&[
        b"U-Boot 20",
        b"24.01 (Jan)\r\nlog",
        b"in: ",
    ]));
    let ver = re(r"U-Boot (?P<version>\d+\.\d+)");
    let m = c
        .expect(&[("uboot", &ver)], Duration::from_secs(2))
        .unwrap();
    assert_eq!(m.captures["version"], "2024.01");
    let login = re("login: ");
    let m = c
        .expect(&[("login", &login)], Duration::from_secs(2))
        .unwrap();
    assert_eq!(m.before, " (Jan)\r\n");
    assert_eq!(m.matched, "login: ");
    assert_eq!(c.buffered_len(), 0);
    // consumed text does not match again
    assert!(matches!(
        c.expect(&[("login", &login)], SHORT),
        Err(ExpectError::Timeout { .. })
    ));
}

#[test]
fn earliest_ending_alternative_wins() {
    let mut c = console(FakePort::with(&[b"Password: login: "]));
    let (login, pw) = (re("login: "), re("Password: "));
    let m = c
        .expect(&[("login", &login), ("password", &pw)], SHORT)
        .unwrap();
    assert_eq!(m.name, "password");
    let m = c
        .expect(&[("login", &login), ("password", &pw)], SHORT)
        .unwrap();
    assert_eq!(m.name, "login");
    assert_eq!(m.before, "");
}

#[test]
fn request_response_and_transcript() {
    let mut port = FakePort::default();
    port.replies
        .push((b"uname\r".to_vec(), b"uname\r\nLinux 6.1\r\n# ".to_vec()));
    let mut c = console(port);
    c.note("step 1: uname");
    c.send(b"uname\r").unwrap();
    let m = c
        .expect(&[("kernel", &re(r"Linux (?P<v>\S+)"))], SHORT)
        .unwrap();
    assert_eq!(m.captures["v"], "6.1");
    let text = c.transcript().render_text();
    assert!(text.contains("# step 1: uname"), "{text}");
    assert!(text.contains("> uname\\r"), "{text}");
    assert!(text.contains("< uname\\r\\n"), "{text}");
}

#[test]
fn timeout_names_the_alternatives_and_shows_the_tail() {
    let mut c = console(FakePort::with(&[b"boot noise\x1b[0m\r\n"]));
    let started = Instant::now();
    let err = c
        .expect(&[("shell", &re(r"# $"))], Duration::from_millis(100))
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(100));
    let text = err.to_string();
    assert!(text.contains("shell /# $/"), "{text}");
    assert!(text.contains("boot noise\\x1b[0m\\r\\n"), "{text}");
}

#[test]
fn closed_after_last_output() {
    let mut port = FakePort::with(&[b"bye\r\n"]);
    port.eof = true;
    let mut c = console(port);
    let m = c
        .expect(&[("bye", &re("bye"))], Duration::from_secs(5))
        .unwrap();
    assert_eq!(m.matched, "bye");
    let started = Instant::now();
    let err = c
        .expect(&[("more", &re("more"))], Duration::from_secs(5))
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(&err, ExpectError::Closed { tail, .. } if tail == "\\r\\n"),
        "{err}"
    );
    assert!(
        matches!(c.send(b"x"), Ok(())),
        "the fake accepts writes after EOF"
    );
}

#[test]
fn bounded_buffer_under_flood() {
    let mut chunks: Vec<Vec<u8>> = (0..200)
        .map(|i| vec![b'a' + (i % 26) as u8; 1000])
        .collect();
    chunks.push(b"MARK".to_vec());
    let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    let opts = ConsoleOptions {
        max_buffer: 4096,
        transcript_limit: 10_000,
        ..ConsoleOptions::default()
    };
    let mut c = Console::new(FakePort::with(&refs), opts);
    let m = c
        .expect(&[("mark", &re("MARK"))], Duration::from_secs(5))
        .unwrap();
    assert!(m.before.len() <= 4096);
    assert!(c.discarded_bytes() >= 200_000 - 4096);
    assert_eq!(c.transcript().recorded_bytes(), 10_000);
    assert_eq!(c.transcript().truncated_bytes(), 200_004 - 10_000);
}

#[test]
fn secrets_masked_in_match_tail_and_transcript() {
    let mut c = console(FakePort::with(&[
        b"Password: ",
        b"hun",
        b"ter2\r\n",
        b"Welcome s3cret\r\n# ",
        b"echo hunter2",
    ]));
    c.expect(&[("pw", &re("Password: "))], SHORT).unwrap();
    c.send_secret(b"hunter2", "root-pw").unwrap();
    c.add_secret(b"s3cret", "other");
    let m = c.expect(&[("shell", &re("# "))], SHORT).unwrap();
    assert_eq!(m.before, "‹secret:root-pw›\r\nWelcome ‹secret:other›\r\n");
    let err = c
        .expect(&[("never", &re("never"))], SHORT)
        .unwrap_err()
        .to_string();
    assert!(err.contains("echo ‹secret:root-pw›"), "{err}");
    let t = c.transcript();
    for r in [t.render_text(), t.render_jsonl()] {
        assert!(
            !r.contains("hun") && !r.contains("ter2") && !r.contains("s3cret"),
            "{r}"
        );
        assert_eq!(r.matches("‹secret:root-pw›").count(), 3, "{r}");
    }
    assert_eq!(c.into_parts().0.written, b"hunter2");
}

#[test]
fn drain_discards_until_quiet_or_gives_up() {
    let mut c = console(FakePort::with(&[b"noise", b"more noise"]));
    c.drain(Duration::from_millis(30), Duration::from_secs(2))
        .unwrap();
    assert_eq!(c.buffered_len(), 0);
    assert!(c.transcript().render_text().contains("more noise"));

    let chunks: Vec<&[u8]> = vec![b"x"; 10_000];
    let mut c = console(FakePort::with(&chunks));
    let err = c
        .drain(Duration::from_millis(50), Duration::from_millis(20))
        .unwrap_err();
    assert!(matches!(err, LinkError::Unsettled { .. }), "{err}");
}

#[test]
fn paced_writes_take_time_and_keep_bytes() {
    let opts = ConsoleOptions {
        pacing: Pacing {
            per_byte: Duration::from_millis(2),
            per_line: Duration::from_millis(20),
        },
        ..ConsoleOptions::default()
    };
    let mut c = Console::new(FakePort::default(), opts);
    let started = Instant::now();
    c.send(b"ab\rcd\r").unwrap();
    assert!(started.elapsed() >= Duration::from_millis(50));
    let (port, _) = c.into_parts();
    assert_eq!(port.written, b"ab\rcd\r");
}

#[test]
fn invalid_utf8_is_matched_lossily_and_consumed_exactly() {
    let mut c = console(FakePort::with(&[b"\xff\xfeOK\xe2\x82", b"\xac done"]));
    let m = c.expect(&[("ok", &re("OK"))], SHORT).unwrap();
    assert_eq!(m.before, "\u{fffd}\u{fffd}");
    let m = c
        .expect(&[("done", &re("(?P<sym>€) done"))], SHORT)
        .unwrap();
    assert_eq!(m.captures["sym"], "€");
    assert_eq!(c.buffered_len(), 0);
}

#[test]
fn zero_timeout_takes_what_already_arrived() {
    let mut c = console(FakePort::with(&[b"ready"]));
    let m = c
        .expect(&[("ready", &re("ready"))], Duration::ZERO)
        .unwrap();
    assert_eq!(m.name, "ready");
    assert!(matches!(
        c.expect(&[("ready", &re("ready"))], Duration::ZERO),
        Err(ExpectError::Timeout { .. })
    ));
}

#[test]
fn cancellation_ends_a_long_expect_and_drain_promptly() {
    let cancel = crate::Cancel::new();
    let mut c = Console::new(
        FakePort::default(),
        ConsoleOptions {
            cancel: Some(cancel.clone()),
            ..ConsoleOptions::default()
        },
    );
    let other = cancel.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        other.cancel(15);
    });
    let started = Instant::now();
    let prompt = re("login: $");
    let err = c.expect(&[("login", &prompt)], Duration::from_secs(60));
    assert!(matches!(err, Err(ExpectError::Cancelled { .. })), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let drained = c.drain(Duration::from_secs(30), Duration::from_secs(60));
    assert!(matches!(drained, Err(LinkError::Cancelled)), "{drained:?}");
    t.join().unwrap();
}

/// A port for the reattach tests: scripted reads, then end of file if `gone`; writes land in a
/// shared buffer, or fail as a vanished device's do.
struct Script {
    chunks: VecDeque<Vec<u8>>,
    gone: bool,
    written: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Script {
    fn new(chunks: &[&[u8]], gone: bool) -> Self {
        Self {
            chunks: chunks.iter().map(|c| c.to_vec()).collect(),
            gone,
            written: Default::default(),
        }
    }
}

impl Port for Script {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        match self.chunks.pop_front() {
            Some(chunk) => {
                let n = chunk.len().min(buf.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                Ok(n)
            }
            None if self.gone => Err(io::ErrorKind::UnexpectedEof.into()),
            None => {
                std::thread::sleep(timeout.min(Duration::from_millis(5)));
                Ok(0)
            }
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        if self.gone {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(data);
        Ok(())
    }
}

type Calls = std::sync::Arc<std::sync::atomic::AtomicUsize>;

/// A reattach whose device is back, as `back`, at the `after`-th call (never if `None`).
fn reattach_after(
    after: Option<usize>,
    mut back: Option<Script>,
    within: Duration,
) -> (Reattach, Calls) {
    let calls = Calls::default();
    let counted = calls.clone();
    let reopen = move || {
        let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if after.is_some_and(|a| n >= a)
            && let Some(port) = back.take()
        {
            return Ok(Some((
                std::path::PathBuf::from("/dev/ttyACM1"),
                Box::new(port) as Box<dyn Port>,
            )));
        }
        Ok(None)
    };
    (
        Reattach {
            within,
            reopen: Box::new(reopen),
        },
        calls,
    )
}

fn boxed(port: Script) -> Console<Box<dyn Port>> {
    Console::new(Box::new(port), ConsoleOptions::default())
}

fn calls(c: &Calls) -> usize {
    c.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn reattach_carries_an_expect_across_the_loss() {
    let mut c = boxed(Script::new(&[b"U-Boot 2024.01\r\n"], true));
    c.add_secret(b"hunter2", "pw");
    let back = Script::new(&[b"key hunter2\r\nlogin: "], false);
    let (r, n) = reattach_after(Some(3), Some(back), Duration::from_secs(5));
    c.set_reattach(r);
    let m = c
        .expect(
            &[("login", &re(r"U-Boot[\s\S]*login: "))],
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(m.name, "login");
    assert_eq!(calls(&n), 3);
    assert!(!c.is_closed() && !c.is_lost());
    let text = c.transcript().render_text();
    let lost = text.find("# link lost (").expect(&text);
    assert!(text[..lost].contains("< U-Boot 2024.01"), "{text}");
    assert!(
        text.contains("; waiting up to 5000 ms for the same device"),
        "{text}"
    );
    assert!(
        text.contains("# reattached at /dev/ttyACM1 after "),
        "{text}"
    );
    assert!(
        !text.contains("hunter2") && text.contains("key ‹secret:pw›"),
        "{text}"
    );
    assert!(m.matched.contains("‹secret:pw›"), "{}", m.matched);
}

#[test]
fn out_of_time_when_the_device_returns_takes_one_look_then_times_out() {
    let short = Duration::from_millis(10);
    // The device is back only after several polls, past the expect's timeout.
    let mut c = boxed(Script::new(&[], true));
    let (r, n) = reattach_after(
        Some(4),
        Some(Script::new(&[b"login: "], false)),
        Duration::from_secs(5),
    );
    c.set_reattach(r);
    let m = c.expect(&[("login", &re("login: "))], short).unwrap();
    assert!(m.elapsed > short);
    assert_eq!(calls(&n), 4);

    let mut c = boxed(Script::new(&[], true));
    let (r, _) = reattach_after(
        Some(4),
        Some(Script::new(&[], false)),
        Duration::from_secs(5),
    );
    c.set_reattach(r);
    let err = c.expect(&[("login", &re("login: "))], short).unwrap_err();
    assert!(matches!(err, ExpectError::Timeout { .. }), "{err}");
    assert!(!c.is_closed());
    c.send(b"x").unwrap();
}

#[test]
fn not_back_within_the_time_closes_once() {
    let mut c = boxed(Script::new(&[], true));
    let (r, n) = reattach_after(None, None, Duration::from_millis(200));
    c.set_reattach(r);
    let err = c
        .expect(&[("login", &re("login: "))], Duration::from_secs(30))
        .unwrap_err();
    assert!(matches!(err, ExpectError::Closed { .. }), "{err}");
    assert!(calls(&n) >= 2, "{}", calls(&n));
    assert!(c.is_closed());
    let tried = calls(&n);
    // Closed for good: no second wait.
    assert!(matches!(c.send(b"x"), Err(LinkError::Closed)));
    assert!(matches!(
        c.expect(&[("login", &re("login: "))], Duration::from_secs(30)),
        Err(ExpectError::Closed { .. })
    ));
    assert_eq!(calls(&n), tried);
    let text = c.transcript().render_text();
    assert!(
        text.contains("# the device did not return within 200 ms"),
        "{text}"
    );
    assert_eq!(text.matches("link lost").count(), 1, "{text}");
}

#[test]
fn giving_up_closes_at_once() {
    let mut c = boxed(Script::new(&[], true));
    c.set_reattach(Reattach {
        within: Duration::from_secs(60),
        reopen: Box::new(|| Err("two devices are this one".into())),
    });
    let started = Instant::now();
    let err = c.drain(Duration::from_secs(1), Duration::from_secs(60));
    assert!(matches!(err, Err(LinkError::Closed)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = c.transcript().render_text();
    assert!(
        text.contains("# stopped waiting for the device after ")
            && text.contains(" ms: two devices are this one"),
        "{text}"
    );
}

#[test]
fn a_send_that_finds_the_device_gone_goes_to_the_returned_one() {
    let mut c = boxed(Script::new(&[], true));
    let back = Script::new(&[], false);
    let written = back.written.clone();
    let (r, _) = reattach_after(Some(2), Some(back), Duration::from_secs(5));
    c.set_reattach(r);
    c.send(b"reboot\r").unwrap();
    assert_eq!(*written.lock().unwrap(), b"reboot\r");
    let text = c.transcript().render_text();
    assert_eq!(text.matches("> reboot\\r").count(), 1, "{text}");
    assert!(
        text.contains("# sending the 7 bytes again after reattaching"),
        "{text}"
    );
    // Without a reattach, a lost link is closed as before.
    assert!(c.clear_reattach().is_some());
}

#[test]
fn cancellation_ends_the_wait_for_the_device() {
    let cancel = crate::Cancel::new();
    let mut c: Console<Box<dyn Port>> = Console::new(
        Box::new(Script::new(&[], true)),
        ConsoleOptions {
            cancel: Some(cancel.clone()),
            ..ConsoleOptions::default()
        },
    );
    let (r, _) = reattach_after(None, None, Duration::from_secs(600));
    c.set_reattach(r);
    let other = cancel.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        other.cancel(2);
    });
    let started = Instant::now();
    let err = c.expect(&[("login", &re("login: "))], Duration::from_secs(600));
    assert!(matches!(err, Err(ExpectError::Cancelled { .. })), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(c.is_lost() && !c.is_closed());
    assert!(matches!(c.send(b"x"), Err(LinkError::Cancelled)));
    let text = c.transcript().render_text();
    assert!(
        text.contains("# interrupted while waiting for the device, after "),
        "{text}"
    );
    // Said once, however many operations find it still interrupted.
    assert_eq!(text.matches("link lost").count(), 1, "{text}");
    assert_eq!(text.matches("interrupted").count(), 1, "{text}");
    t.join().unwrap();
}
