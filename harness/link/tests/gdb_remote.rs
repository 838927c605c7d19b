//! The GDB remote client against Debian's real `gdbserver`, a stub nobody here wrote. A tiny C program
//! (built with `cc`) holds a known pattern in a static array; gdbserver serves the process, and the
//! pattern is read back through `GdbRemote` and compared byte for byte. An unmapped address must be
//! answered with an error (a refusal), and dropping the client must detach and leave the process running.
//!
//! Where `gdbserver` or `cc` is missing the trials report *ignored* with the reason, never passed.
//! Attaching needs ptrace permission; where it is denied, the attach trial falls back to letting
//! gdbserver launch the program (stopped at its entry, the array already loaded from `.data`, its
//! address taken from `nm`).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hilt_link::Cancel;
use hilt_link::memory::gdb_remote::GdbRemote;
use hilt_link::memory::{Limits, MemoryLink, Region};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Bigger than gdbserver's packet size allows in one `m`, so the read takes several chunks.
const PATTERN_LEN: usize = 40_000;

fn main() {
    // A program gdbserver launched outlives it once detached; as a subreaper we can reap it.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let args = Arguments::from_args();
    let trials = vec![
        Trial::ignorable_test(
            "gdbserver_attach_reads_a_pattern_and_refuses_unmapped",
            || run(Mode::Attach),
        ),
        Trial::ignorable_test(
            "gdbserver_launch_reads_a_pattern_and_refuses_unmapped",
            || run(Mode::Launch),
        ),
    ];
    libtest_mimic::run(&args, trials).exit();
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// `gdbserver --attach` to a running process (falls back to Launch when ptrace attach is denied).
    Attach,
    /// `gdbserver PORT ./prog`: the program is started stopped at its entry.
    Launch,
}

fn find(bin: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

fn pattern() -> Vec<u8> {
    (0..PATTERN_LEN)
        .map(|i| {
            if (1024..2560).contains(&i) {
                0 // a long run: gdbserver run-length encodes it
            } else {
                ((i * 131 + 7) ^ (i >> 5)) as u8
            }
        })
        .collect()
}

fn c_source(pattern: &[u8]) -> String {
    let mut s = String::from(
        "#include <stdio.h>\n#include <stdint.h>\n#include <unistd.h>\n\n\
         unsigned char hilt_pattern[] = {\n",
    );
    for line in pattern.chunks(16) {
        let items: Vec<String> = line.iter().map(|b| format!("0x{b:02x}")).collect();
        s.push_str("  ");
        s.push_str(&items.join(", "));
        s.push_str(",\n");
    }
    s.push_str(
        "};\n\nint main(void) {\n\
         \x20 printf(\"%lx\\n\", (unsigned long)(uintptr_t)hilt_pattern);\n\
         \x20 fflush(stdout);\n\
         \x20 for (;;) pause();\n\
         \x20 return 0;\n}\n",
    );
    s
}

/// Kills and reaps every process started here, whatever the outcome.
#[derive(Default)]
struct Procs {
    children: Vec<Child>,
    /// Launched by gdbserver, reparented to us (subreaper) once it is gone.
    orphans: Vec<i32>,
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for &pid in &self.orphans {
            let pid = Pid::from_raw(pid);
            let _ = kill(pid, Signal::SIGKILL);
            // Reapable only when reparented to us; never block on it.
            let until = Instant::now() + Duration::from_secs(2);
            while Instant::now() < until {
                match nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                    Ok(nix::sys::wait::WaitStatus::StillAlive) => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => break,
                }
            }
        }
    }
}

/// Lines of a pipe, delivered on a channel so waiting for one can time out.
fn lines<R: Read + Send + 'static>(r: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// What gdbserver said until it listened (or gave up).
enum Started {
    Listening { port: u16, launched: Option<i32> },
    Failed(String),
}

fn wait_listening(stderr: ChildStderr, within: Duration) -> Started {
    let rx = lines(stderr);
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    let mut launched = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(pid) = line.split("pid = ").nth(1) {
                    launched = pid.trim().parse().ok();
                }
                if let Some(Ok(port)) = line
                    .strip_prefix("Listening on port ")
                    .map(|p| p.trim().parse())
                {
                    // Keep draining gdbserver's stderr so it never blocks on a full pipe.
                    std::thread::spawn(move || while rx.recv().is_ok() {});
                    return Started::Listening { port, launched };
                }
                seen.push(line);
            }
            Err(_) => return Started::Failed(seen.join("\n")),
        }
    }
}

fn compile(dir: &Path, cc: &Path) -> Result<PathBuf, Failed> {
    let src = dir.join("pattern.c");
    std::fs::write(&src, c_source(&pattern()))?;
    let prog = dir.join("pattern");
    // Not position-independent, so `nm`'s address is the run-time address in launch mode.
    let out = Command::new(cc)
        .args(["-O0", "-no-pie", "-o"])
        .arg(&prog)
        .arg(&src)
        .output()?;
    if !out.status.success() {
        return Err(format!("cc failed: {}", String::from_utf8_lossy(&out.stderr).trim()).into());
    }
    Ok(prog)
}

