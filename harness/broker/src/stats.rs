//! Counters a test or the runner can read while the broker runs.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the broker's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// MQTT sessions accepted (CONNACK 0) since start.
    pub connections: u64,
    /// Sessions connected now.
    pub active: u64,
    /// Connections refused: bad credentials, outage, malformed CONNECT, limits.
    pub refused: u64,
    pub tls_failures: u64,
    /// PUBLISH packets received from clients (retransmissions of a QoS 2 message counted once).
    pub messages_in: u64,
    /// PUBLISH packets delivered to subscribers (the `deliver` count; not in the flow log).
    pub messages_out: u64,
    /// Messages dropped because a session's queue was full or the client's packet size limit was exceeded.
    pub dropped: u64,
    /// Publishes and subscriptions refused by an ACL.
    pub denied: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub connections: AtomicU64,
    pub active: AtomicU64,
    pub refused: AtomicU64,
    pub tls_failures: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub dropped: AtomicU64,
    pub denied: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub fn snapshot(&self) -> Stats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            connections: g(&self.connections),
            active: g(&self.active),
            refused: g(&self.refused),
            tls_failures: g(&self.tls_failures),
            messages_in: g(&self.messages_in),
            messages_out: g(&self.messages_out),
            dropped: g(&self.dropped),
            denied: g(&self.denied),
        }
    }
}
