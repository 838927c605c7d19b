//! Serial over the network: `NetPort` under the expect engine, against RFC 2217 and raw TCP servers
//! written here (negotiation, IAC both ways, commands split across reads, refusals, silence,
//! hang-ups) and against Debian's real `ser2net` serving a pseudo-terminal that the test plays the
//! device on: the baud rate hilt asks for must reach the tty, and every byte value must survive both
//! ways.
//!
//! Where `ser2net` is missing its trials report *ignored* with the reason, never passed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hilt_link::{
    Console, ConsoleOptions, ExpectError, FlowControl, LineSettings, LinkError, NetPort,
    NetTrouble, Parity, Port, StopBits,
};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::sys::termios::{BaudRate, ControlFlags, cfgetospeed, tcgetattr};
use nix::unistd::Pid;
use regex::Regex;

const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const NOP: u8 = 241;
const SE: u8 = 240;
const BINARY: u8 = 0;
const ECHO: u8 = 1;
const SGA: u8 = 3;
const TTYPE: u8 = 24;
const NAWS: u8 = 31;
const COM_PORT: u8 = 44;

/// Generous bounds: these tests must not flake on a loaded machine.
const WITHIN: Duration = Duration::from_secs(10);
const MISSING: &str = "ser2net not installed (apt-get install ser2net)";

/// A trial that needs nothing beyond this process.
type Run = fn() -> Result<(), Failed>;

fn main() {
    let args = Arguments::from_args();
    let plain: [(&str, Run); 11] = [
        (
            "rfc2217_negotiates_the_line_and_refuses_unknown_options",
            rfc2217_negotiation,
        ),
        (
            "rfc2217_console_iac_both_ways_and_split_commands",
            rfc2217_console,
        ),
        ("rfc2217_refused_com_port_is_a_clear_error", rfc2217_refused),
        (
            "rfc2217_other_baud_than_asked_is_refused",
            rfc2217_wrong_baud,
        ),
        ("rfc2217_silent_server_times_out", rfc2217_silent),
        ("rfc2217_unacknowledged_settings_time_out", rfc2217_no_acks),
        (
            "rfc2217_hang_up_during_setup_is_unreachable",
            rfc2217_hang_up_during_setup,
        ),
        (
            "rfc2217_hang_up_mid_session_closes_the_console",
            rfc2217_hang_up_later,
        ),
        (
            "rfc2217_endless_subnegotiation_is_a_protocol_error",
            rfc2217_flood,
        ),
        ("raw_tcp_console_and_every_byte", raw_echo),
        (
            "refused_connection_is_unreachable_and_names_the_address",
            refused_connection,
        ),
    ];
    let mut trials: Vec<Trial> = plain
        .into_iter()
        .map(|(name, run)| Trial::test(name, run))
        .collect();
    trials.extend([
        Trial::ignorable_test("ser2net_rfc2217_console_baud_and_every_byte", || {
            ser2net_trial(Accepter::Rfc2217)
        }),
        Trial::ignorable_test("ser2net_raw_tcp_console_and_every_byte", || {
            ser2net_trial(Accepter::Raw)
        }),
        Trial::ignorable_test("ser2net_line_settings_reach_the_tty", ser2net_settings),
        Trial::ignorable_test(
            "ser2net_without_its_device_hangs_up_and_is_unreachable",
            ser2net_no_device,
        ),
    ]);
    libtest_mimic::run(&args, trials).exit();
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), Failed> {
    if ok { Ok(()) } else { Err(what().into()) }
}

fn re(p: &str) -> Regex {
    Regex::new(p).expect("regex")
}

fn all_bytes() -> Vec<u8> {
    (0..=255u8).collect()
}

/// Read exactly `n` bytes from a port within `WITHIN`.
fn read_n(port: &mut impl Port, n: usize) -> Result<Vec<u8>, Failed> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let until = Instant::now() + WITHIN;
    while got.len() < n {
        check(Instant::now() < until, || {
            format!("only {} of {n} bytes arrived: {got:02x?}", got.len())
        })?;
        let k = port
            .read_timeout(
                &mut buf[..(n - got.len()).min(512)],
                Duration::from_millis(200),
            )
            .map_err(|e| format!("read after {} bytes: {e}", got.len()))?;
        got.extend_from_slice(&buf[..k]);
    }
    Ok(got)
}

