//! The board's storage and debug port as a lab reaches them: the ready line naming the debug port,
//! the port answering GDB remote packets (locked unless `debug-port-open`), and the flash image file
//! holding none of the personal data entered on the console (unless a storage defect is on).

mod support;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use hilt_link::memory::gdb_remote::codec::{self, Decoder, Frame};
use hilt_vboard::flash::{FLASH_SIZE, MAGIC};
use support::{Board, command, login};

const WAIT: Duration = Duration::from_secs(10);
const PSK: &str = "canary-psk-7f3a91";
const SSID: &str = "CanaryNet-5521";
const NAME: &str = "Canary Owner-Alpha";
const EMAIL: &str = "canary.owner@example.org";

/// Starts `hilt-vboard run --state <dir>/unit <extra>`; the board and what its ready line said.
fn spawn(dir: &Path, extra: &[&str]) -> (Board, String) {
    support::spawn_ready(dir, extra, "info")
}

/// The address in a `PTY <path> DEBUG <ip:port>` line.
fn debug_addr(line: &str) -> SocketAddr {
    let words: Vec<&str> = line.split(' ').collect();
    assert_eq!(words.len(), 4, "{line:?}");
    assert_eq!((words[0], words[2]), ("PTY", "DEBUG"), "{line:?}");
    words[3].parse().unwrap_or_else(|_| panic!("{line:?}"))
}

/// A minimal GDB remote client: acknowledgement mode, replies acknowledged; framing, escapes and
/// run-length decoding by hilt's own codec.
struct Gdb {
    s: TcpStream,
    decoder: Decoder,
    frames: VecDeque<Frame>,
}

