//! Password storage (salted PBKDF2) and the login rate-limit policy.

use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Iterations used for new hashes. Well above the 10,000 floor, yet cheap
/// enough that a debug build still answers a login in well under a second.
pub const PBKDF2_ITERATIONS: u32 = 20_000;
/// Images holding weaker hashes are refused as corrupt.
pub const MIN_ITERATIONS: u32 = 10_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
const ALGORITHM: &str = "pbkdf2-hmac-sha256";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no random numbers available: {0}")]
    Random(String),
    #[error("invalid password record: {0}")]
    InvalidRecord(String),
}

/// A salted, slow hash of a password: the only form a password is stored in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordHash {
    algorithm: String,
    iterations: u32,
    #[serde(with = "hex_bytes")]
    salt: Vec<u8>,
    #[serde(with = "hex_bytes")]
    hash: Vec<u8>,
}

// Keeps hashes out of logs: they are offline-crackable material.
impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHash")
            .field("algorithm", &self.algorithm)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl PasswordHash {
    /// Hashes `password` with a fresh random salt.
    pub fn new(password: &[u8]) -> Result<Self, AuthError> {
        Self::with_iterations(password, PBKDF2_ITERATIONS)
    }

    pub fn with_iterations(password: &[u8], iterations: u32) -> Result<Self, AuthError> {
        let mut salt = vec![0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(|e| AuthError::Random(e.to_string()))?;
        let mut hash = vec![0u8; HASH_LEN];
        pbkdf2::pbkdf2_hmac::<Sha256>(password, &salt, iterations, &mut hash);
        Ok(Self {
            algorithm: ALGORITHM.to_string(),
            iterations,
            salt,
            hash,
        })
    }

    /// Checks a record read from flash before it is trusted.
    pub fn validate(&self) -> Result<(), AuthError> {
        if self.algorithm != ALGORITHM {
            return Err(AuthError::InvalidRecord(format!(
                "unknown algorithm '{}'",
                self.algorithm
            )));
        }
        if self.iterations < MIN_ITERATIONS {
            return Err(AuthError::InvalidRecord(format!(
                "{} iterations is below the minimum {MIN_ITERATIONS}",
                self.iterations
            )));
        }
        if self.salt.len() < SALT_LEN || self.hash.len() != HASH_LEN {
            return Err(AuthError::InvalidRecord("bad salt or hash length".into()));
        }
        Ok(())
    }

    /// Whether `password` matches, compared in constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        let mut candidate = vec![0u8; self.hash.len()];
        pbkdf2::pbkdf2_hmac::<Sha256>(password, &self.salt, self.iterations, &mut candidate);
        constant_time_eq(&candidate, &self.hash)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

/// Persisted login-failure state: kept in flash so a reboot does not reset it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginCounters {
    /// Consecutive failed attempts since the last success or lockout expiry.
    pub failures: u32,
    /// Wall-clock end of the current lockout in Unix ms; 0 when not locked.
    pub locked_until_ms: u64,
}

/// Brute-force protection settings. `max_failures == 0` switches lockout off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitPolicy {
    pub max_failures: u32,
    pub lockout_ms: u64,
    pub failure_delay_ms: u64,
}

impl Default for RateLimitPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            lockout_ms: 30_000,
            failure_delay_ms: 1_000,
        }
    }
}

/// Whether a login attempt may be checked at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    Locked { remaining_ms: u64 },
}

impl RateLimitPolicy {
    /// No lockout, no delay (the `no-login-rate-limit` defect).
    pub const OFF: Self = Self {
        max_failures: 0,
        lockout_ms: 0,
        failure_delay_ms: 0,
    };