// ---- an RFC 2217 server written here ----

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    /// Negotiates like ser2net, asks for options the client does not support, acknowledges every
    /// setting, echoes data with notifications in between, and splits commands across writes.
    Serve,
    /// Answers WILL COM-PORT-OPTION with DONT.
    RefuseComPort,
    /// Acknowledges SET-BAUDRATE with another rate.
    WrongBaud,
    /// Never writes a byte.
    Silent,
    /// Agrees to COM-PORT-OPTION, never acknowledges a setting.
    NoAcks,
    /// Agrees to COM-PORT-OPTION, then says why it cannot serve and hangs up (as ser2net does
    /// without its device).
    HangUp,
    /// Serves, echoes the first data it gets, then hangs up.
    HangUpLater,
    /// Serves, then starts a subnegotiation that never ends.
    Flood,
}

/// What the server saw from the client.
#[derive(Debug, Default)]
struct Seen {
    negotiations: Vec<(u8, u8)>,
    /// COM-PORT-OPTION commands by code, value un-escaped.
    commands: BTreeMap<u8, Vec<u8>>,
    data: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq)]
enum St {
    Data,
    Iac,
    Verb(u8),
    Sb,
    SbIac,
}

enum Ev {
    Data(u8),
    Neg(u8, u8),
    /// Option and payload.
    Sub(Vec<u8>),
}

/// The server's own decoder of the client's stream (independent of the one under test).
struct Parser {
    st: St,
    sb: Vec<u8>,
}

impl Parser {
    fn feed(&mut self, b: u8) -> Option<Ev> {
        let (st, ev) = match (self.st, b) {
            (St::Data, IAC) => (St::Iac, None),
            (St::Data, b) => (St::Data, Some(Ev::Data(b))),
            (St::Iac, IAC) => (St::Data, Some(Ev::Data(IAC))),
            (St::Iac, WILL..=DONT) => (St::Verb(b), None),
            (St::Iac, SB) => {
                self.sb.clear();
                (St::Sb, None)
            }
            (St::Iac, _) => (St::Data, None),
            (St::Verb(v), o) => (St::Data, Some(Ev::Neg(v, o))),
            (St::Sb, IAC) => (St::SbIac, None),
            (St::Sb, b) => {
                self.sb.push(b);
                (St::Sb, None)
            }
            (St::SbIac, IAC) => {
                self.sb.push(IAC);
                (St::Sb, None)
            }
            (St::SbIac, _) => (St::Data, Some(Ev::Sub(std::mem::take(&mut self.sb)))),
        };
        self.st = st;
        ev
    }
}

fn escaped(data: &[u8]) -> Vec<u8> {
    data.iter()
        .flat_map(|&b| if b == IAC { vec![IAC, IAC] } else { vec![b] })
        .collect()
}

/// Writes in pieces with a pause between, so the client reads a command in parts.
struct Out(TcpStream);

impl Out {
    fn pieces(&mut self, pieces: &[&[u8]]) -> io::Result<()> {
        for (k, p) in pieces.iter().enumerate() {
            if k > 0 {
                thread::sleep(Duration::from_millis(15));
            }
            self.0.write_all(p)?;
        }
        Ok(())
    }
}

