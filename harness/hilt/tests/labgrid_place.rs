//! hilt's labgrid place client against the real labgrid: a `labgrid-coordinator` on a free loopback
//! port and a `labgrid-exporter` that serves pseudo-terminals this test opened (through ser2net,
//! started by the exporter) and a power outlet whose web interface (labgrid's `simplerest`) this
//! test plays. Places are made with `labgrid-client create` and `add-match`, then hilt acquires
//! them, reads their serial port and power switch, carries bytes both ways over the port,
//! power-cycles, and releases; a place held by another user is `Taken` after the timeout; a place
//! dropped by a panicking thread is free.
//!
//! Then the real `hilt run` on a board profile whose `[labgrid]` section names a place and whose
//! console is the place's serial port over RFC 2217, the device played by this test on the pty: the
//! case passes and the place is free after; a place another user holds makes the case ERROR (exit 3)
//! and stays theirs; SIGINT during the case, or while waiting for a taken place, ends the run with
//! 130, a signed partial report, and the place free (or still the other user's).
//!
//! Programs are found in `HILT_LABGRID_BIN` first, then PATH (ser2net also in /usr/sbin). Where
//! labgrid or ser2net is missing, each trial reports itself *ignored* with the reason, never passed.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hilt::labgrid::{LabgridError, Place, PlaceConfig, SerialProtocol, holder_of};
use hilt_link::{Cancel, LineSettings, NetPort, Port};
use hilt_model::profile::{NetProtocol, NetSerial};
use hilt_model::template::Template;
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Generous bounds: these tests must not flake on a loaded machine.
const WITHIN: Duration = Duration::from_secs(30);
const EXPORTER: &str = "hilt-exporter";
/// Another labgrid identity (`HOST/USER`): labgrid takes the user from `LG_USERNAME`.
const OTHER_USER: &str = "hilt-other";
/// One exporter group (a pty and a PDU outlet) per place, so trials run side by side: 0–2 for the
/// place client's trials, 3–6 for the boards `hilt run` tests through a place.
const GROUPS: usize = 7;
/// The first group whose serial port is served under [`CONSOLE_RESOURCE`].
const BOARD_GROUPS: usize = 3;

type LabTrial = fn(&Lab) -> Result<(), Failed>;

fn main() {
    let args = Arguments::from_args();
    let trials: [(&str, LabTrial); 8] = [
        (
            "acquired_place_serves_its_serial_port_and_power_then_releases",
            serial_power_release,
        ),
        (
            "place_held_by_another_user_is_taken_after_the_timeout_or_cancel",
            taken_by_another,
        ),
        (
            "place_dropped_by_a_panicking_thread_is_released",
            panicking_holder,
        ),
        (
            "missing_place_and_unreachable_coordinator_are_told_apart",
            missing_and_unreachable,
        ),
        (
            "hilt_run_passes_a_case_through_a_place_releases_it_and_errors_when_taken",
            run_through_place,
        ),
        (
            "interrupted_hilt_run_releases_the_place_and_leaves_another_users_hold",
            interrupted_run,
        ),
        (
            "console_at_the_documented_rfc2217_labgrid_serial_address_loads_and_runs",
            documented_console_address,
        ),
        (
            "power_cycle_action_switches_the_places_outlet_off_and_on",
            power_cycle_through_place,
        ),
    ];
    let trials = trials
        .into_iter()
        .map(|(name, body)| Trial::ignorable_test(name, move || with_lab(body)))
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    // The lab's processes are killed and reaped here: `exit` would skip every destructor.
    drop(LAB.lock().map(|mut l| l.take()));
    conclusion.exit();
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), Failed> {
    if ok { Ok(()) } else { Err(what().into()) }
}

// ---- the trials ----

fn serial_power_release(lab: &Lab) -> Result<(), Failed> {
    let cfg = lab.new_place("alpha-place", 0)?;
    let place = Place::acquire(&cfg, &Cancel::new())?;
    let found = place.resources()?;
    check(found.serial.len() == 1, || format!("{found:?}"))?;
    let serial = &found.serial[0];
    check(
        serial.host == "127.0.0.1"
            && serial.port != 0
            && serial.protocol == SerialProtocol::Rfc2217
            && serial.speed == Some(115200),
        || format!("{serial:?}"),
    )?;
    let power = found.power.as_ref().ok_or("no power resource")?;
    check(
        power.class == "NetworkPowerPort"
            && power.model.as_deref() == Some("simplerest")
            && power.index.as_deref() == Some("1")
            && power.host
                == Some(format!(
                    "http://127.0.0.1:{}/relay/{{index}}/{{value}}",
                    lab.pdu_port
                )),
        || format!("{power:?}"),
    )?;

    // The URL is one a board profile's `net = …` takes, and hilt's RFC 2217 client speaks through it.
    let url = serial.url();
    let net = NetSerial::parse(&Template::parse(&url)?)?;
    check(net.protocol == NetProtocol::Rfc2217, || url.clone())?;
    let addr = url.strip_prefix("rfc2217://").ok_or("not rfc2217")?;
    let mut port = NetPort::rfc2217(addr, LineSettings::default(), WITHIN)?;
    let pty = &lab.ptys[0];
    pty.write(b"device says hello\r\n")?;
    read_port_until(&mut port, b"device says hello")?;
    port.write_all(b"hilt says hello\r\n")?;
    pty.read_until(b"hilt says hello")?;
    drop(port);

    check(holder_of(&cfg)?.is_some(), || {
        "show says free while held".into()
    })?;
    place.power_cycle()?;
    let switched = lab.pdu_requests("/relay/1/");
    check(switched == ["/relay/1/0", "/relay/1/1"], || {
        format!("the PDU saw {switched:?}")
    })?;

    place.release()?;
    check(holder_of(&cfg)?.is_none(), || {
        "still held after release".into()
    })?;
    let who = lab.client(&[], &["who"])?;
    check(!who.stdout.contains("alpha-place"), || {
        format!("who: {}", who.stdout)
    })
}

