//! Sessions, subscriptions and retained messages. Lock order is always router, then one session: a
//! publish fans out under the router lock into each matching session's bounded queue and wakes the
//! connection that owns it.

use crate::stats::{Counters, bump};
use crate::topic::matches;
use crate::wire::{Message, SubRequest};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Most messages waiting for one session; beyond it new messages are dropped (and counted).
pub const MAX_QUEUED: usize = 100_000;

#[derive(Debug, Clone)]
pub struct Queued {
    pub msg: Arc<Message>,
    pub qos: u8,
    pub retain: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// What an in-flight delivery awaits.
pub enum Stage {
    /// QoS 1 sent, awaiting PUBACK.
    Puback,
    /// QoS 2 sent, awaiting PUBREC.
    Pubrec,
    /// PUBREL sent, awaiting PUBCOMP.
    Pubcomp,
}

#[derive(Debug)]
pub struct Inflight {
    pub item: Queued,
    pub stage: Stage,
}

/// The connection currently attached to a session and how to wake it.
pub struct Owner {
    pub id: u64,
    pub wake: Arc<Notify>,
}

#[derive(Default)]
pub struct SessionState {
    pub queue: VecDeque<Queued>,
    /// Server-to-client QoS>0 deliveries not yet completed, by packet id.
    pub inflight: BTreeMap<u16, Inflight>,
    /// Client-to-server QoS 2 packet ids between PUBLISH and PUBREL (so a resend is not routed twice).
    pub incoming_qos2: HashSet<u16>,
    pub next_pkid: u16,
    pub owner: Option<Owner>,
    expiry: u32,
    disconnected_at: Option<Instant>,
}

impl SessionState {
    /// A free packet id; the caller keeps `inflight` below 65,535 entries so one exists.
    pub fn alloc_pkid(&mut self) -> u16 {
        loop {
            self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
            if !self.inflight.contains_key(&self.next_pkid) {
                return self.next_pkid;
            }
        }
    }

    pub fn owned_by(&self, id: u64) -> bool {
        self.owner.as_ref().is_some_and(|o| o.id == id)
    }

    fn expired(&self) -> bool {
        self.owner.is_none()
            && self
                .disconnected_at
                .is_some_and(|t| t.elapsed() >= Duration::from_secs(u64::from(self.expiry)))
    }
}

pub struct Session {
    pub client_id: String,
    state: Mutex<SessionState>,
}

impl Session {
    pub fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug, Clone)]
struct Subscription {
    filter: String,
    qos: u8,
    no_local: bool,
    retain_as_published: bool,
}

struct Entry {
    session: Arc<Session>,
    subs: Vec<Subscription>,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Entry>,
    retained: BTreeMap<String, Arc<Message>>,
}

pub struct Router {
    inner: Mutex<Inner>,
    counters: Arc<Counters>,
}

fn push(st: &mut SessionState, q: Queued, counters: &Counters) {
    if st.queue.len() >= MAX_QUEUED {
        bump(&counters.dropped);
        tracing::warn!("session queue full: message dropped");
        return;
    }
    st.queue.push_back(q);
    if let Some(o) = &st.owner {
        o.wake.notify_one();
    }
}