fn accept(listener: &TcpListener) -> io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let until = Instant::now() + WITHIN;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)?;
                return Ok(s);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < until => {
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Start a server; its thread ends when the client goes away (or after `WITHIN` of silence from it).
fn server(mode: Mode) -> (String, JoinHandle<io::Result<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let handle = thread::spawn(move || serve(&listener, mode));
    (addr, handle)
}

fn serve(listener: &TcpListener, mode: Mode) -> io::Result<Seen> {
    let mut seen = Seen::default();
    match serve_on(listener, mode, &mut seen) {
        // The client may leave while the last pieces are still being written.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ) =>
        {
            Ok(seen)
        }
        Err(e) => Err(e),
        Ok(()) => Ok(seen),
    }
}

fn serve_on(listener: &TcpListener, mode: Mode, seen: &mut Seen) -> io::Result<()> {
    let stream = accept(listener)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut input = stream.try_clone()?;
    let mut out = Out(stream);
    if mode != Mode::Silent {
        // ser2net's opening, plus requests for options a serial client has no use for.
        out.pieces(&[
            &[IAC, WILL, SGA, IAC],
            &[DO, SGA, IAC, WILL],
            &[ECHO, IAC, DO, TTYPE, IAC, DO, NAWS],
            &[IAC, DO, BINARY, IAC, WILL, BINARY],
        ])?;
    }
    let mut parser = Parser {
        st: St::Data,
        sb: Vec::new(),
    };
    let mut buf = [0u8; 4096];
    let mut last = Instant::now();
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if last.elapsed() > WITHIN {
                    return Ok(());
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
            Err(e) => return Err(e),
        };
        last = Instant::now();
        let mut echo = Vec::new();
        for &b in &buf[..n] {
            match parser.feed(b) {
                None => {}
                Some(Ev::Data(b)) => {
                    seen.data.push(b);
                    echo.push(b);
                }
                Some(Ev::Neg(v, o)) => {
                    seen.negotiations.push((v, o));
                    if mode == Mode::Silent {
                        continue;
                    }
                    match (v, o) {
                        (WILL, COM_PORT) if mode == Mode::RefuseComPort => {
                            out.pieces(&[&[IAC, DONT], &[COM_PORT]])?
                        }
                        (WILL, COM_PORT) => {
                            out.0.write_all(&[IAC, DO, COM_PORT])?;
                            if mode == Mode::HangUp {
                                out.0
                                    .write_all(b"Device open failure: no such device\r\n")?;
                                return Ok(());
                            }
                            // A modem-state notification before any setting, as ser2net sends.
                            out.pieces(&[&[IAC, SB, COM_PORT], &[107, 0x30, IAC], &[SE]])?;
                        }
                        // Already asked for by us: the client's request crosses ours.
                        (WILL | DO, BINARY | SGA) => {}
                        (WILL, o) => out.0.write_all(&[IAC, DONT, o])?,
                        (DO, o) => out.0.write_all(&[IAC, WONT, o])?,
                        _ => {}
                    }
                }
                Some(Ev::Sub(sub)) => {
                    let (Some(&COM_PORT), Some(&code)) = (sub.first(), sub.get(1)) else {
                        continue;
                    };
                    let value = sub[2..].to_vec();
                    seen.commands.insert(code, value.clone());
                    if matches!(mode, Mode::Silent | Mode::NoAcks) {
                        continue;
                    }
                    let value = if mode == Mode::WrongBaud && code == 1 {
                        9600u32.to_be_bytes().to_vec()
                    } else {
                        value
                    };
                    let mut ack = vec![IAC, SB, COM_PORT, code + 100];
                    ack.extend(escaped(&value));
                    ack.extend([IAC, SE]);
                    // Split in the middle of the command.
                    let (a, b) = ack.split_at(ack.len() / 2);
                    out.pieces(&[a, b])?;
                }
            }
        }
        if echo.is_empty() {
            continue;
        }
        match mode {
            Mode::Flood => {
                out.0.write_all(&[IAC, SB, COM_PORT, 106])?;
                // Far past the client's bound, never ended; the write may fail once it gives up.
                let _ = out.0.write_all(&vec![1u8; 64 * 1024]);
                continue;
            }
            Mode::HangUpLater => {
                out.0.write_all(&escaped(&echo))?;
                return Ok(());
            }
            _ => {}
        }
        // Echo with an IAC IAC pair split across writes, then a notification and a NOP, split.
        let mut pieces: Vec<Vec<u8>> = vec![Vec::new()];
        for b in echo {
            if b == IAC {
                pieces.last_mut().expect("one").push(IAC);
                pieces.push(vec![IAC]);
            } else {
                pieces.last_mut().expect("one").push(b);
            }
        }
        pieces.push(vec![IAC, SB, COM_PORT]);
        pieces.push(vec![106, 0x60, IAC]);
        pieces.push(vec![SE, IAC]);
        pieces.push(vec![NOP]);
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        out.pieces(&refs)?;
    }
}

fn join(handle: JoinHandle<io::Result<Seen>>) -> Result<Seen, Failed> {
    handle
        .join()
        .map_err(|_| "the server thread panicked")?
        .map_err(|e| format!("server: {e}").into())
}