fn taken_by_another(lab: &Lab) -> Result<(), Failed> {
    let cfg = lab.new_place("bravo-place", 1)?;
    let other = [("LG_USERNAME", OTHER_USER)];
    lab.client(&other, &["-p", "bravo-place", "acquire"])?
        .ok()?;

    let waiting = PlaceConfig {
        acquire_timeout: Duration::from_secs(2),
        ..cfg.clone()
    };
    let started = Instant::now();
    let err = Place::acquire(&waiting, &Cancel::new())
        .err()
        .ok_or("acquired a place another user holds")?;
    let took = started.elapsed();
    let LabgridError::Taken { place, by, waited } = &err else {
        return Err(format!("not Taken: {err}").into());
    };
    let owner_suffix = format!("/{OTHER_USER}");
    check(
        place == "bravo-place" && by.as_deref().is_some_and(|b| b.ends_with(&owner_suffix)),
        || format!("{err}"),
    )?;
    check(
        *waited >= Duration::from_secs(2) && took < Duration::from_secs(2) + WITHIN,
        || format!("waited {waited:?}, returned after {took:?}"),
    )?;

    // Cancelled while waiting: back promptly, and the other user's hold untouched.
    let patient = PlaceConfig {
        acquire_timeout: Duration::from_secs(120),
        ..cfg.clone()
    };
    let cancel = Cancel::new();
    let canceller = cancel.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(1500));
        canceller.cancel(2);
    });
    let started = Instant::now();
    let err = Place::acquire(&patient, &cancel).err();
    t.join().map_err(|_| "canceller panicked")?;
    check(matches!(err, Some(LabgridError::Cancelled { .. })), || {
        format!("{err:?}")
    })?;
    check(
        started.elapsed() < Duration::from_millis(1500) + WITHIN,
        || format!("cancel took {:?}", started.elapsed()),
    )?;
    let holder = holder_of(&cfg)?;
    check(
        holder
            .as_deref()
            .is_some_and(|h| h.ends_with(&owner_suffix)),
        || format!("holder after cancel: {holder:?}"),
    )?;

    // Once the other user lets go, hilt gets it.
    lab.client(&other, &["-p", "bravo-place", "release"])?
        .ok()?;
    Place::acquire(&cfg, &Cancel::new())?.release()?;
    Ok(())
}

fn panicking_holder(lab: &Lab) -> Result<(), Failed> {
    let cfg = lab.new_place("charlie-place", 2)?;
    let inner = cfg.clone();
    let joined = thread::spawn(move || {
        let _place = Place::acquire(&inner, &Cancel::new()).expect("acquire");
        assert!(holder_of(&inner).expect("show").is_some());
        panic!("the holder panics while holding the place (expected by the test)");
    })
    .join();
    check(joined.is_err(), || "the holder did not panic".into())?;
    let holder = holder_of(&cfg)?;
    check(holder.is_none(), || format!("still held by {holder:?}"))
}

fn missing_and_unreachable(lab: &Lab) -> Result<(), Failed> {
    let missing = lab.config("nosuch-zz");
    let err = Place::acquire(&missing, &Cancel::new()).err();
    check(
        matches!(&err, Some(LabgridError::NoSuchPlace { place, coordinator, .. })
            if place == "nosuch-zz" && *coordinator == lab.address),
        || format!("{err:?}"),
    )?;

    let closed = format!("127.0.0.1:{}", free_port()?);
    let away = PlaceConfig {
        coordinator: Some(closed.clone()),
        ..lab.config("alpha-place")
    };
    let err = Place::acquire(&away, &Cancel::new()).err();
    check(
        matches!(&err, Some(LabgridError::Unreachable { coordinator, place, .. })
            if *coordinator == closed && place == "alpha-place"),
        || format!("{err:?}"),
    )
}