fn nm_address(nm: &Path, prog: &Path) -> Result<u64, Failed> {
    let out = Command::new(nm).arg(prog).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            let (addr, _kind, name) = (f.next()?, f.next()?, f.next()?);
            (name == "hilt_pattern").then(|| u64::from_str_radix(addr, 16).ok())?
        })
        .ok_or_else(|| format!("nm shows no hilt_pattern in {}:\n{text}", prog.display()).into())
}

fn run(mode: Mode) -> Result<Completion, Failed> {
    let Some(gdbserver) = find("gdbserver") else {
        return Ok(Completion::ignored_with(
            "gdbserver not installed (apt-get install gdbserver)",
        ));
    };
    let Some(cc) = find("cc") else {
        return Ok(Completion::ignored_with("no C compiler (cc) on PATH"));
    };
    let nm = find("nm");
    if mode == Mode::Launch && nm.is_none() {
        return Ok(Completion::ignored_with("nm (binutils) not on PATH"));
    }
    let dir = tempfile::tempdir()?;
    let prog = compile(dir.path(), &cc)?;
    let mut procs = Procs::default();

    let mut target: Option<(u16, u64, i32)> = None; // port, address, pid of the program
    let mut note = String::new();
    if mode == Mode::Attach {
        let mut child = Command::new(&prog)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let pid = child.id() as i32;
        let out = lines(child.stdout.take().expect("piped"));
        procs.children.push(child);
        let line = out
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the pattern program printed no address")?;
        let addr = u64::from_str_radix(line.trim(), 16)
            .map_err(|_| format!("the pattern program printed `{line}`, not an address"))?;
        let mut server = Command::new(&gdbserver)
            .args(["--once", "--attach", "127.0.0.1:0"])
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = server.stderr.take().expect("piped");
        procs.children.push(server);
        match wait_listening(stderr, Duration::from_secs(20)) {
            Started::Listening { port, .. } => target = Some((port, addr, pid)),
            Started::Failed(said) => {
                if said.contains("ptrace")
                    || said.contains("not permitted")
                    || said.contains("attach")
                {
                    note = format!("attach denied, launched instead: {said}");
                    eprintln!("{note}");
                } else {
                    return Err(format!("gdbserver --attach did not listen: {said}").into());
                }
            }
        }
    }
    if target.is_none() {
        let Some(nm) = nm.as_deref() else {
            return Ok(Completion::ignored_with(format!(
                "{note}; and no nm to find the pattern's address"
            )));
        };
        let addr = nm_address(nm, &prog)?;
        let mut server = Command::new(&gdbserver)
            .args(["--once", "127.0.0.1:0"])
            .arg(&prog)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = server.stderr.take().expect("piped");
        procs.children.push(server);
        match wait_listening(stderr, Duration::from_secs(20)) {
            Started::Listening { port, launched } => {
                let pid = launched.ok_or("gdbserver did not say the launched program's pid")?;
                procs.orphans.push(pid);
                target = Some((port, addr, pid));
            }
            Started::Failed(said) => {
                return Err(format!("gdbserver did not listen: {said}").into());
            }
        }
    }
    let (port, addr, pid) = target.expect("set above");

    let limits = Limits::new(1 << 20, Duration::from_secs(30), Cancel::new());
    let mut link = GdbRemote::connect(&format!("127.0.0.1:{port}"), &limits)
        .map_err(|e| format!("connect: {e}"))?;
    assert_eq!(link.describe(), format!("gdb-remote 127.0.0.1:{port}"));
    let chunk = link.chunk_len();
    let bytes = link
        .read(
            &Region {
                name: "pattern".into(),
                start: addr,
                len: PATTERN_LEN as u64,
            },
            &limits,
        )
        .map_err(|e| format!("reading the pattern at {addr:#x}: {e}"))?;
    if bytes != pattern() {
        let first = bytes.iter().zip(pattern()).position(|(a, b)| *a != b);
        return Err(format!(
            "read {} bytes at {addr:#x}, first difference at {first:?}",
            bytes.len()
        )
        .into());
    }
    eprintln!(
        "read {PATTERN_LEN} bytes at {addr:#x} from gdbserver in chunks of {chunk} (packet size {:#x}, no-ack {})",
        link.packet_size(),
        link.no_ack()
    );
    if chunk >= PATTERN_LEN as u64 {
        eprintln!("note: gdbserver's packet size allowed the whole pattern in one request");
    }

    let unmapped = link.read(
        &Region {
            name: "page-zero".into(),
            start: 0x10,
            len: 16,
        },
        &limits,
    );
    match unmapped {
        Err(e) if e.is_refusal() => eprintln!("unmapped read: {e}"),
        Err(e) => return Err(format!("unmapped read failed, but not as a refusal: {e}").into()),
        Ok(b) => return Err(format!("unmapped address 0x10 read {} bytes", b.len()).into()),
    }
    // After a refusal the link still works.
    let again = link
        .read(
            &Region {
                name: "pattern-head".into(),
                start: addr,
                len: 64,
            },
            &limits,
        )
        .map_err(|e| format!("read after a refusal: {e}"))?;
    assert_eq!(again, pattern()[..64]);

    // Dropping the link detaches: the program runs on, no longer traced.
    drop(link);
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let traced = status
            .lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .map(|v| v.trim() != "0");
        if traced == Some(false) {
            break;
        }
        if Instant::now() > until {
            return Err(format!("program {pid} still traced (or gone) after the detach").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(procs);
    Ok(Completion::Completed)
}