fn net_trouble(e: &LinkError) -> Option<NetTrouble> {
    match e {
        LinkError::Net { trouble, .. } => Some(*trouble),
        _ => None,
    }
}

fn rfc2217_negotiation() -> Result<(), Failed> {
    let (addr, handle) = server(Mode::Serve);
    // 0x0001ff00: a rate with an IAC byte, escaped in the subnegotiation both ways.
    let settings = LineSettings {
        baud: 0x0001_ff00,
        data_bits: 7,
        parity: Parity::Even,
        stop_bits: StopBits::Two,
        flow: FlowControl::RtsCts,
    };
    let mut port = NetPort::rfc2217(&addr, settings, WITHIN)?;
    check(port.describe() == format!("rfc2217 {addr}"), || {
        port.describe()
    })?;
    check(port.modem_state() == Some(0x30), || {
        format!("modem state {:?}", port.modem_state())
    })?;
    // Answers owed to the server go out with the next read.
    let mut buf = [0u8; 16];
    port.read_timeout(&mut buf, Duration::from_millis(200))?;
    drop(port);
    let seen = join(handle)?;

    let want: BTreeMap<u8, Vec<u8>> = [
        (1, 0x0001_ff00u32.to_be_bytes().to_vec()),
        (2, vec![7]),
        (3, vec![3]),
        (4, vec![2]),
        (5, vec![3]),
    ]
    .into();
    check(seen.commands == want, || {
        format!("settings sent: {:?}", seen.commands)
    })?;
    for expected in [
        (WILL, BINARY),
        (DO, BINARY),
        (WILL, SGA),
        (DO, SGA),
        (WILL, COM_PORT),
        (DONT, ECHO),
        (WONT, TTYPE),
        (WONT, NAWS),
    ] {
        let times = seen.negotiations.iter().filter(|n| **n == expected).count();
        check(times == 1, || {
            format!("{expected:?} sent {times} times: {:?}", seen.negotiations)
        })?;
    }
    check(seen.data.is_empty(), || format!("data {:?}", seen.data))
}

fn rfc2217_console() -> Result<(), Failed> {
    let (addr, handle) = server(Mode::Serve);
    let port = NetPort::rfc2217(&addr, LineSettings::new(115_200), WITHIN)?;
    let mut c = Console::new(port, ConsoleOptions::default());
    let mut sent = Vec::new();
    for line in ["version\r", "a\r\0b\r\n"] {
        c.send(line.as_bytes())?;
        sent.extend_from_slice(line.as_bytes());
        let m = c.expect(&[("echo", &re(&regex::escape(line)))], WITHIN)?;
        check(m.before.is_empty(), || format!("before {:?}", m.before))?;
    }
    // A secret: sent and echoed, masked in the transcript either way.
    c.send_secret(b"s3cret-pw\r", "password")?;
    sent.extend_from_slice(b"s3cret-pw\r");
    c.expect(&[("echo", &re("pw\r"))], WITHIN)?;
    let text = c.transcript().render_text();
    check(!text.contains("s3cret"), || text.clone())?;
    check(text.contains("password"), || text.clone())?;
    check(text.contains("> version\\r"), || text.clone())?;

    let (mut port, _) = c.into_parts();
    let bytes = all_bytes();
    port.write_all(&bytes)?;
    sent.extend_from_slice(&bytes);
    let back = read_n(&mut port, bytes.len())?;
    check(back == bytes, || format!("echoed {back:02x?}"))?;
    check(port.line_state() == Some(0x60), || {
        format!("line state {:?}", port.line_state())
    })?;
    drop(port);
    let seen = join(handle)?;
    // Binary mode: nothing added (no NUL after CR), IAC un-doubled.
    check(seen.data == sent, || {
        format!("the server got {:02x?}", seen.data)
    })
}

fn rfc2217_refused() -> Result<(), Failed> {
    let (addr, handle) = server(Mode::RefuseComPort);
    let err = NetPort::rfc2217(&addr, LineSettings::default(), WITHIN)
        .err()
        .ok_or("connected to a server refusing COM-PORT-OPTION")?;
    let text = err.to_string();
    check(net_trouble(&err) == Some(NetTrouble::Refused), || {
        text.clone()
    })?;
    check(
        text.contains("COM-PORT-OPTION") && text.contains(&addr) && !err.is_unreachable(),
        || text.clone(),
    )?;
    join(handle)?;
    Ok(())
}