impl Gdb {
    fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect_timeout(&addr, WAIT).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut gdb = Gdb {
            s,
            decoder: Decoder::new(64 * 1024),
            frames: VecDeque::new(),
        };
        gdb.s.write_all(b"+").unwrap();
        let features = gdb.ask("qSupported:swbreak+;hwbreak+");
        assert!(features.contains("PacketSize="), "{features}");
        gdb.ask("?");
        gdb
    }

    fn ask(&mut self, payload: &str) -> String {
        self.s
            .write_all(&codec::encode(payload.as_bytes()))
            .unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            while let Some(frame) = self.frames.pop_front() {
                match frame {
                    Frame::Ack => {}
                    Frame::Packet(body) => {
                        self.s.write_all(b"+").unwrap();
                        return String::from_utf8(body).unwrap();
                    }
                    other => panic!("{other:?} in reply to {payload}"),
                }
            }
            assert!(Instant::now() < deadline, "no reply to {payload}");
            let mut buf = [0u8; 8192];
            match self.s.read(&mut buf) {
                Ok(0) => panic!("the debug port hung up on {payload}"),
                Ok(n) => {
                    let mut out = Vec::new();
                    self.decoder.feed(&buf[..n], &mut out).unwrap();
                    self.frames.extend(out);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// The whole flash partition, read as a probe would.
    fn dump(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let chunk = 0x800;
        for at in (0..FLASH_SIZE).step_by(chunk) {
            let reply = self.ask(&format!("m{at:x},{chunk:x}"));
            out.extend(hex::decode(&reply).unwrap_or_else(|_| panic!("m{at:x}: {reply}")));
        }
        out
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `needle` base64-encoded at any of the three alignments it can have inside a longer text.
fn contains_base64(haystack: &[u8], needle: &str) -> bool {
    (0..3).any(|shift| {
        let mut bytes = vec![0u8; shift];
        bytes.extend_from_slice(needle.as_bytes());
        let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let fragment = &text[(shift * 8).div_ceil(6)..bytes.len() / 3 * 4];
        contains(haystack, fragment.as_bytes())
    })
}

/// Plants the canaries through the console, as a lab does.
fn plant_canaries(board: &Board, dir: &Path) {
    let mut port = login(board, dir);
    for (cmd, saved) in [
        (format!("set name {NAME}"), "set: name saved"),
        (format!("set email {EMAIL}"), "set: email saved"),
        (format!("set wifi {SSID} {PSK}"), "set: wifi saved"),
    ] {
        let out = command(&mut port, &cmd);
        assert!(out.contains(saved), "{out:?}");
    }
    let out = command(&mut port, "show");
    assert!(out.contains(NAME) && out.contains(SSID), "{out:?}");
}

#[test]
fn the_ready_line_names_a_locked_debug_port() {
    let tmp = tempfile::tempdir().unwrap();
    let ready = tmp.path().join("ready");
    let (mut board, line) = spawn(
        tmp.path(),
        &[
            "--debug-port",
            "127.0.0.1:0",
            "--ready-file",
            ready.to_str().unwrap(),
        ],
    );
    let addr = debug_addr(&line);
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0, "the port the system picked is announced");
    // The ready file still holds the console's path alone.
    assert_eq!(std::fs::read_to_string(&ready).unwrap(), board.pty);

    let mut gdb = Gdb::connect(addr);
    assert_eq!(gdb.ask("m0,8"), "E01", "a locked port gave memory");
    assert_eq!(gdb.ask("m20000000,4"), "E01");
    assert!(gdb.ask("M0,1:00").starts_with('E'));
    assert_eq!(gdb.ask("D"), "OK");
    drop(gdb);
    // A second client is served after the first.
    let mut gdb = Gdb::connect(addr);
    assert_eq!(gdb.ask("m0,8"), "E01");

    // The unit's key is beside the image, not in it; the image is the whole partition.
    let unit = tmp.path().join("unit");
    let image = std::fs::read(unit.join("flash.img")).unwrap();
    assert_eq!(image.len(), FLASH_SIZE);
    let key = std::fs::read(unit.join("efuse.key")).unwrap();
    assert_eq!(key.len(), 32);
    let mode = std::fs::metadata(unit.join("efuse.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!contains(&image, &key));

    support::stop(&mut board);
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "the debug port outlived the board"
    );
}

#[test]
fn an_open_debug_port_dumps_flash_which_holds_no_canary() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut board, line) = spawn(
        tmp.path(),
        &["--debug-port", "127.0.0.1:0", "--defect", "debug-port-open"],
    );
    plant_canaries(&board, tmp.path());
    let mut gdb = Gdb::connect(debug_addr(&line));
    assert_eq!(gdb.ask("m0,8"), hex::encode(MAGIC));
    let dump = gdb.dump();
    let file = std::fs::read(tmp.path().join("unit/flash.img")).unwrap();
    assert_eq!(dump, file, "the port serves what flash holds");
    assert!(gdb.ask(&format!("m{FLASH_SIZE:x},4")).starts_with('E'));
    for canary in [PSK, SSID, NAME, EMAIL] {
        assert!(!contains(&dump, canary.as_bytes()), "{canary} in the clear");
        assert!(!contains_base64(&dump, canary), "{canary} in base64");
        assert!(
            !contains(&dump, hex::encode(canary).as_bytes()),
            "{canary} in hex"
        );
    }
    drop(gdb);

    // After a restart the unit opens its sealed data with its key.
    support::stop(&mut board);
    let (mut board, _) = spawn(tmp.path(), &[]);
    let mut port = login(&board, tmp.path());
    let out = command(&mut port, "show");
    assert!(
        out.contains(NAME) && out.contains(EMAIL) && out.contains(SSID),
        "{out:?}"
    );
    support::stop(&mut board);

    // Without its key the unit refuses to boot, with a clear error.
    std::fs::remove_file(tmp.path().join("unit/efuse.key")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hilt-vboard"))
        .args(["run", "--state"])
        .arg(tmp.path().join("unit"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("corrupt") && err.contains("efuse.key"),
        "{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "no ready line for a unit that cannot boot"
    );
}

#[test]
fn storage_defects_leave_secrets_readable_in_flash() {
    for (defect, clear, encoded) in [
        ("plaintext-wifi-psk", &[PSK, SSID][..], &[][..]),
        ("obfuscated-secrets", &[][..], &[PSK, SSID, NAME, EMAIL][..]),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (mut board, line) = spawn(tmp.path(), &["--defect", defect]);
        assert!(!line.contains("DEBUG"), "{line:?}");
        plant_canaries(&board, tmp.path());
        support::stop(&mut board);
        let image = std::fs::read(tmp.path().join("unit/flash.img")).unwrap();
        assert_eq!(image.len(), FLASH_SIZE);
        for canary in clear {
            assert!(
                contains(&image, canary.as_bytes()),
                "{defect}: {canary} not in the clear"
            );
        }
        for canary in encoded {
            assert!(
                contains_base64(&image, canary),
                "{defect}: {canary} not in base64"
            );
        }
        for canary in [NAME, EMAIL] {
            assert!(
                !contains(&image, canary.as_bytes()),
                "{defect}: {canary} in the clear"
            );
        }
    }
}
