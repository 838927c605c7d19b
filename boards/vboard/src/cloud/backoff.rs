//! Reconnection back-off: 200 ms doubling to a ceiling (2 s by default, `--backoff-max-ms` on the bench),
//! each delay jittered by ±20 %, so a fleet of devices that lost the cloud together does not come back
//! in one synchronised storm.

use std::time::{Duration, Instant};

pub const FIRST: Duration = Duration::from_millis(200);
/// The default ceiling. A connection that lasted as long as the ceiling starts the schedule afresh;
/// one dropped sooner (a broker that accepts and then hangs up) keeps escalating, so it cannot cause
/// a storm either.
pub const CEILING: Duration = Duration::from_secs(2);
/// Jitter as a fraction of the nominal delay, either way.
pub const JITTER: f64 = 0.2;

#[derive(Debug, Clone)]
pub struct Backoff {
    nominal: Duration,
    ceiling: Duration,
    up_since: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::with_ceiling(CEILING)
    }
}

impl Backoff {
    /// A schedule doubling from [`FIRST`] to `ceiling` (at least [`FIRST`]); a connection that lasted
    /// `ceiling` counts as stable.
    pub fn with_ceiling(ceiling: Duration) -> Self {
        Self {
            nominal: FIRST,
            ceiling: ceiling.max(FIRST),
            up_since: None,
        }
    }

    /// Notes that a connection was made at `now`.
    pub fn connected(&mut self, now: Instant) {
        self.up_since = Some(now);
    }

    /// Notes that the connection was lost (or failed) at `now`: resets after a stable one.
    pub fn lost(&mut self, now: Instant) {
        if let Some(since) = self.up_since.take()
            && now.saturating_duration_since(since) >= self.ceiling
        {
            self.reset();
        }
    }

    /// The next delay. `unit` in `[0, 1]` picks the jitter: 0 → -20 %, 0.5 → none, 1 → +20 %.
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let factor = 1.0 + JITTER * (2.0 * unit - 1.0);
        // Whole milliseconds: the bounds stay exact instead of drifting by float rounding.
        let nominal_ms = u64::try_from(self.nominal.as_millis()).unwrap_or(u64::MAX);
        let delay = Duration::from_millis((nominal_ms as f64 * factor).round() as u64);
        self.nominal = (self.nominal * 2).min(self.ceiling);
        delay
    }

    /// Back to the first step.
    pub fn reset(&mut self) {
        self.nominal = FIRST;
    }

    /// [`Backoff::next_delay`] with jitter from the OS random source (none if it fails).
    pub fn next_random(&mut self) -> Duration {
        let mut b = [0u8; 4];
        let unit = match getrandom::fill(&mut b) {
            Ok(()) => f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX),
            Err(_) => 0.5,
        };
        self.next_delay(unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn doubles_from_200ms_to_a_2s_ceiling() {
        let mut b = Backoff::default();
        let seq: Vec<_> = (0..7).map(|_| ms(b.next_delay(0.5))).collect();
        assert_eq!(seq, [200, 400, 800, 1600, 2000, 2000, 2000]);
        b.reset();
        assert_eq!(ms(b.next_delay(0.5)), 200);
    }

    #[test]
    fn only_a_stable_connection_resets_the_schedule() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert_eq!(ms(b.next_delay(0.5)), 200);
        // Up for 100 ms, then dropped: keeps escalating.
        b.connected(t0);
        b.lost(t0 + Duration::from_millis(100));
        assert_eq!(ms(b.next_delay(0.5)), 400);
        // Up for as long as the ceiling: starts again at 200 ms.
        b.connected(t0);
        b.lost(t0 + CEILING);
        assert_eq!(ms(b.next_delay(0.5)), 200);
        // A failure with no connection before it changes nothing.
        b.lost(t0 + CEILING * 10);
        assert_eq!(ms(b.next_delay(0.5)), 400);
    }

    #[test]
    fn the_ceiling_is_configurable() {
        let mut b = Backoff::with_ceiling(Duration::from_millis(1000));
        let seq: Vec<_> = (0..5).map(|_| ms(b.next_delay(0.5))).collect();
        assert_eq!(seq, [200, 400, 800, 1000, 1000]);
        assert_eq!(
            ms(Backoff::with_ceiling(Duration::ZERO).next_delay(0.5)),
            200
        );
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let mut lo = Backoff::default();
        let mut hi = Backoff::default();
        assert_eq!(ms(lo.next_delay(0.0)), 160);
        assert_eq!(ms(hi.next_delay(1.0)), 240);
        for _ in 0..10 {
            lo.next_delay(0.0);
            hi.next_delay(1.0);
        }
        assert_eq!(ms(lo.next_delay(0.0)), 1600);
        assert_eq!(ms(hi.next_delay(1.0)), 2400);
        assert_eq!(ms(Backoff::default().next_delay(f64::NAN)), 200);
        assert_eq!(ms(Backoff::default().next_delay(7.0)), 240);
    }

    #[test]
    fn random_delays_are_bounded_and_not_all_equal() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let mut b = Backoff::default();
            let d = ms(b.next_random());
            assert!((160..=240).contains(&d), "{d}");
            seen.insert(d);
        }
        // 50 draws over 81 possible values: all equal would mean no jitter at all.
        assert!(seen.len() > 1, "no jitter: {seen:?}");
    }
}