fn rfc2217_wrong_baud() -> Result<(), Failed> {
    let (addr, handle) = server(Mode::WrongBaud);
    let err = NetPort::rfc2217(&addr, LineSettings::new(57_600), WITHIN)
        .err()
        .ok_or("accepted a server that set another baud rate")?;
    let text = err.to_string();
    check(net_trouble(&err) == Some(NetTrouble::Refused), || {
        text.clone()
    })?;
    check(text.contains("9600") && text.contains("57600"), || {
        text.clone()
    })?;
    join(handle)?;
    Ok(())
}

fn rfc2217_silent() -> Result<(), Failed> {
    let (addr, handle) = server(Mode::Silent);
    let started = Instant::now();
    let timeout = Duration::from_secs(1);
    let err = NetPort::rfc2217(&addr, LineSettings::default(), timeout)
        .err()
        .ok_or("connected to a silent server")?;
    let took = started.elapsed();
    let text = err.to_string();
    check(net_trouble(&err) == Some(NetTrouble::NoAnswer), || {
        text.clone()
    })?;
    check(text.contains("no answer to WILL COM-PORT-OPTION"), || {
        text.clone()
    })?;
    check(took >= timeout && took < timeout + WITHIN, || {
        format!("{took:?}")
    })?;
    let seen = join(handle)?;
    // It did ask.
    check(seen.negotiations.contains(&(WILL, COM_PORT)), || {
        format!("{:?}", seen.negotiations)
    })
}

fn rfc2217_no_acks() -> Result<(), Failed> {
    let (addr, handle) = server(Mode::NoAcks);
    let started = Instant::now();
    let timeout = Duration::from_secs(1);
    let err = NetPort::rfc2217(&addr, LineSettings::default(), timeout)
        .err()
        .ok_or("connected without acknowledgements")?;
    let took = started.elapsed();
    let text = err.to_string();
    check(net_trouble(&err) == Some(NetTrouble::NoAnswer), || {
        text.clone()
    })?;
    check(
        text.contains("no acknowledgement of SET-BAUDRATE, SET-DATASIZE, SET-PARITY")
            && !err.is_unreachable(),
        || text.clone(),
    )?;
    check(took >= timeout && took < timeout + WITHIN, || {
        format!("{took:?}")
    })?;
    let seen = join(handle)?;
    check(seen.commands.len() == 5, || format!("{:?}", seen.commands))
}

fn rfc2217_hang_up_during_setup() -> Result<(), Failed> {
    let (addr, handle) = server(Mode::HangUp);
    let err = NetPort::rfc2217(&addr, LineSettings::default(), WITHIN)
        .err()
        .ok_or("connected to a server that hung up")?;
    let text = err.to_string();
    check(net_trouble(&err) == Some(NetTrouble::HungUp), || {
        text.clone()
    })?;
    check(err.is_unreachable(), || text.clone())?;
    check(text.contains("Device open failure"), || text.clone())?;
    join(handle)?;
    Ok(())
}

fn rfc2217_hang_up_later() -> Result<(), Failed> {
    let (addr, handle) = server(Mode::HangUpLater);
    let port = NetPort::rfc2217(&addr, LineSettings::default(), WITHIN)?;
    let mut c = Console::new(port, ConsoleOptions::default());
    c.send(b"last words")?;
    match c.expect(&[("never", &re("never"))], WITHIN) {
        Err(ExpectError::Closed { tail, .. }) => {
            // What came before the hang-up is still read.
            check(tail.contains("last words"), || tail.clone())?;
        }
        other => return Err(format!("expected Closed, got {other:?}").into()),
    }
    check(c.is_closed(), || "console not closed".into())?;
    join(handle)?;
    Ok(())
}

