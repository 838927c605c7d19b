//! Files people name that are no usable input — `/dev/zero`, a FIFO, a directory, a file over the
//! 16 MiB cap, bytes that are not UTF-8, an empty fixture — given as a board profile, a scenario, a
//! fixture or a credential file: each is refused fast, with the path in the message.

use hilt_model::LoadError;
use hilt_model::fsread::{MAX_INPUT_BYTES, ReadError, read_text};
use hilt_model::profile::BoardProfile;
use hilt_model::scenario::{Scenario, load_suite, read_fixture};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Run `f` on its own thread and fail (rather than hang the suite) if it takes more than 5 s.
fn fast<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| panic!("{what}: did not return within 5 s"))
}

/// The bad inputs, each with what the error must say about it.
struct Bad {
    _dir: tempfile::TempDir,
    cases: Vec<(PathBuf, &'static str)>,
}

fn bad_inputs() -> Bad {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("input.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let sub = dir.path().join("a-directory.toml");
    std::fs::create_dir(&sub).unwrap();
    let big = dir.path().join("big.toml");
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(17 << 20))
        .unwrap();
    let cases = vec![
        (
            PathBuf::from("/dev/zero"),
            "is not a regular file (a character device)",
        ),
        (fifo, "is not a regular file (a FIFO)"),
        (sub, "is not a regular file (a directory)"),
        (big, "is larger than the 16 MiB limit for input files"),
    ];
    Bad { _dir: dir, cases }
}

fn assert_names(err: &str, path: &Path, why: &str) {
    let shown = path.display().to_string();
    assert!(err.contains(&shown), "{err}");
    assert!(err.contains(why), "{err}");
    assert_eq!(
        err.matches(&shown).count(),
        1,
        "path said more than once: {err}"
    );
}

#[test]
fn cap_is_16_mib() {
    assert_eq!(MAX_INPUT_BYTES, 16 * 1024 * 1024);
}

#[test]
fn profiles_that_are_no_regular_file_are_refused_fast() {
    let bad = bad_inputs();
    for (path, why) in bad.cases.clone() {
        let p = path.clone();
        let err = fast("BoardProfile::load", move || {
            BoardProfile::load(&p).map(|_| ()).unwrap_err()
        });
        assert!(matches!(err, LoadError::Read(_)), "{err}");
        assert_eq!(err.to_string(), format!("{}: {why}", path.display()));
        assert!(std::error::Error::source(&err).is_none(), "{err}");
    }
}

#[test]
fn scenarios_that_are_no_regular_file_are_refused_fast() {
    let bad = bad_inputs();
    let fixtures = root().join("fixtures");
    for (path, why) in bad.cases.clone() {
        let (p, f) = (path.clone(), fixtures.clone());
        let err = fast("Scenario::load", move || {
            Scenario::load(&p, &f).map(|_| ()).unwrap_err().to_string()
        });
        assert_names(&err, &path, why);
    }
}

#[test]
fn fixtures_that_are_no_regular_file_are_refused_fast() {
    let bad = bad_inputs();
    for (path, why) in bad.cases.clone() {
        let p = path.clone();
        let err = fast("read_fixture", move || {
            read_fixture(&p).map(|_| ()).unwrap_err().to_string()
        });
        assert_names(&err, &path, why);
    }
}

#[test]
fn credential_files_that_are_no_regular_file_are_refused_fast() {
    let bad = bad_inputs();
    for (path, why) in bad.cases.clone() {
        let p = path.clone();
        let err: ReadError = fast("read_text", move || read_text(&p).unwrap_err());
        assert_eq!(err.path(), path);
        assert_eq!(err.to_string(), format!("{}: {why}", path.display()));
    }
}

/// The shipped scenario that iterates over a fixture, with its fixture directory replaced.
fn fixture_scenario(fixtures: &Path) -> Result<Scenario, LoadError> {
    let path = root().join("test-cases/password-uniqueness/console-no-universal-default.toml");
    let text = std::fs::read_to_string(path).unwrap();
    Scenario::parse(Path::new("s.toml"), &text, fixtures)
}

/// The line of the `[[step]]` header of the fixture step, where its errors are located.
fn step_line() -> usize {
    let path = root().join("test-cases/password-uniqueness/console-no-universal-default.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let id = text
        .lines()
        .position(|l| l == "id = \"common-defaults-refused\"")
        .unwrap();
    assert_eq!(text.lines().nth(id - 1), Some("[[step]]"));
    id
}

#[test]
fn a_scenario_whose_fixture_is_no_regular_file_is_a_located_error() {
    let bad = bad_inputs();
    for (path, why) in bad.cases.clone() {
        let fixtures = tempfile::tempdir().unwrap();
        let dir = fixtures.path().join("credentials");
        std::fs::create_dir(&dir).unwrap();
        let csv = dir.join("common-defaults.csv");
        std::os::unix::fs::symlink(&path, &csv).unwrap();
        let f = fixtures.path().to_path_buf();
        let err = fast("Scenario::parse", move || {
            fixture_scenario(&f).map(|_| ()).unwrap_err().to_string()
        });
        assert!(
            err.starts_with(&format!("s.toml:{}:", step_line())),
            "{err}"
        );
        assert_names(&err, &csv, why);
    }
}

#[test]
fn an_empty_fixture_is_a_located_error() {
    for content in ["", "username,password\n"] {
        let fixtures = tempfile::tempdir().unwrap();
        let dir = fixtures.path().join("credentials");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("common-defaults.csv"), content).unwrap();
        let err = fixture_scenario(fixtures.path()).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("s.toml:{}:", step_line())),
            "{err}"
        );
        assert!(err.contains("has no rows"), "{err}");
        assert!(err.contains("common-defaults.csv"), "{err}");
    }
    fixture_scenario(&root().join("fixtures")).unwrap();
}

#[test]
fn a_malformed_fixture_row_is_located_in_the_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("f.csv");
    std::fs::write(&csv, "username,password\nroot,toor\nadmin\n").unwrap();
    let err = read_fixture(&csv).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:3:", csv.display())), "{err}");
}

#[test]
fn non_utf8_input_gives_the_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.toml");
    std::fs::write(&p, b"schema = 1\n# caf\xe9\n").unwrap();
    let err = BoardProfile::load(&p).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{}: is not valid UTF-8 (byte 16)", p.display())
    );
}

#[test]
fn a_suite_with_a_fifo_scenario_is_refused_fast() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("stuck.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let d = dir.path().to_path_buf();
    let err = fast("load_suite", move || {
        load_suite(&d, &root().join("fixtures"))
            .map(|_| ())
            .unwrap_err()
            .to_string()
    });
    assert_names(&err, &fifo, "is not a regular file (a FIFO)");
}