// ---- `hilt run` through a place ----
//
// A board profile whose `[labgrid]` section names a place of this lab and whose console is that
// place's network serial port; the device at the other end of the exported pty is played by a thread
// of this test. The real `hilt` binary runs one console case that needs no login and no cloud
// (`up.device.support-period`), and the place is read back with `labgrid-client show` afterwards.

/// The case: its one binding reads the support period from the console banner.
const SUPPORT_CASE: &str = "up.device.support-period";
const END_DATE: &str = "2030-12-31";
/// What the played device answers to each carriage return: its banner and login prompt.
const BANNER: &[u8] = b"\r\nhub: security updates until 2030-12-31\r\n\r\nlogin: ";
/// The serial port's name in the boards' groups. It carries a ':' only so that
/// `rfc2217://{labgrid.serial.NAME}` gets past the profile loader, which looks for a literal ':' in
/// the address before variables are known; see [`documented_console_address`].
const CONSOLE_RESOURCE: &str = "hub:console";
/// `net` through the named-port variable, and the documented form through the first port.
const NET_NAMED: &str = "rfc2217://{labgrid.serial.hub:console}";
const NET_DOCUMENTED: &str = "rfc2217://{labgrid.serial}";
/// Bound on one whole `hilt run`.
const RUN_WITHIN: Duration = Duration::from_secs(90);

/// A board profile for place `place` of this lab, in its own directory with its report and key dirs.
struct Board {
    dir: tempfile::TempDir,
    profile: PathBuf,
}

impl Board {
    /// `net`: the console's address; `acquire_ms`: how long a taken place is waited for; `read_ms`:
    /// how long the binding waits for the banner.
    fn write(
        lab: &Lab,
        place: &str,
        net: &str,
        acquire_ms: u64,
        read_ms: u64,
    ) -> Result<Board, Failed> {
        let dir = tempfile::tempdir()?;
        let profile = dir.path().join("board.toml");
        let client = lab
            .tools
            .client
            .to_str()
            .ok_or("labgrid-client path is not UTF-8")?;
        let text = format!(
            r#"schema = 1

[board]
name = "lg-hub"
description = "a hub reached through labgrid place {place} (hilt's labgrid_place test)"

[identity]
manufacturer = "hilt project"
model = "LG-1"
hardware_version = "1"
firmware_version = "1.0.0"

[[unit]]
serial = "LG-00000001"

[labgrid]
place = "{place}"
coordinator = "{coordinator}"
client = {client:?}
acquire_timeout_ms = {acquire_ms}

[links.console]
kind = "serial"
net = "{net}"
baud = 115200

[ics.provisions]
"5.3-13" = {{ support = "Y", detail = "security updates until {END_DATE}, on the console banner" }}

[ixit."2-UserInfo".device]
"Publication of Support Period" = {{ description = "Security updates until {END_DATE}, on the console banner before login", end_date = "{END_DATE}" }}

[bindings.read-support-period]
link = "console"
timeout_ms = {read_ms}
[[bindings.read-support-period.steps]]
send = "\r"
[[bindings.read-support-period.steps]]
expect = {{ published = 'security updates until (?P<end_date>\S+)\r\n(?:\r\n)?login: $', unpublished = 'login: $' }}
outcome = true
"#,
            coordinator = lab.address,
        );
        std::fs::write(&profile, text)?;
        Ok(Board { dir, profile })
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// `hilt run --board PROFILE --out DIR up.device.support-period --exact`, in its own process
    /// group, with a development key of its own; its output goes to `NAME.log`.
    fn start_run(&self, name: &str) -> Result<Proc, Failed> {
        self.start_case(name, SUPPORT_CASE, &suite_root(), &[])
    }

    /// The same for case `case` of the suite in `suite`, with `extra` arguments.
    fn start_case(
        &self,
        name: &str,
        case: &str,
        suite: &Path,
        extra: &[&str],
    ) -> Result<Proc, Failed> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hilt"));
        cmd.args(["run", "--board"])
            .arg(&self.profile)
            .arg("--out")
            .arg(self.out())
            .arg("--suite")
            .arg(suite)
            .args([case, "--exact"])
            .args(extra)
            .env("HILT_DEV_KEY_DIR", self.dir.path().join("keys"))
            .current_dir(suite_root());
        // The place is hilt's as this test's user, whatever the environment says.
        for var in ["LG_USERNAME", "LG_HOSTNAME", "LG_COORDINATOR", "LG_ENV"] {
            cmd.env_remove(var);
        }
        Proc::start(cmd, self.dir.path().join(format!("{name}.log")))
    }

    /// The report's one case: its verdict and reason.
    fn case_result(&self) -> Result<(String, String, serde_json::Value), Failed> {
        self.result_of(SUPPORT_CASE)
    }