fn rfc2217_flood() -> Result<(), Failed> {
    let (addr, handle) = server(Mode::Flood);
    let mut port = NetPort::rfc2217(&addr, LineSettings::default(), WITHIN)?;
    port.write_all(b"x")?;
    let mut buf = [0u8; 1024];
    let until = Instant::now() + WITHIN;
    let err = loop {
        check(Instant::now() < until, || "no protocol error".into())?;
        match port.read_timeout(&mut buf, Duration::from_millis(200)) {
            Ok(0) => {}
            Ok(n) => return Err(format!("read {n} bytes of data: {:02x?}", &buf[..n]).into()),
            Err(e) => break e,
        }
    };
    check(err.kind() == io::ErrorKind::InvalidData, || err.to_string())?;
    check(err.to_string().contains("subnegotiation"), || {
        err.to_string()
    })?;
    // Out of step for good: it stays failed.
    let again = port
        .read_timeout(&mut buf, Duration::ZERO)
        .err()
        .ok_or("read after a protocol error succeeded")?;
    check(again.kind() == io::ErrorKind::InvalidData, || {
        again.to_string()
    })?;
    drop(port);
    join(handle)?;
    Ok(())
}

fn raw_echo() -> Result<(), Failed> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    let handle = thread::spawn(move || -> io::Result<Vec<u8>> {
        let mut s = accept(&listener)?;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf)? {
                0 => return Ok(got),
                n => {
                    got.extend_from_slice(&buf[..n]);
                    s.write_all(&buf[..n])?;
                }
            }
        }
    });
    let port = NetPort::raw(&addr, WITHIN)?;
    check(port.describe() == format!("tcp {addr}"), || port.describe())?;
    let mut c = Console::new(port, ConsoleOptions::default());
    c.send(b"hello\r")?;
    c.expect(&[("echo", &re("hello\r"))], WITHIN)?;
    let (mut port, _) = c.into_parts();
    let bytes = all_bytes();
    port.write_all(&bytes)?;
    let back = read_n(&mut port, bytes.len())?;
    check(back == bytes, || format!("echoed {back:02x?}"))?;
    drop(port);
    let got = handle
        .join()
        .map_err(|_| "echo thread panicked")?
        .map_err(|e| format!("echo: {e}"))?;
    let mut want = b"hello\r".to_vec();
    want.extend_from_slice(&bytes);
    check(got == want, || format!("the server got {got:02x?}"))
}

fn refused_connection() -> Result<(), Failed> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = format!("127.0.0.1:{port}");
    for err in [
        NetPort::raw(&addr, WITHIN).err(),
        NetPort::rfc2217(&addr, LineSettings::default(), WITHIN).err(),
    ] {
        let err = err.ok_or("connected with nothing listening")?;
        check(err.is_unreachable(), || err.to_string())?;
        check(net_trouble(&err) == Some(NetTrouble::Unreachable), || {
            err.to_string()
        })?;
        check(err.to_string().contains(&addr), || err.to_string())?;
    }
    Ok(())
}

// ---- Debian's ser2net ----

#[derive(Clone, Copy, PartialEq, Debug)]
enum Accepter {
    Rfc2217,
    Raw,
}

fn ser2net_bin() -> Option<PathBuf> {
    // ser2net lives in sbin, which a non-root PATH may lack.
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("ser2net"))
        .find(|p| p.is_file())
}

/// A pseudo-terminal: the test plays the device on the master; ser2net serves the slave, which the
/// test also keeps open to read its settings.
struct Device {
    master: File,
    slave: OwnedFd,
    path: PathBuf,
    buffered: Vec<u8>,
}

impl Device {
    fn new() -> Result<Self, Failed> {
        let pair = nix::pty::openpty(None, None)?;
        let path = nix::unistd::ttyname(&pair.slave)?;
        Ok(Self {
            master: File::from(pair.master),
            slave: pair.slave,
            path,
            buffered: Vec::new(),
        })
    }