impl Router {
    pub fn new(counters: Arc<Counters>) -> Router {
        Router {
            inner: Mutex::new(Inner::default()),
            counters,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Attach connection `owner` to the session `client_id`, resuming it unless `clean` (or expired).
    /// A connection already attached is woken to find it has been taken over. Returns the session and
    /// whether it was resumed ("session present").
    pub fn attach(
        &self,
        client_id: &str,
        clean: bool,
        expiry: u32,
        owner: Owner,
    ) -> (Arc<Session>, bool) {
        let mut inner = self.lock();
        let resumable = inner
            .sessions
            .get(client_id)
            .is_some_and(|e| !clean && !e.session.lock().expired());
        if let Some(e) = inner.sessions.get(client_id)
            && let Some(old) = e.session.lock().owner.take()
        {
            old.wake.notify_one();
        }
        let resumed = if resumable {
            inner.sessions.get(client_id).map(|e| e.session.clone())
        } else {
            None
        };
        let session = match resumed {
            Some(s) => s,
            None => {
                let s = Arc::new(Session {
                    client_id: client_id.to_string(),
                    state: Mutex::new(SessionState::default()),
                });
                inner.sessions.insert(
                    client_id.to_string(),
                    Entry {
                        session: s.clone(),
                        subs: Vec::new(),
                    },
                );
                s
            }
        };
        {
            let mut st = session.lock();
            st.owner = Some(owner);
            st.expiry = expiry;
            st.disconnected_at = None;
        }
        (session, resumable)
    }

    /// Detach connection `id`; a session with expiry 0 ends here. Returns false if the session had
    /// already been taken over by another connection.
    pub fn detach(&self, session: &Arc<Session>, id: u64) -> bool {
        let mut inner = self.lock();
        let mut st = session.lock();
        if !st.owned_by(id) {
            return false;
        }
        st.owner = None;
        st.disconnected_at = Some(Instant::now());
        if st.expiry == 0 {
            drop(st);
            if inner
                .sessions
                .get(&session.client_id)
                .is_some_and(|e| Arc::ptr_eq(&e.session, session))
            {
                inner.sessions.remove(&session.client_id);
            }
        }
        true
    }

    /// Add granted subscriptions and queue the retained messages each asks for.
    pub fn subscribe(&self, session: &Arc<Session>, reqs: &[SubRequest]) {
        let mut inner = self.lock();
        let Inner { sessions, retained } = &mut *inner;
        let Some(entry) = sessions
            .get_mut(&session.client_id)
            .filter(|e| Arc::ptr_eq(&e.session, session))
        else {
            return;
        };
        let mut st = session.lock();
        for r in reqs {
            let sub = Subscription {
                filter: r.filter.clone(),
                qos: r.qos,
                no_local: r.no_local,
                retain_as_published: r.retain_as_published,
            };
            let existed = match entry.subs.iter_mut().find(|s| s.filter == r.filter) {
                Some(s) => {
                    *s = sub;
                    true
                }
                None => {
                    entry.subs.push(sub);
                    false
                }
            };
            let send_retained = match r.retain_handling {
                0 => true,
                1 => !existed,
                _ => false,
            };
            if send_retained {
                for msg in retained.values().filter(|m| matches(&m.topic, &r.filter)) {
                    let q = Queued {
                        msg: msg.clone(),
                        qos: msg.qos.min(r.qos),
                        retain: true,
                    };
                    push(&mut st, q, &self.counters);
                }
            }
        }
    }

    /// Remove subscriptions; for each filter, whether it existed.
    pub fn unsubscribe(&self, session: &Arc<Session>, filters: &[String]) -> Vec<bool> {
        let mut inner = self.lock();
        let Some(entry) = inner
            .sessions
            .get_mut(&session.client_id)
            .filter(|e| Arc::ptr_eq(&e.session, session))
        else {
            return vec![false; filters.len()];
        };
        filters
            .iter()
            .map(|f| {
                let before = entry.subs.len();
                entry.subs.retain(|s| &s.filter != f);
                entry.subs.len() != before
            })
            .collect()
    }

    /// Route a message from `sender` (a client id, for No Local) to every matching session, once per
    /// session at the highest QoS granted; keep it if retained. Returns how many sessions it was queued for.
    pub fn publish(&self, msg: Message, sender: &str) -> usize {
        let msg = Arc::new(msg);
        let mut inner = self.lock();
        if msg.retain {
            if msg.payload.is_empty() {
                inner.retained.remove(&msg.topic);
            } else {
                inner.retained.insert(msg.topic.clone(), msg.clone());
            }
        }
        let mut queued = 0;
        for (client_id, entry) in &inner.sessions {
            let mut best: Option<(u8, bool)> = None;
            for s in entry.subs.iter().filter(|s| matches(&msg.topic, &s.filter)) {
                if s.no_local && client_id == sender {
                    continue;
                }
                let qos = msg.qos.min(s.qos);
                let retain = s.retain_as_published && msg.retain;
                best = Some(best.map_or((qos, retain), |(q, r)| (q.max(qos), r || retain)));
            }
            let Some((qos, retain)) = best else { continue };
            let mut st = entry.session.lock();
            // Offline sessions keep QoS>0 messages only, and expired ones nothing.
            if st.owner.is_none() && (qos == 0 || st.expired()) {
                continue;
            }
            push(
                &mut st,
                Queued {
                    msg: msg.clone(),
                    qos,
                    retain,
                },
                &self.counters,
            );
            queued += 1;
        }
        queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn owner(id: u64) -> Owner {
        Owner {
            id,
            wake: Arc::new(Notify::new()),
        }
    }

    fn msg(topic: &str, qos: u8, retain: bool) -> Message {
        Message {
            topic: topic.into(),
            payload: Bytes::from_static(b"x"),
            qos,
            retain,
            props: None,
        }
    }

    fn sub(filter: &str, qos: u8) -> SubRequest {
        SubRequest {
            filter: filter.into(),
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: 0,
        }
    }

    #[test]
    fn routes_once_per_session_at_the_highest_qos() {
        let r = Router::new(Arc::default());
        let (s, present) = r.attach("a", true, 0, owner(1));
        assert!(!present);
        r.subscribe(&s, &[sub("t/#", 0), sub("t/+", 2)]);
        assert_eq!(r.publish(msg("t/1", 1, false), "b"), 1);
        let st = s.lock();
        assert_eq!(st.queue.len(), 1);
        assert_eq!(st.queue[0].qos, 1);
    }

    #[test]
    fn retained_messages_reach_new_subscribers_and_empty_payload_clears_them() {
        let r = Router::new(Arc::default());
        r.publish(msg("r/1", 1, true), "p");
        let (s, _) = r.attach("a", true, 0, owner(1));
        r.subscribe(&s, &[sub("r/#", 1)]);
        assert!(s.lock().queue.front().is_some_and(|q| q.retain));
        let mut clear = msg("r/1", 0, true);
        clear.payload = Bytes::new();
        r.publish(clear, "p");
        let (s2, _) = r.attach("b", true, 0, owner(2));
        r.subscribe(&s2, &[sub("r/#", 1)]);
        assert!(s2.lock().queue.is_empty());
    }

    #[test]
    fn persistent_sessions_resume_and_queue_while_offline() {
        let r = Router::new(Arc::default());
        let (s, _) = r.attach("a", false, u32::MAX, owner(1));
        r.subscribe(&s, &[sub("t", 1)]);
        assert!(r.detach(&s, 1));
        assert_eq!(r.publish(msg("t", 1, false), "p"), 1);
        assert_eq!(
            r.publish(msg("t", 0, false), "p"),
            0,
            "QoS 0 is not queued for offline sessions"
        );
        let (s2, present) = r.attach("a", false, u32::MAX, owner(2));
        assert!(present);
        assert_eq!(s2.lock().queue.len(), 1);
        let (_, present) = r.attach("a", true, 0, owner(3));
        assert!(!present, "clean start discards the session");
    }

    #[test]
    fn takeover_wakes_and_disowns_the_old_connection() {
        let r = Router::new(Arc::default());
        let o1 = owner(1);
        let wake = o1.wake.clone();
        let (s, _) = r.attach("a", false, 10, o1);
        let (s2, _) = r.attach("a", false, 10, owner(2));
        assert!(Arc::ptr_eq(&s, &s2));
        assert!(
            !r.detach(&s, 1),
            "the old connection no longer owns the session"
        );
        // The wake-up was stored as a permit.
        assert!(woken(wake.notified()));
    }

    fn woken(f: tokio::sync::futures::Notified<'_>) -> bool {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(100), f)
                .await
                .is_ok()
        })
    }

    #[test]
    fn full_queues_drop_and_count() {
        let counters = Arc::new(Counters::default());
        let r = Router::new(counters.clone());
        let (s, _) = r.attach("a", true, 0, owner(1));
        r.subscribe(&s, &[sub("t", 0)]);
        for _ in 0..MAX_QUEUED + 3 {
            r.publish(msg("t", 0, false), "p");
        }
        assert_eq!(s.lock().queue.len(), MAX_QUEUED);
        assert_eq!(counters.snapshot().dropped, 3);
    }
}