    fn result_of(&self, case_id: &str) -> Result<(String, String, serde_json::Value), Failed> {
        let path = self.out().join("report.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let report: serde_json::Value = serde_json::from_str(&text)?;
        let case = report["cases"]
            .as_array()
            .and_then(|cases| cases.iter().find(|c| c["id"] == case_id))
            .ok_or_else(|| format!("{case_id} is not in the report: {text}"))?;
        let verdict = case["verdict"].as_str().unwrap_or_default().to_string();
        let reason = case["reason"].as_str().unwrap_or_default().to_string();
        Ok((verdict, reason, report))
    }

    /// The signed report (a DSSE envelope) is there.
    fn signed(&self) -> Result<(), Failed> {
        let path = self.out().join("report.dsse.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("no signed report: {}: {e}", path.display()))?;
        let envelope: serde_json::Value = serde_json::from_str(&text)?;
        check(
            envelope["payload"].is_string()
                && envelope["signatures"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty()),
            || format!("not a signed envelope: {text}"),
        )
    }
}

/// The repository root, where `hilt` finds the suite (test-cases/, boards/).
fn suite_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The device on a pty: what it heard, and whether to stop.
#[derive(Default)]
struct Device {
    stop: AtomicBool,
    /// Carriage returns heard (each one a command hilt sent).
    commands: AtomicUsize,
    heard: Mutex<Vec<u8>>,
}

impl Device {
    /// Plays the device on `pty` until told to stop: each carriage return is answered with `answer`
    /// (`None`: a device that never answers).
    fn play(&self, pty: &Pty, answer: Option<&[u8]>) -> Result<(), Failed> {
        let mut master = pty.master.lock().map_err(|_| "pty lock")?;
        while !self.stop.load(Ordering::SeqCst) {
            let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::from(100u16))? == 0 {
                continue;
            }
            let mut buf = [0u8; 4096];
            let n = master.read(&mut buf)?;
            self.heard
                .lock()
                .map_err(|_| "heard lock")?
                .extend_from_slice(&buf[..n]);
            for _ in buf[..n].iter().filter(|b| **b == b'\r') {
                self.commands.fetch_add(1, Ordering::SeqCst);
                if let Some(answer) = answer {
                    master.write_all(answer)?;
                }
            }
        }
        Ok(())
    }

    fn heard(&self) -> String {
        self.heard
            .lock()
            .map(|h| String::from_utf8_lossy(&h).into_owned())
            .unwrap_or_default()
    }
}

/// Runs `body` while a thread plays the device on `pty`; the thread is stopped and joined after.
fn with_device<T>(
    pty: &Pty,
    answer: Option<&[u8]>,
    body: impl FnOnce(&Device) -> Result<T, Failed>,
) -> Result<T, Failed> {
    let device = Device::default();
    thread::scope(|s| {
        let player = s.spawn(|| device.play(pty, answer));
        let result = body(&device);
        device.stop.store(true, Ordering::SeqCst);
        let played = player.join().map_err(|_| "the device thread panicked")?;
        let result = result?;
        played.map_err(|e| format!("the device: {}", e.message().unwrap_or("failed")))?;
        Ok(result)
    })
}

/// Runs the case through `place` with a device that answers, and checks it PASSes and the place is
/// free after.
fn pass_through(lab: &Lab, cfg: &PlaceConfig, group: usize, net: &str) -> Result<(), Failed> {
    let board = Board::write(lab, &cfg.place, net, 10_000, 10_000)?;
    let (status, said, heard) = with_device(&lab.ptys[group], Some(BANNER), |device| {
        let mut run = board.start_run("pass")?;
        let status = run.wait_within(RUN_WITHIN)?;
        Ok((status, run.said(), device.heard()))
    })?;
    check(status.code() == Some(0), || {
        format!("hilt run: {status}; the device heard {heard:?}; hilt said:\n{said}")
    })?;
    let (verdict, reason, _) = board.case_result()?;
    check(verdict == "PASS", || {
        format!("{SUPPORT_CASE}: {verdict} ({reason}); the device heard {heard:?}")
    })?;
    board.signed()?;
    let holder = holder_of(cfg)?;
    check(holder.is_none(), || {
        format!("after the run, {} is still held by {holder:?}", cfg.place)
    })
}

fn run_through_place(lab: &Lab) -> Result<(), Failed> {
    let group = BOARD_GROUPS;
    let cfg = lab.new_place("delta-place", group)?;
    pass_through(lab, &cfg, group, NET_NAMED)?;

    // Another user holds the place: the case is ERROR (the bench's trouble), exit code 3, after the
    // profile's short wait; the other user's hold is untouched.
    let other = [("LG_USERNAME", OTHER_USER)];
    lab.client(&other, &["-p", "delta-place", "acquire"])?
        .ok()?;
    let board = Board::write(lab, "delta-place", NET_NAMED, 1500, 10_000)?;
    let mut run = board.start_run("taken")?;
    let status = run.wait_within(RUN_WITHIN)?;
    let said = run.said();
    check(status.code() == Some(3), || {
        format!("hilt run on a taken place: {status}; hilt said:\n{said}")
    })?;
    let (verdict, reason, _) = board.case_result()?;
    let owner_suffix = format!("/{OTHER_USER}");
    check(
        verdict == "ERROR"
            && reason.contains("\"delta-place\" is taken by")
            && reason.contains(&owner_suffix),
        || format!("{SUPPORT_CASE}: {verdict} ({reason})"),
    )?;
    board.signed()?;
    let holder = holder_of(&cfg)?;
    check(
        holder
            .as_deref()
            .is_some_and(|h| h.ends_with(&owner_suffix)),
        || format!("after the run on a taken place, the holder is {holder:?}"),
    )?;
    lab.client(&other, &["-p", "delta-place", "release"])?
        .ok()?;
    Ok(())
}

fn interrupted_run(lab: &Lab) -> Result<(), Failed> {
    let group = BOARD_GROUPS + 1;
    let cfg = lab.new_place("echo-place", group)?;

    // A device that never answers: the case waits on its console (two minutes) when SIGINT comes.
    let board = Board::write(lab, "echo-place", NET_NAMED, 10_000, 120_000)?;
    let (status, took, said) = with_device(&lab.ptys[group], None, |device| {
        let mut run = board.start_run("interrupted")?;
        wait_for(
            || {
                run.alive()?;
                Ok(holder_of(&cfg)?.is_some())
            },
            || "hilt did not acquire the place".into(),
        )?;
        // The case is running once the device hears hilt's first command.
        wait_for(
            || {
                run.alive()?;
                Ok(device.commands.load(Ordering::SeqCst) > 0)
            },
            || format!("the device heard nothing from hilt: {:?}", device.heard()),
        )?;
        let interrupted = Instant::now();
        run.signal(Signal::SIGINT)?;
        let status = run.wait_within(WITHIN)?;
        Ok((status, interrupted.elapsed(), run.said()))
    })?;
    check(status.code() == Some(130), || {
        format!("interrupted hilt run: {status} after {took:?}; hilt said:\n{said}")
    })?;
    board.signed()?;
    let (verdict, reason, report) = board.case_result()?;
    check(report["run"]["interrupted"] == true, || {
        format!("the report does not say it is partial: {:#}", report["run"])
    })?;
    // The running case ends INCONCLUSIVE (the report's own contract); judged last, so that the
    // place's release is proved whatever the verdict.
    let running_case = check(verdict == "INCONCLUSIVE", || {
        format!(
            "the case interrupted on the console ended {verdict} ({reason}), not INCONCLUSIVE: {:#}",
            report["cases"]
        )
    });
    let holder = holder_of(&cfg)?;
    check(holder.is_none(), || {
        format!("after the interrupted run, echo-place is still held by {holder:?}")
    })?;

    // Interrupted while waiting (two minutes) for a place another user holds: back at once, the
    // other user's hold untouched.
    let other = [("LG_USERNAME", OTHER_USER)];
    lab.client(&other, &["-p", "echo-place", "acquire"])?.ok()?;
    let board = Board::write(lab, "echo-place", NET_NAMED, 120_000, 10_000)?;
    let mut run = board.start_run("interrupted-waiting")?;
    // hilt makes the report directory just before it installs its signal handlers, and then asks for
    // the place every half second.
    wait_for(
        || {
            run.alive()?;
            Ok(board.out().is_dir())
        },
        || "hilt did not start the run".into(),
    )?;
    thread::sleep(Duration::from_millis(1500));
    run.alive()?;
    let interrupted = Instant::now();
    run.signal(Signal::SIGINT)?;
    let status = run.wait_within(WITHIN)?;
    let took = interrupted.elapsed();
    let said = run.said();
    check(status.code() == Some(130), || {
        format!(
            "hilt run interrupted while waiting for the place: {status} after {took:?}; hilt said:\n{said}"
        )
    })?;
    board.signed()?;
    let holder = holder_of(&cfg)?;
    let owner_suffix = format!("/{OTHER_USER}");
    check(
        holder
            .as_deref()
            .is_some_and(|h| h.ends_with(&owner_suffix)),
        || format!("after the interrupted wait, the holder is {holder:?}"),
    )?;
    lab.client(&other, &["-p", "echo-place", "release"])?.ok()?;
    running_case
}

/// The console address the `[labgrid]` documentation gives, `rfc2217://{labgrid.serial}` (the first
/// serial port of the place), end to end.
fn documented_console_address(lab: &Lab) -> Result<(), Failed> {
    let group = BOARD_GROUPS + 2;
    let cfg = lab.new_place("foxtrot-place", group)?;
    pass_through(lab, &cfg, group, NET_DOCUMENTED)
}

/// A suite of one case for a board reached through a place: cut the power, then read the console.
const POWER_CASE: &str = "rs.power.cycle-through-place";
const POWER_SCENARIO: &str = r#"schema = 1
id = "rs.power.cycle-through-place"
title = "The board's power is cut and restored through its labgrid place, and its console answers"
kind = "functional"
purpose = "Exercises the power-cycle action over a labgrid place's power port (hilt's labgrid_place test)."
pass_criteria = "PASS when the power was cycled and the console then shows the support period."

[provisions]
en303645 = ["5.9-2"]

[[step]]
id = "cut-power"
action = "power-cycle"
with = {}
expect = ["cycled"]

[[step]]
id = "console-back"
action = "read-support-period"
with = {}
expect = ["published"]
"#;

/// The place's power port as the board's power link, bound to `power-cycle`.
const POWER_LINK: &str = r#"
[links.power]
kind = "power"
via = "labgrid"

[bindings.power-cycle]
link = "power"
"#;

fn power_cycle_through_place(lab: &Lab) -> Result<(), Failed> {
    let group = BOARD_GROUPS + 3;
    let cfg = lab.new_place("golf-place", group)?;
    // The profile names another place: `--labgrid-place` picks this one (one profile per model, the
    // unit chosen on the command line).
    let board = Board::write(lab, "not-this-place", NET_NAMED, 10_000, 10_000)?;
    let mut text = std::fs::read_to_string(&board.profile)?.replace(
        "[ics.provisions]\n",
        "[ics.provisions]\n\"5.9-2\" = { support = \"Y\", detail = \"the console answers again after a power cut\" }\n",
    );
    text.push_str(POWER_LINK);
    std::fs::write(&board.profile, text)?;
    let suite = board.dir.path().join("suite");
    for d in ["test-cases/resilience", "boards", "fixtures"] {
        std::fs::create_dir_all(suite.join(d))?;
    }
    std::fs::write(
        suite.join("test-cases/resilience/power.toml"),
        POWER_SCENARIO,
    )?;

    let (status, said) = with_device(&lab.ptys[group], Some(BANNER), |_| {
        let mut run = board.start_case(
            "power",
            POWER_CASE,
            &suite,
            &["--labgrid-place", "golf-place"],
        )?;
        let status = run.wait_within(RUN_WITHIN)?;
        Ok((status, run.said()))
    })?;
    check(status.code() == Some(0), || {
        format!("hilt run: {status}; hilt said:\n{said}")
    })?;
    let (verdict, reason, report) = board.result_of(POWER_CASE)?;
    check(verdict == "PASS", || {
        format!("{POWER_CASE}: {verdict} ({reason})")
    })?;
    check(report["board"]["labgrid_place"] == "golf-place", || {
        format!(
            "the report names place {}",
            report["board"]["labgrid_place"]
        )
    })?;
    // The outlet of this place's group, off then on, and nothing else of it.
    let relay = format!("/relay/{}/", group + 1);
    let switched = lab.pdu_requests(&relay);
    check(
        switched == [format!("{relay}0"), format!("{relay}1")],
        || format!("the PDU saw {switched:?} on {relay}"),
    )?;
    let holder = holder_of(&cfg)?;
    check(holder.is_none(), || format!("still held by {holder:?}"))
}

// ---- the lab: programs, processes, ptys ----

/// Where the programs are, or why the trials are ignored.
struct Tools {
    client: PathBuf,
    coordinator: PathBuf,
    exporter: PathBuf,
    ser2net_dir: PathBuf,
}

fn find(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::var_os("HILT_LABGRID_BIN")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::split_paths(&path))
        .chain(extra.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn tools() -> Result<Tools, String> {
    let labgrid = |n: &str| find(n, &[]);
    let (Some(client), Some(coordinator), Some(exporter)) = (
        labgrid("labgrid-client"),
        labgrid("labgrid-coordinator"),
        labgrid("labgrid-exporter"),
    ) else {
        return Err(
            "labgrid not installed: labgrid-client, -coordinator and -exporter not all found \
                    in HILT_LABGRID_BIN or PATH (pip install labgrid==26.0.1)"
                .into(),
        );
    };
    let ser2net = find("ser2net", &["/usr/sbin", "/usr/local/sbin", "/sbin"])
        .ok_or("ser2net not installed (apt-get install ser2net); labgrid's exporter needs it")?;
    Ok(Tools {
        client,
        coordinator,
        exporter,
        ser2net_dir: ser2net.parent().ok_or("ser2net path")?.to_path_buf(),
    })
}

/// Started on the first trial that needs it, shared by all, stopped by `main` after the last.
static LAB: Mutex<Option<Result<Arc<Lab>, String>>> = Mutex::new(None);

fn with_lab(body: LabTrial) -> Result<Completion, Failed> {
    let tools = match tools() {
        Ok(t) => t,
        Err(reason) => return Ok(Completion::ignored_with(reason)),
    };
    let lab = {
        let mut slot = LAB.lock().map_err(|_| "lab lock poisoned")?;
        slot.get_or_insert_with(|| {
            Lab::start(tools)
                .map(Arc::new)
                .map_err(|e| e.message().unwrap_or("failed").to_string())
        })
        .clone()
        .map_err(|e| format!("starting labgrid: {e}"))?
    };
    body(&lab)?;
    Ok(Completion::Completed)
}

/// A process in its own group; the group is killed and the process reaped on drop.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn start(mut cmd: Command, log: PathBuf) -> Result<Proc, Failed> {
        let out = File::create(&log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0)
            .spawn()?;
        Ok(Proc { child, log })
    }

