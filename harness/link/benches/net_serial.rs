//! What serial over the network costs: send/expect round trips per second with an answering device on
//! a local pseudo-terminal, opened directly and through Debian's `ser2net` over RFC 2217 on loopback
//! (with ser2net's default character delay, and with it off), measured in the same run and printed
//! with their ratios. Bounded in count and time; `cargo bench -p hilt-link --bench net_serial`.
//! Without ser2net only the direct figure is printed.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hilt_link::{Console, ConsoleOptions, LineSettings, NetPort, Port, SerialPort};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use regex::Regex;

const ROUND_TRIPS: usize = 2_000;
const WARM_UP: usize = 20;

/// A pseudo-terminal device: its path, the slave fd (kept open so the device end stays up while
/// nobody else has the tty open), and how many answers it gave.
struct Device {
    path: PathBuf,
    slave: OwnedFd,
    answers: Arc<AtomicUsize>,
}

/// A device that answers every `\r` with `ok\r\n`.
fn device() -> Device {
    let pair = nix::pty::openpty(None, None).expect("openpty");
    let path = nix::unistd::ttyname(&pair.slave).expect("ttyname");
    let mut master = File::from(pair.master);
    let answers = Arc::new(AtomicUsize::new(0));
    let counted = answers.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = master.read(&mut buf) {
            for _ in buf[..n].iter().filter(|&&b| b == b'\r') {
                if master.write_all(b"ok\r\n").is_err() {
                    return;
                }
                counted.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    Device {
        path,
        slave: pair.slave,
        answers,
    }
}

/// Round trips per second of `send("\r")` / `expect("ok\r\n")`, checked to be one answer each.
fn round_trips<P: Port>(port: P, answers: &AtomicUsize) -> f64 {
    let ok = Regex::new(r"ok\r\n").expect("regex");
    let mut c = Console::new(port, ConsoleOptions::default());
    let exchange = |c: &mut Console<P>| {
        c.send(b"\r").expect("send");
        c.expect(&[("ok", &ok)], Duration::from_secs(30))
            .expect("expect");
    };
    for _ in 0..WARM_UP {
        exchange(&mut c);
    }
    let t = Instant::now();
    for _ in 0..ROUND_TRIPS {
        exchange(&mut c);
    }
    let rate = ROUND_TRIPS as f64 / t.elapsed().as_secs_f64();
    // Every expect was answered by its own request: nothing extra buffered or sent.
    assert_eq!(c.buffered_len(), 0);
    assert_eq!(answers.load(Ordering::SeqCst), WARM_UP + ROUND_TRIPS);
    rate
}

fn ser2net_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("ser2net"))
        .find(|p| p.is_file())
}

/// ser2net in the foreground in its own process group, killed (the group) and reaped on drop.
struct Ser2net {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Ser2net {
    fn start(bin: &Path, device: &Path, chardelay: bool) -> Ser2net {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("ser2net.yaml");
        std::fs::write(
            &config,
            format!(
                "connection: &hilt\n\
                 \x20   accepter: telnet(rfc2217),tcp,127.0.0.1,0\n\
                 \x20   connector: serialdev,{},115200n81,local\n\
                 \x20   options:\n\
                 \x20     chardelay: {chardelay}\n",
                device.display()
            ),
        )
        .expect("config");
        let child = Command::new(bin)
            .args(["-n", "-d", "-u", "-P"])
            .arg(dir.path().join("ser2net.pid"))
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn ser2net");
        let mut s = Ser2net {
            child,
            port: 0,
            _dir: dir,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while s.port == 0 {
            assert!(
                s.child.try_wait().expect("try_wait").is_none(),
                "ser2net exited"
            );
            assert!(Instant::now() < until, "ser2net did not listen");
            match listening_port(s.child.id()) {
                Some(p) => s.port = p,
                None => thread::sleep(Duration::from_millis(20)),
            }
        }
        s
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
            let (Some(local), Some(&"0A"), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            if inodes.iter().any(|i| i == inode) {
                return u16::from_str_radix(local.rsplit(':').next()?, 16).ok();
            }
        }
    }
    None
}

fn direct() -> f64 {
    let dev = device();
    let port = SerialPort::open(&dev.path, 115_200).expect("open pty");
    round_trips(port, &dev.answers)
}

fn through_ser2net(bin: &Path, chardelay: bool) -> f64 {
    let dev = device();
    let server = Ser2net::start(bin, &dev.path, chardelay);
    let port = NetPort::rfc2217(
        &format!("127.0.0.1:{}", server.port),
        LineSettings::new(115_200),
        Duration::from_secs(10),
    )
    .expect("connect through ser2net");
    let rate = round_trips(port, &dev.answers);
    drop(server);
    drop(dev.slave);
    rate
}

fn main() {
    let first = direct();
    println!("round trips ({ROUND_TRIPS}), send/expect with an answering pty device:");
    println!("  pty directly:                          {first:.0}/s");
    let Some(bin) = ser2net_bin() else {
        println!("  through ser2net: skipped, ser2net not installed (apt-get install ser2net)");
        return;
    };
    let delayed = through_ser2net(&bin, true);
    let prompt = through_ser2net(&bin, false);
    println!(
        "  ser2net RFC 2217 on loopback:          {delayed:.0}/s, ratio to direct {:.3}",
        delayed / first
    );
    println!(
        "  ser2net RFC 2217, chardelay: false:    {prompt:.0}/s, ratio to direct {:.3}",
        prompt / first
    );
    // The machine may be shared: a second direct figure shows how much the numbers drift.
    println!("  pty directly, again:                   {:.0}/s", direct());
}