    fn fill(&mut self, until: Instant) -> Result<(), Failed> {
        let left = until.saturating_duration_since(Instant::now());
        check(!left.is_zero(), || {
            format!(
                "the device got only {:02x?}",
                String::from_utf8_lossy(&self.buffered)
            )
        })?;
        let ms = u16::try_from(left.as_millis().min(1000)).unwrap_or(1000);
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(ms))? > 0 {
            let mut buf = [0u8; 4096];
            let n = self.master.read(&mut buf)?;
            self.buffered.extend_from_slice(&buf[..n]);
        }
        Ok(())
    }

    /// Everything up to and including `marker`.
    fn read_until(&mut self, marker: &[u8]) -> Result<Vec<u8>, Failed> {
        let until = Instant::now() + WITHIN;
        loop {
            if let Some(at) = self
                .buffered
                .windows(marker.len())
                .position(|w| w == marker)
            {
                return Ok(self.buffered.drain(..at + marker.len()).collect());
            }
            self.fill(until)?;
        }
    }

    fn read_n(&mut self, n: usize) -> Result<Vec<u8>, Failed> {
        let until = Instant::now() + WITHIN;
        while self.buffered.len() < n {
            self.fill(until)?;
        }
        Ok(self.buffered.drain(..n).collect())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), Failed> {
        self.master.write_all(data)?;
        Ok(())
    }

    fn termios(&self) -> Result<nix::sys::termios::Termios, Failed> {
        Ok(tcgetattr(&self.slave)?)
    }
}

