//! The client's side of a telnet byte stream (RFC 854/855, BINARY 856, SUPPRESS-GO-AHEAD 858, option
//! negotiation by RFC 1143's Q method) with RFC 2217's COM-PORT-OPTION: what the server sends is
//! decoded into device data plus commands, and device data is encoded for the server.
//!
//! Pure state, no I/O: the caller feeds received chunks (split anywhere) and sends what
//! [`Telnet::take_owed`] returns. Memory is bounded: a subnegotiation longer than [`MAX_SUBNEG`] is a
//! protocol error, and answers owed are at most a few bytes per byte received.

pub(crate) const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;

pub(crate) const BINARY: u8 = 0;
pub(crate) const SGA: u8 = 3;
pub(crate) const COM_PORT: u8 = 44;

/// Longest subnegotiation payload accepted from the server.
pub(crate) const MAX_SUBNEG: usize = 4096;

/// RFC 2217 command codes, client to server; the server answers with the code plus [`SERVER`].
pub(crate) const SIGNATURE: u8 = 0;
pub(crate) const SET_BAUDRATE: u8 = 1;
pub(crate) const SET_DATASIZE: u8 = 2;
pub(crate) const SET_PARITY: u8 = 3;
pub(crate) const SET_STOPSIZE: u8 = 4;
pub(crate) const SET_CONTROL: u8 = 5;
const NOTIFY_LINESTATE: u8 = 6;
const NOTIFY_MODEMSTATE: u8 = 7;
pub(crate) const SERVER: u8 = 100;
/// Highest client command code (PURGE-DATA); answers are kept per code up to it.
const LAST_CODE: u8 = 12;

/// What we answer a server asking for our signature.
const OUR_SIGNATURE: &[u8] = b"hilt-link";

/// One side of one option (RFC 1143, without the queue bit: we never change our mind mid-way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Q {
    No,
    Yes,
    WantYes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Data,
    Iac,
    /// After IAC WILL/WONT/DO/DONT, waiting for the option.
    Verb(u8),
    /// After IAC SB, waiting for the option.
    SbOption,
    SbData,
    SbIac,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TelnetError {
    #[error("the server sent a subnegotiation of option {option} longer than {MAX_SUBNEG} bytes")]
    SubnegotiationTooLong { option: u8 },
}

/// Where COM-PORT-OPTION stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ComPort {
    Pending,
    Agreed,
    /// The server answered DONT (or WONT) COM-PORT-OPTION; the verb is kept for the message.
    Refused(&'static str),
}

pub(crate) struct Telnet {
    state: State,
    sb_option: u8,
    sb: Vec<u8>,
    /// The last data byte was CR: outside binary mode a NUL after it is padding (RFC 854).
    after_cr: bool,
    us: [Q; 256],
    him: [Q; 256],
    com_port: bool,
    refused: Option<&'static str>,
    owed: Vec<u8>,
    /// The server's last answer to each COM-PORT-OPTION command, by client code.
    answers: [Option<Vec<u8>>; LAST_CODE as usize + 1],
    line_state: Option<u8>,
    modem_state: Option<u8>,
}

impl Telnet {
    /// `com_port`: offer COM-PORT-OPTION (RFC 2217) besides BINARY and SUPPRESS-GO-AHEAD.
    pub fn new(com_port: bool) -> Self {
        Self {
            state: State::Data,
            sb_option: 0,
            sb: Vec::new(),
            after_cr: false,
            us: [Q::No; 256],
            him: [Q::No; 256],
            com_port,
            refused: None,
            owed: Vec::new(),
            answers: Default::default(),
            line_state: None,
            modem_state: None,
        }
    }

    /// Ask for BINARY and SUPPRESS-GO-AHEAD both ways, and offer COM-PORT-OPTION.
    pub fn start(&mut self) {
        for opt in [BINARY, SGA] {
            self.ask(WILL, opt);
            self.ask(DO, opt);
        }
        if self.com_port {
            self.ask(WILL, COM_PORT);
        }
    }

    fn ask(&mut self, verb: u8, opt: u8) {
        let side = if verb == WILL {
            &mut self.us
        } else {
            &mut self.him
        };
        if side[opt as usize] == Q::No {
            side[opt as usize] = Q::WantYes;
            self.owed.extend_from_slice(&[IAC, verb, opt]);
        }
    }

