//! Every exit code `hilt` uses, in one table (cargo-nextest's `NextestExitCode` is the model). The README's
//! "Exit codes" table is this one; each code has a test in `tests/exit_codes.rs`.

/// 0: `run`: every in-scope mandatory provision passed; `verify`: the report is authentic and intact;
/// `selftest`: the suite tells the reference board from every defect.
pub const OK: u8 = 0;
/// 1: `run`: a mandatory provision FAILed; `verify`: the report was forged or altered; `selftest`: the
/// suite cannot tell a defect apart.
pub const FAILED: u8 = 1;
/// 2: bad input or usage: a malformed profile or scenario (named by file:line:col), a filter that
/// selects no case, a missing, unreadable or non-JSON envelope, a bad key, an unwritable output path.
pub const USAGE: u8 = 2;
/// 3: the run could not decide every case (ERROR, NOT_TESTED or INCONCLUSIVE), or the bench failed.
pub const UNDECIDED: u8 = 3;
/// 130: interrupted by SIGINT (128 + 2), after a signed partial report was written.
pub const SIGINT: u8 = 130;
/// 143: interrupted by SIGTERM (128 + 15), after a signed partial report was written.
pub const SIGTERM: u8 = 143;

/// The exit code for a run stopped by signal number `signal`.
pub fn interrupted(signal: usize) -> u8 {
    match signal as i32 {
        nix::libc::SIGTERM => SIGTERM,
        _ => SIGINT,
    }
}