    fn said(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn alive(&mut self) -> Result<(), Failed> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(format!("exited ({status}): {}", self.said()).into()),
        }
    }

    /// Its exit status, within `limit` (else an error; the group is killed when dropped).
    fn wait_within(&mut self, limit: Duration) -> Result<std::process::ExitStatus, Failed> {
        let until = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > until {
                return Err(format!("still running after {limit:?}: {}", self.said()).into());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` to the process alone (not its group).
    fn signal(&self, signal: Signal) -> Result<(), Failed> {
        let pid = i32::try_from(self.child.id())?;
        kill(Pid::from_raw(pid), signal)?;
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // The exporter's ser2net children are in its group.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pseudo-terminal: the test plays the device on the master; the exporter serves the slave.
struct Pty {
    master: Mutex<File>,
    _slave: OwnedFd,
    path: PathBuf,
}

impl Pty {
    fn new() -> Result<Pty, Failed> {
        let pair = nix::pty::openpty(None, None)?;
        let path = nix::unistd::ttyname(&pair.slave)?;
        Ok(Pty {
            master: Mutex::new(File::from(pair.master)),
            _slave: pair.slave,
            path,
        })
    }

    fn write(&self, data: &[u8]) -> Result<(), Failed> {
        self.master
            .lock()
            .map_err(|_| "pty lock")?
            .write_all(data)?;
        Ok(())
    }

    fn read_until(&self, marker: &[u8]) -> Result<(), Failed> {
        let mut master = self.master.lock().map_err(|_| "pty lock")?;
        let mut got = Vec::new();
        let until = Instant::now() + WITHIN;
        while !contains(&got, marker) {
            check(Instant::now() < until, || {
                format!("the device got only {:?}", String::from_utf8_lossy(&got))
            })?;
            let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::from(200u16))? > 0 {
                let mut buf = [0u8; 4096];
                let n = master.read(&mut buf)?;
                got.extend_from_slice(&buf[..n]);
            }
        }
        Ok(())
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn read_port_until(port: &mut impl Port, marker: &[u8]) -> Result<(), Failed> {
    let mut got = Vec::new();
    let until = Instant::now() + WITHIN;
    while !contains(&got, marker) {
        check(Instant::now() < until, || {
            format!("hilt got only {:?}", String::from_utf8_lossy(&got))
        })?;
        let mut buf = [0u8; 4096];
        let n = port.read_timeout(&mut buf, Duration::from_millis(200))?;
        got.extend_from_slice(&buf[..n]);
    }
    Ok(())
}

/// What one `labgrid-client` call said.
struct Said {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Said {
    fn ok(self) -> Result<Said, Failed> {
        if self.ok {
            Ok(self)
        } else {
            Err(format!("labgrid-client failed: {}{}", self.stdout, self.stderr).into())
        }
    }
}

struct Lab {
    // Declared first, dropped first: the exporter goes before its coordinator.
    exporter: Mutex<Proc>,
    _coordinator: Proc,
    tools: Tools,
    address: String,
    ptys: Vec<Pty>,
    pdu_port: u16,
    pdu_seen: Seen,
    dir: tempfile::TempDir,
}

impl Lab {
    fn start(tools: Tools) -> Result<Lab, Failed> {
        let dir = tempfile::tempdir()?;
        let ptys = (0..GROUPS)
            .map(|_| Pty::new())
            .collect::<Result<Vec<_>, _>>()?;
        let (pdu_port, pdu_seen) = start_pdu()?;
        let address = format!("127.0.0.1:{}", free_port()?);

        // The coordinator keeps its places in its working directory: a temporary one.
        let mut cmd = Command::new(&tools.coordinator);
        cmd.arg("-l").arg(&address).current_dir(dir.path());
        let mut coordinator = Proc::start(cmd, dir.path().join("coordinator.log"))?;
        wait_for(
            || Ok(TcpStream::connect(&address).is_ok()),
            || {
                format!(
                    "coordinator did not listen on {address}: {}",
                    coordinator.said()
                )
            },
        )?;
        coordinator.alive()?;

        let config = dir.path().join("exporter.yaml");
        std::fs::write(&config, exporter_config(&ptys, pdu_port))?;
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(
            std::iter::once(tools.ser2net_dir.clone()).chain(std::env::split_paths(&path)),
        )?;
        let mut cmd = Command::new(&tools.exporter);
        cmd.args(["-c", &address, "-n", EXPORTER, "--hostname", "127.0.0.1"])
            .arg(&config)
            .env("PATH", path)
            .current_dir(dir.path());
        let exporter = Proc::start(cmd, dir.path().join("exporter.log"))?;
        let lab = Lab {
            exporter: Mutex::new(exporter),
            _coordinator: coordinator,
            tools,
            address,
            ptys,
            pdu_port,
            pdu_seen,
            dir,
        };
        lab.wait_for_resources()?;
        Ok(lab)
    }

    /// Until the coordinator lists every group's serial port.
    fn wait_for_resources(&self) -> Result<(), Failed> {
        let wanted: Vec<String> = (0..GROUPS)
            .map(|g| format!("{EXPORTER}/g{g}/NetworkSerialPort"))
            .collect();
        let until = Instant::now() + WITHIN;
        loop {
            self.exporter.lock().map_err(|_| "lock")?.alive()?;
            let listed = self.client(&[], &["resources"])?.stdout;
            if wanted.iter().all(|w| listed.contains(w.as_str())) {
                return Ok(());
            }
            if Instant::now() > until {
                let said = self.exporter.lock().map(|e| e.said()).unwrap_or_default();
                let msg = format!("exporter's resources did not appear ({listed:?}): {said}");
                return Err(msg.into());
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    fn config(&self, place: &str) -> PlaceConfig {
        PlaceConfig {
            coordinator: Some(self.address.clone()),
            client: self.tools.client.clone(),
            acquire_timeout: Duration::from_secs(10),
            command_timeout: WITHIN,
            ..PlaceConfig::new(place)
        }
    }

    /// A place matching exporter group `group`, made the way a lab admin does.
    fn new_place(&self, name: &str, group: usize) -> Result<PlaceConfig, Failed> {
        self.client(&[], &["-p", name, "create"])?.ok()?;
        let pattern = format!("{EXPORTER}/g{group}/*");
        self.client(&[], &["-p", name, "add-match", &pattern])?
            .ok()?;
        Ok(self.config(name))
    }

    /// Runs `labgrid-client -x COORD ARGS…` with extra environment, bounded by `WITHIN`.
    fn client(&self, env: &[(&str, &str)], args: &[&str]) -> Result<Said, Failed> {
        let out = tempfile::NamedTempFile::new_in(self.dir.path())?;
        let err = tempfile::NamedTempFile::new_in(self.dir.path())?;
        let mut cmd = Command::new(&self.tools.client);
        cmd.arg("-x")
            .arg(&self.address)
            .args(args)
            .env_remove("LG_ENV");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(out.reopen()?)
            .stderr(err.reopen()?)
            .process_group(0)
            .spawn()?;
        let until = Instant::now() + WITHIN;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("labgrid-client {args:?} hung").into());
            }
            thread::sleep(Duration::from_millis(20));
        };
        Ok(Said {
            ok: status.success(),
            stdout: std::fs::read_to_string(out.path())?,
            stderr: std::fs::read_to_string(err.path())?,
        })
    }

    /// The request paths the power outlet saw that start with `prefix` (one relay's).
    fn pdu_requests(&self, prefix: &str) -> Vec<String> {
        self.pdu_seen
            .lock()
            .map(|s| {
                s.iter()
                    .filter(|p| p.starts_with(prefix))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn exporter_config(ptys: &[Pty], pdu_port: u16) -> String {
    let mut yaml = String::new();
    for (g, pty) in ptys.iter().enumerate() {
        // The boards' groups name their serial port (labgrid's `NAME: {cls: CLASS, …}`).
        let serial = if g < BOARD_GROUPS {
            "RawSerialPort:\n".to_string()
        } else {
            format!("'{CONSOLE_RESOURCE}':\n    cls: RawSerialPort\n")
        };
        yaml.push_str(&format!(
            "g{g}:\n  {serial}    port: {}\n    speed: 115200\n  NetworkPowerPort:\n    model: simplerest\n    host: 'http://127.0.0.1:{pdu_port}/relay/{{index}}/{{value}}'\n    index: {}\n",
            pty.path.display(),
            g + 1
        ));
    }
    yaml
}

/// The request paths the power outlet saw.
type Seen = Arc<Mutex<Vec<String>>>;

/// A relay with a plain web interface, as labgrid's `simplerest` power back-end drives it (GET
/// `/relay/INDEX/0|1`): every request path is recorded and answered 200. The thread lives as long
/// as the test process.
fn start_pdu() -> Result<(u16, Seen), Failed> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let _ = answer(conn, &record);
        }
    });
    Ok((port, seen))
}

fn answer(conn: TcpStream, seen: &Mutex<Vec<String>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if let Some(path) = line.split_whitespace().nth(1) {
        seen.lock()
            .map_err(|_| std::io::ErrorKind::Other)?
            .push(path.to_string());
    }
    // The headers, up to the blank line.
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
    }
    (&conn).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

fn free_port() -> Result<u16, Failed> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for(
    mut ready: impl FnMut() -> Result<bool, Failed>,
    why: impl FnOnce() -> String,
) -> Result<(), Failed> {
    let until = Instant::now() + WITHIN;
    while !ready()? {
        if Instant::now() > until {
            return Err(why().into());
        }
        thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