/// ser2net in the foreground, in its own process group; killed (the group) and reaped on drop.
struct Ser2net {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Ser2net {
    fn start(bin: &Path, accepter: &str, device: &Path) -> Result<Self, Failed> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("ser2net.yaml");
        // Port 0: the kernel picks a free one, read back from /proc (no race with other tests).
        std::fs::write(
            &config,
            format!(
                "connection: &hilt\n\
                 \x20   accepter: {accepter},127.0.0.1,0\n\
                 \x20   connector: serialdev,{},115200n81,local\n\
                 \x20   options:\n\
                 \x20     kickolduser: true\n",
                device.display()
            ),
        )?;
        let log = dir.path().join("ser2net.log");
        let out = File::create(&log)?;
        // -n -d: foreground, debug output; -u: no UUCP lock files left behind by SIGKILL; -P: a
        // pid file of our own, not the system's.
        let child = Command::new(bin)
            .args(["-n", "-d", "-u", "-P"])
            .arg(dir.path().join("ser2net.pid"))
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0)
            .spawn()?;
        let mut s = Ser2net {
            child,
            port: 0,
            log,
            _dir: dir,
        };
        let until = Instant::now() + WITHIN;
        loop {
            if let Some(status) = s.child.try_wait()? {
                return Err(format!("ser2net exited ({status}): {}", s.said()).into());
            }
            if let Some(port) = listening_port(s.child.id()) {
                s.port = port;
                return Ok(s);
            }
            if Instant::now() > until {
                return Err(
                    format!("ser2net did not listen within {WITHIN:?}: {}", s.said()).into(),
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn said(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Ser2net {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The TCP port `pid` listens on: its socket inodes matched against /proc/net/tcp{,6}.
fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local address, state (0A = LISTEN), inode
            let (Some(local), Some(&"0A"), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            if inodes.iter().any(|i| i == inode) {
                let port = local.rsplit(':').next()?;
                return u16::from_str_radix(port, 16).ok();
            }
        }
    }
    None
}

fn ser2net_trial(accepter: Accepter) -> Result<Completion, Failed> {
    let Some(bin) = ser2net_bin() else {
        return Ok(Completion::ignored_with(MISSING));
    };
    let mut dev = Device::new()?;
    let spec = match accepter {
        Accepter::Rfc2217 => "telnet(rfc2217),tcp",
        Accepter::Raw => "tcp",
    };
    let server = Ser2net::start(&bin, spec, &dev.path)?;
    let addr = server.addr();
    let port = match accepter {
        // Not the 115200 of ser2net's configuration: the tty must show what hilt asked for.
        Accepter::Rfc2217 => NetPort::rfc2217(&addr, LineSettings::new(57_600), WITHIN),
        Accepter::Raw => NetPort::raw(&addr, WITHIN),
    }
    .map_err(|e| format!("{e}; ser2net said: {}", server.said()))?;
    let mut c = Console::new(port, ConsoleOptions::default());

    // Host to device first: once it arrives, ser2net has the tty open and set up.
    c.send(b"version\r")?;
    let got = dev.read_until(b"\r")?;
    check(got == b"version\r", || format!("the device got {got:02x?}"))?;
    let speed = cfgetospeed(&dev.termios()?);
    let want = match accepter {
        Accepter::Rfc2217 => BaudRate::B57600,
        Accepter::Raw => BaudRate::B115200,
    };
    check(speed == want, || {
        format!("tty speed {speed:?}, want {want:?}")
    })?;

    dev.write(b"version\r\nfw 1.2.3 (build abc)\r\nok> ")?;
    let m = c.expect(
        &[("fw", &re(r"fw (?P<ver>\S+) \(build (?P<build>\w+)\)"))],
        WITHIN,
    )?;
    check(m.captures["ver"] == "1.2.3", || format!("{:?}", m.captures))?;
    c.expect(&[("prompt", &re("ok> $"))], WITHIN)?;

    c.send_secret(b"s3cret-pw\r", "password")?;
    let got = dev.read_until(b"\r")?;
    check(got == b"s3cret-pw\r", || {
        format!("the device got {got:02x?}")
    })?;
    dev.write(b"welcome s3cret-pw\r\n# ")?;
    c.expect(&[("shell", &re("# $"))], WITHIN)?;
    let text = c.transcript().render_text();
    check(
        !text.contains("s3cret") && text.contains("password"),
        || text.clone(),
    )?;

    // Every byte value, each way, 0xff included (doubled on the wire for RFC 2217).
    let (mut port, _) = c.into_parts();
    let bytes = all_bytes();
    port.write_all(&bytes)?;
    let got = dev.read_n(bytes.len())?;
    check(got == bytes, || format!("the device got {got:02x?}"))?;
    dev.write(&bytes)?;
    let back = read_n(&mut port, bytes.len())?;
    check(back == bytes, || format!("hilt got {back:02x?}"))?;
    drop(port);
    drop(server);
    Ok(Completion::Completed)
}

fn ser2net_settings() -> Result<Completion, Failed> {
    let Some(bin) = ser2net_bin() else {
        return Ok(Completion::ignored_with(MISSING));
    };
    let dev = Device::new()?;
    let server = Ser2net::start(&bin, "telnet(rfc2217),tcp", &dev.path)?;
    // A pty keeps CS8 and no parity whatever it is told (Linux's pty driver), so those two are
    // checked by ser2net's acknowledgement only; speed, stop bits and flow control show on the tty.
    for (settings, stop2, rtscts) in [
        (
            LineSettings {
                baud: 19_200,
                data_bits: 7,
                parity: Parity::Even,
                stop_bits: StopBits::Two,
                flow: FlowControl::RtsCts,
            },
            true,
            true,
        ),
        (LineSettings::new(9_600), false, false),
    ] {
        let port = NetPort::rfc2217(&server.addr(), settings, WITHIN)
            .map_err(|e| format!("{e}; ser2net said: {}", server.said()))?;
        let t = dev.termios()?;
        let want = if settings.baud == 19_200 {
            BaudRate::B19200
        } else {
            BaudRate::B9600
        };
        check(cfgetospeed(&t) == want, || {
            format!("speed {:?}, want {want:?}", cfgetospeed(&t))
        })?;
        check(
            t.control_flags.contains(ControlFlags::CSTOPB) == stop2,
            || format!("{:?}", t.control_flags),
        )?;
        check(
            t.control_flags.contains(ControlFlags::CRTSCTS) == rtscts,
            || format!("{:?}", t.control_flags),
        )?;
        drop(port);
        // ser2net restores the tty when the client leaves; wait for it before the next one.
        let until = Instant::now() + WITHIN;
        while cfgetospeed(&dev.termios()?) == want && Instant::now() < until {
            thread::sleep(Duration::from_millis(20));
        }
    }
    drop(server);
    Ok(Completion::Completed)
}

fn ser2net_no_device() -> Result<Completion, Failed> {
    let Some(bin) = ser2net_bin() else {
        return Ok(Completion::ignored_with(MISSING));
    };
    let dir = tempfile::tempdir()?;
    let server = Ser2net::start(&bin, "telnet(rfc2217),tcp", &dir.path().join("no-such-tty"))?;
    let err = NetPort::rfc2217(&server.addr(), LineSettings::default(), WITHIN)
        .err()
        .ok_or("connected though ser2net has no device")?;
    let text = err.to_string();
    eprintln!("ser2net without its device: {text}");
    check(err.is_unreachable(), || text.clone())?;
    check(net_trouble(&err) == Some(NetTrouble::HungUp), || {
        text.clone()
    })?;
    check(text.contains("Device open failure"), || text.clone())?;
    drop(server);
    Ok(Completion::Completed)
}