    /// Decides whether an attempt at `now_ms` may be checked; ends an expired lockout.
    pub fn gate(&self, counters: &mut LoginCounters, now_ms: u64) -> Gate {
        if counters.locked_until_ms == 0 {
            return Gate::Open;
        }
        if self.max_failures == 0 || now_ms >= counters.locked_until_ms {
            *counters = LoginCounters::default();
            return Gate::Open;
        }
        // Clamp so a clock stepped backwards (or a shorter configured lockout)
        // cannot lock the unit for longer than one lockout period.
        let remaining_ms = (counters.locked_until_ms - now_ms).min(self.lockout_ms);
        counters.locked_until_ms = now_ms + remaining_ms;
        Gate::Locked { remaining_ms }
    }

    /// Records a failed attempt; returns how long to wait before answering.
    pub fn record_failure(&self, counters: &mut LoginCounters, now_ms: u64) -> u64 {
        if self.max_failures == 0 {
            return self.failure_delay_ms;
        }
        counters.failures = counters.failures.saturating_add(1);
        if counters.failures >= self.max_failures && self.lockout_ms > 0 {
            counters.locked_until_ms = now_ms.saturating_add(self.lockout_ms);
        }
        self.failure_delay_ms
    }

    pub fn record_success(&self, counters: &mut LoginCounters) {
        *counters = LoginCounters::default();
    }
}

/// Whole seconds shown to the user, rounded up so "0 s" is never printed.
pub fn remaining_secs(remaining_ms: u64) -> u64 {
    remaining_ms.div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_right_password() {
        let h = PasswordHash::new(b"correct horse").unwrap();
        h.validate().unwrap();
        assert!(h.verify(b"correct horse"));
        assert!(!h.verify(b"correct hors"));
        assert!(!h.verify(b""));
        let other = PasswordHash::new(b"correct horse").unwrap();
        assert_ne!(h, other, "salts must differ");
        let dbg = format!("{h:?}");
        assert!(!dbg.contains(&hex::encode(&h.hash)), "{dbg}");
    }

    #[test]
    fn weak_records_are_refused() {
        let mut h = PasswordHash::new(b"pw").unwrap();
        h.iterations = 1000;
        assert!(h.validate().is_err());
        let mut h = PasswordHash::new(b"pw").unwrap();
        h.algorithm = "md5".into();
        assert!(h.validate().is_err());
    }

    #[test]
    fn lockout_after_max_failures_then_expiry() {
        let p = RateLimitPolicy {
            max_failures: 3,
            lockout_ms: 1500,
            failure_delay_ms: 50,
        };
        let mut c = LoginCounters::default();
        for _ in 0..2 {
            assert_eq!(p.gate(&mut c, 1000), Gate::Open);
            assert_eq!(p.record_failure(&mut c, 1000), 50);
        }
        assert_eq!(c.locked_until_ms, 0);
        p.record_failure(&mut c, 1000);
        assert_eq!(p.gate(&mut c, 1100), Gate::Locked { remaining_ms: 1400 });
        assert_eq!(p.gate(&mut c, 2499), Gate::Locked { remaining_ms: 1 });
        assert_eq!(p.gate(&mut c, 2500), Gate::Open);
        assert_eq!(c, LoginCounters::default());
    }

    #[test]
    fn lockout_is_clamped_and_success_resets() {
        let p = RateLimitPolicy::default();
        let mut c = LoginCounters {
            failures: 5,
            locked_until_ms: 10_000_000,
        };
        assert_eq!(
            p.gate(&mut c, 0),
            Gate::Locked {
                remaining_ms: 30_000
            }
        );
        let mut c = LoginCounters {
            failures: 4,
            locked_until_ms: 0,
        };
        p.record_success(&mut c);
        assert_eq!(c.failures, 0);
        assert_eq!(remaining_secs(1), 1);
        assert_eq!(remaining_secs(1000), 1);
        assert_eq!(remaining_secs(1001), 2);
    }

    #[test]
    fn off_policy_never_locks_or_delays() {
        let mut c = LoginCounters::default();
        for _ in 0..100 {
            assert_eq!(RateLimitPolicy::OFF.gate(&mut c, 5), Gate::Open);
            assert_eq!(RateLimitPolicy::OFF.record_failure(&mut c, 5), 0);
        }
    }
}