    /// Bytes to send the server now: our requests and answers, in order.
    pub fn take_owed(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.owed)
    }

    pub fn com_port(&self) -> ComPort {
        match (self.refused, self.us[COM_PORT as usize]) {
            (Some(verb), _) => ComPort::Refused(verb),
            (None, Q::Yes) => ComPort::Agreed,
            _ => ComPort::Pending,
        }
    }

    /// Send a COM-PORT-OPTION command (its value is IAC-escaped here).
    pub fn com_port_command(&mut self, code: u8, value: &[u8]) {
        self.owed.extend_from_slice(&[IAC, SB, COM_PORT, code]);
        for &b in value {
            self.owed.push(b);
            if b == IAC {
                self.owed.push(IAC);
            }
        }
        self.owed.extend_from_slice(&[IAC, SE]);
    }

    /// The server's last answer to client command `code`, if any.
    pub fn answer(&self, code: u8) -> Option<&[u8]> {
        self.answers.get(code as usize)?.as_deref()
    }

    pub fn forget_answers(&mut self) {
        self.answers = Default::default();
    }

    pub fn line_state(&self) -> Option<u8> {
        self.line_state
    }

    pub fn modem_state(&self) -> Option<u8> {
        self.modem_state
    }

    /// Whether we send binary (no CR NUL stuffing).
    pub fn binary_tx(&self) -> bool {
        self.us[BINARY as usize] == Q::Yes
    }

    /// Whether the server sends binary (a NUL after CR is data).
    pub fn binary_rx(&self) -> bool {
        self.him[BINARY as usize] == Q::Yes
    }

    /// Append `data` for the server to `out`: IAC doubled and, outside binary mode, a CR not
    /// followed by LF sent as CR NUL (RFC 854).
    pub fn encode(&self, data: &[u8], out: &mut Vec<u8>) {
        let binary = self.binary_tx();
        out.reserve(data.len() + data.len() / 16 + 2);
        for (k, &b) in data.iter().enumerate() {
            out.push(b);
            if b == IAC {
                out.push(IAC);
            } else if b == b'\r' && !binary && data.get(k + 1) != Some(&b'\n') {
                out.push(0);
            }
        }
    }

    /// Decode a chunk from the server: device data is appended to `data`, answers owed are queued
    /// (see [`Telnet::take_owed`]). A command may be split across chunks.
    pub fn feed(&mut self, input: &[u8], data: &mut Vec<u8>) -> Result<(), TelnetError> {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Data {
                let run = &input[i..];
                let n = run.iter().position(|&b| b == IAC).unwrap_or(run.len());
                self.push_data(&run[..n], data);
                i += n;
                if i < input.len() {
                    self.state = State::Iac;
                    i += 1;
                }
                continue;
            }
            let b = input[i];
            i += 1;
            self.state = match (self.state, b) {
                (State::Data, b) => {
                    self.push_data(&[b], data);
                    State::Data
                }
                (State::Iac, IAC) => {
                    self.push_data(&[IAC], data);
                    State::Data
                }
                (State::Iac, WILL | WONT | DO | DONT) => State::Verb(b),
                (State::Iac, SB) => State::SbOption,
                // NOP, GA, DM, BRK, IP, AO, AYT, EC, EL, a stray SE: nothing for a serial line.
                (State::Iac, _) => State::Data,
                (State::Verb(verb), opt) => {
                    self.negotiate(verb, opt);
                    State::Data
                }
                (State::SbOption, opt) => {
                    self.sb_option = opt;
                    self.sb.clear();
                    State::SbData
                }
                (State::SbData, IAC) => State::SbIac,
                (State::SbData, b) => {
                    self.sb_push(b)?;
                    State::SbData
                }
                (State::SbIac, IAC) => {
                    self.sb_push(IAC)?;
                    State::SbData
                }
                (State::SbIac, SE) => {
                    self.subnegotiation();
                    State::Data
                }
                // IAC and a command inside a subnegotiation: the server forgot IAC SE. Take the
                // subnegotiation as ended and the command as a command, as lenient clients do.
                (State::SbIac, _) => {
                    self.subnegotiation();
                    i -= 1;
                    State::Iac
                }
            };
        }
        Ok(())
    }

    fn push_data(&mut self, run: &[u8], data: &mut Vec<u8>) {
        if run.is_empty() {
            return;
        }
        if self.binary_rx() {
            data.extend_from_slice(run);
            self.after_cr = false;
            return;
        }
        for &b in run {
            if self.after_cr && b == 0 {
                self.after_cr = false;
                continue;
            }
            self.after_cr = b == b'\r';
            data.push(b);
        }
    }

    fn sb_push(&mut self, b: u8) -> Result<(), TelnetError> {
        if self.sb.len() >= MAX_SUBNEG {
            let option = self.sb_option;
            // Out of step for good; the caller stops using the stream.
            self.sb = Vec::new();
            self.state = State::Data;
            return Err(TelnetError::SubnegotiationTooLong { option });
        }
        self.sb.push(b);
        Ok(())
    }

    fn we_accept(&self, opt: u8) -> bool {
        match opt {
            BINARY | SGA => true,
            COM_PORT => self.com_port,
            _ => false,
        }
    }

    fn he_may(opt: u8) -> bool {
        matches!(opt, BINARY | SGA)
    }

    /// RFC 1143: answer a request only when it changes the state, so two sides never loop.
    fn negotiate(&mut self, verb: u8, opt: u8) {
        let o = opt as usize;
        match verb {
            WILL => match self.him[o] {
                Q::No if Self::he_may(opt) => {
                    self.him[o] = Q::Yes;
                    self.owed.extend_from_slice(&[IAC, DO, opt]);
                }
                Q::No => self.owed.extend_from_slice(&[IAC, DONT, opt]),
                Q::WantYes => self.him[o] = Q::Yes,
                Q::Yes => {}
            },
            WONT => {
                if self.him[o] == Q::Yes {
                    self.owed.extend_from_slice(&[IAC, DONT, opt]);
                }
                self.him[o] = Q::No;
                // Some servers answer WILL COM-PORT-OPTION with WONT: a refusal all the same.
                if opt == COM_PORT && self.com_port && self.us[o] != Q::Yes {
                    self.us[o] = Q::No;
                    self.refused.get_or_insert("WONT");
                }
            }
            DO => match self.us[o] {
                Q::No if self.we_accept(opt) => {
                    self.us[o] = Q::Yes;
                    self.owed.extend_from_slice(&[IAC, WILL, opt]);
                }
                Q::No => self.owed.extend_from_slice(&[IAC, WONT, opt]),
                Q::WantYes => self.us[o] = Q::Yes,
                Q::Yes => {}
            },
            DONT => {
                if self.us[o] == Q::Yes {
                    self.owed.extend_from_slice(&[IAC, WONT, opt]);
                }
                self.us[o] = Q::No;
                if opt == COM_PORT && self.com_port {
                    self.refused.get_or_insert("DONT");
                }
            }
            _ => {}
        }
    }

    fn subnegotiation(&mut self) {
        if self.sb_option != COM_PORT || !self.com_port {
            return;
        }
        let sb = std::mem::take(&mut self.sb);
        let Some((&code, value)) = sb.split_first() else {
            return;
        };
        let Some(client_code) = code.checked_sub(SERVER) else {
            // A client code from the server: not ours to answer.
            return;
        };
        match client_code {
            // An empty signature from the server asks for ours.
            SIGNATURE if value.is_empty() => self.com_port_command(SIGNATURE, OUR_SIGNATURE),
            NOTIFY_LINESTATE => self.line_state = value.first().copied(),
            NOTIFY_MODEMSTATE => self.modem_state = value.first().copied(),
            _ => {}
        }
        if let Some(slot) = self.answers.get_mut(client_code as usize) {
            *slot = Some(value.to_vec());
        }
        // Reuse the allocation for the next subnegotiation.
        self.sb = sb;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A session with BINARY agreed both ways (what ser2net does), owed bytes discarded.
    fn binary() -> Telnet {
        let mut t = Telnet::new(true);
        t.start();
        let mut data = Vec::new();
        t.feed(
            &[IAC, DO, BINARY, IAC, WILL, BINARY, IAC, DO, COM_PORT],
            &mut data,
        )
        .unwrap();
        assert!(t.binary_rx() && t.binary_tx());
        assert_eq!(t.com_port(), ComPort::Agreed);
        t.take_owed();
        data.clear();
        t
    }

    fn feed_all(t: &mut Telnet, chunks: &[&[u8]]) -> Vec<u8> {
        let mut data = Vec::new();
        for c in chunks {
            t.feed(c, &mut data).unwrap();
        }
        data
    }

    #[test]
    fn start_asks_for_binary_sga_and_com_port() {
        let mut t = Telnet::new(true);
        t.start();
        assert_eq!(
            t.take_owed(),
            [
                IAC, WILL, BINARY, IAC, DO, BINARY, IAC, WILL, SGA, IAC, DO, SGA, IAC, WILL,
                COM_PORT
            ]
        );
        assert_eq!(t.com_port(), ComPort::Pending);
    }

    #[test]
    fn crossing_requests_are_not_answered_twice() {
        // ser2net asks too, before it has seen our requests: no answer loops.
        let mut t = Telnet::new(true);
        t.start();
        t.take_owed();
        let data = feed_all(
            &mut t,
            &[&[
                IAC, WILL, SGA, IAC, DO, SGA, IAC, DO, BINARY, IAC, WILL, BINARY, IAC, DO,
                COM_PORT, IAC, DO, SGA,
            ]],
        );
        assert!(data.is_empty());
        assert!(t.take_owed().is_empty());
        assert_eq!(t.com_port(), ComPort::Agreed);
    }

    #[test]
    fn unsupported_options_are_refused_once_each() {
        let mut t = binary();
        // WILL ECHO, DO TERMINAL-TYPE, DO NAWS are refused; the WONT ECHO and DONT TERMINAL-TYPE
        // after them ask for the state already in force and get no answer.
        feed_all(
            &mut t,
            &[&[
                IAC, WILL, 1, IAC, DO, 24, IAC, DO, 31, IAC, WONT, 1, IAC, DONT, 24,
            ]],
        );
        assert_eq!(t.take_owed(), [IAC, DONT, 1, IAC, WONT, 24, IAC, WONT, 31]);
    }

    #[test]
    fn refusal_of_com_port_is_seen() {
        for verb in [DONT, WONT] {
            let mut t = Telnet::new(true);
            t.start();
            feed_all(&mut t, &[&[IAC, verb, COM_PORT]]);
            assert!(matches!(t.com_port(), ComPort::Refused(_)), "{verb}");
        }
    }

    #[test]
    fn iac_is_doubled_and_cr_nul_only_outside_binary() {
        let t = binary();
        let mut out = Vec::new();
        t.encode(&[1, IAC, b'\r', 0, b'\r'], &mut out);
        assert_eq!(out, [1, IAC, IAC, b'\r', 0, b'\r']);

        let nvt = Telnet::new(false);
        out.clear();
        nvt.encode(b"a\r\nb\rc\r", &mut out);
        assert_eq!(out, b"a\r\nb\r\0c\r\0");
    }

    #[test]
    fn cr_nul_is_padding_outside_binary_even_split_by_a_command() {
        let mut t = Telnet::new(false);
        let data = feed_all(
            &mut t,
            &[b"a\r", &[IAC, 241], &[0, b'b', b'\r', b'\n', 0, b'\r']],
        );
        assert_eq!(data, b"a\rb\r\n\0\r");
        let mut b = binary();
        assert_eq!(feed_all(&mut b, &[b"a\r", &[0]]), b"a\r\0");
    }

    #[test]
    fn com_port_answers_and_notifications_are_kept_not_data() {
        let mut t = binary();
        let baud = 115_200u32.to_be_bytes();
        let mut stream = vec![b'x', IAC, SB, COM_PORT, SERVER + SET_BAUDRATE];
        stream.extend_from_slice(&baud);
        stream.extend_from_slice(&[IAC, SE, b'y', IAC, SB, COM_PORT, 106, 0x60, IAC, SE]);
        stream.extend_from_slice(&[IAC, SB, COM_PORT, 107, IAC, IAC, IAC, SE, b'z']);
        // One byte at a time: every command split.
        let chunks: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(feed_all(&mut t, &chunks), b"xyz");
        assert_eq!(t.answer(SET_BAUDRATE), Some(&baud[..]));
        assert_eq!(t.line_state(), Some(0x60));
        assert_eq!(t.modem_state(), Some(0xff));
        assert!(t.take_owed().is_empty());
    }

    #[test]
    fn an_empty_signature_from_the_server_is_answered() {
        let mut t = binary();
        feed_all(&mut t, &[&[IAC, SB, COM_PORT, SERVER, IAC, SE]]);
        let mut want = vec![IAC, SB, COM_PORT, SIGNATURE];
        want.extend_from_slice(OUR_SIGNATURE);
        want.extend_from_slice(&[IAC, SE]);
        assert_eq!(t.take_owed(), want);
    }

    #[test]
    fn command_values_are_escaped() {
        let mut t = binary();
        t.com_port_command(SET_BAUDRATE, &0x0000_ff00u32.to_be_bytes());
        assert_eq!(
            t.take_owed(),
            [IAC, SB, COM_PORT, 1, 0, 0, IAC, IAC, 0, IAC, SE]
        );
    }

    #[test]
    fn an_endless_subnegotiation_is_an_error_not_memory() {
        let mut t = binary();
        let mut data = Vec::new();
        t.feed(&[IAC, SB, COM_PORT, 106], &mut data).unwrap();
        let junk = vec![7u8; 1024];
        let mut err = None;
        for _ in 0..8 {
            if let Err(e) = t.feed(&junk, &mut data) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(
            err,
            Some(TelnetError::SubnegotiationTooLong { option: COM_PORT })
        );
        assert!(data.is_empty());
        assert!(t.sb.capacity() <= MAX_SUBNEG);
    }

    #[test]
    fn a_subnegotiation_missing_se_ends_at_the_next_command() {
        let mut t = binary();
        let data = feed_all(&mut t, &[&[IAC, SB, COM_PORT, 106, 1, IAC, WILL, 24, b'k']]);
        assert_eq!(data, b"k");
        assert_eq!(t.line_state(), Some(1));
        assert_eq!(t.take_owed(), [IAC, DONT, 24]);
    }

    /// A piece of a server's stream and the data it stands for.
    #[derive(Debug, Clone)]
    enum Piece {
        Data(Vec<u8>),
        Ff,
        Command(u8),
        Negotiation(u8, u8),
        Sub(u8, Vec<u8>),
    }

    fn piece() -> impl Strategy<Value = Piece> {
        prop_oneof![
            proptest::collection::vec(0u8..255, 1..20).prop_map(Piece::Data),
            Just(Piece::Ff),
            (240u8..=249).prop_map(Piece::Command),
            // Any option but BINARY: switching binary off would change what CR NUL means.
            (251u8..=254, 1u8..=255).prop_map(|(v, o)| Piece::Negotiation(v, o)),
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(o, p)| Piece::Sub(o, p)),
        ]
    }

    fn encode(pieces: &[Piece]) -> (Vec<u8>, Vec<u8>) {
        let (mut stream, mut data) = (Vec::new(), Vec::new());
        for p in pieces {
            match p {
                Piece::Data(d) => {
                    stream.extend_from_slice(d);
                    data.extend_from_slice(d);
                }
                Piece::Ff => {
                    stream.extend_from_slice(&[IAC, IAC]);
                    data.push(IAC);
                }
                Piece::Command(c) => stream.extend_from_slice(&[IAC, *c]),
                Piece::Negotiation(v, o) => stream.extend_from_slice(&[IAC, *v, *o]),
                Piece::Sub(o, payload) => {
                    stream.extend_from_slice(&[IAC, SB, *o]);
                    for &b in payload {
                        stream.push(b);
                        if b == IAC {
                            stream.push(IAC);
                        }
                    }
                    stream.extend_from_slice(&[IAC, SE]);
                }
            }
        }
        (stream, data)
    }

    fn split(stream: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut at: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        at.sort_unstable();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for c in at.into_iter().chain([stream.len()]) {
            chunks.push(stream[prev..c].to_vec());
            prev = c;
        }
        chunks
    }

    proptest! {
        #[test]
        fn random_splits_decode_to_the_data(
            pieces in proptest::collection::vec(piece(), 0..40),
            cuts in proptest::collection::vec(any::<usize>(), 0..30),
        ) {
            let (stream, want) = encode(&pieces);
            let mut t = binary();
            let mut got = Vec::new();
            for chunk in split(&stream, &cuts) {
                t.feed(&chunk, &mut got).unwrap();
                // Answers stay proportional to what came in.
                prop_assert!(t.owed.len() <= 3 * stream.len() + 64);
            }
            prop_assert_eq!(got, want);
            prop_assert!(t.binary_rx());
        }

        #[test]
        fn our_encoding_decodes_back(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            cuts in proptest::collection::vec(any::<usize>(), 0..10),
            binary_mode in any::<bool>(),
        ) {
            // Encoded by one side, decoded by another in the same mode.
            let (tx, mut rx) = if binary_mode { (binary(), binary()) } else { (Telnet::new(false), Telnet::new(false)) };
            let mut stream = Vec::new();
            tx.encode(&data, &mut stream);
            let mut got = Vec::new();
            for chunk in split(&stream, &cuts) {
                rx.feed(&chunk, &mut got).unwrap();
            }
            prop_assert_eq!(got, data);
        }
    }
}
