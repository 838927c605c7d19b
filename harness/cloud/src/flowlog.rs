//! The flow log: every MQTT connect/subscribe/publish and every HTTP request the mock cloud sees, with
//! who sent it, over what, and the payload's digest. Scenario checks query it; payloads are kept as
//! evidence. Shared by async servers and the synchronous harness, so it uses std locks and a condvar.
//! Each flow also says who made it ([`Actor`]), so a check can tell what a device did from what a user
//! or the mock backend itself did on its behalf.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use hilt_model::flow_vocab::{FlowKind, Protocol, ServerCert};

/// Who made an exchange: the device under test, a companion-app user, or the mock cloud's own backend
/// (e.g. the erasure notices it propagates). Checks use it so the mock's own work never counts as the
/// device's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    Device,
    User,
    Backend,
}

impl Actor {
    /// The log's word for it, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Device => "device",
            Actor::User => "user",
            Actor::Backend => "backend",
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recorded exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub seq: u64,
    /// Wall-clock time, RFC 3339 with microseconds.
    pub time: String,
    /// Microseconds since the log started (monotonic): use this to ask "after T".
    pub t_us: u64,
    pub protocol: Protocol,
    /// `connect`, `connect-refused`, `subscribe`, `publish`, `disconnect`, `tls-failed`, `request`, …
    pub kind: FlowKind,
    pub client_id: Option<String>,
    /// The authenticated identity (MQTT username or client-certificate CN), if any.
    pub identity: Option<String>,
    pub tls: bool,
    /// On TLS links, which server certificate the cloud presented: `trusted` or `untrusted` (the MITM
    /// fault). `None` on plain links and on refusals made before any handshake.
    pub server_cert: Option<ServerCert>,
    pub topic: Option<String>,
    pub path: Option<String>,
    pub method: Option<String>,
    pub status: Option<u16>,
    pub peer: Option<String>,
    pub payload_len: u64,
    pub payload_sha256: String,
    pub detail: Option<String>,
    /// Who made the exchange; `None` when nobody authenticated (anonymous or refused). Absent from logs
    /// written before it existed, hence the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
}

/// What a server fills in; the log adds sequence number, times and the payload digest. Start from
/// [`NewFlow::new`]: there is no default kind.
#[derive(Debug, Clone)]
pub struct NewFlow {
    pub protocol: Protocol,
    pub kind: FlowKind,
    pub client_id: Option<String>,
    pub identity: Option<String>,
    pub tls: bool,
    /// Only once a TLS handshake was attempted with that certificate.
    pub server_cert: Option<ServerCert>,
    pub topic: Option<String>,
    pub path: Option<String>,
    pub method: Option<String>,
    pub status: Option<u16>,
    pub peer: Option<String>,
    pub detail: Option<String>,
    /// Who made the exchange, if anyone authenticated.
    pub actor: Option<Actor>,
}

impl NewFlow {
    /// A flow of `kind` over `protocol`, every other field empty (plain link, no certificate, no actor).
    pub fn new(protocol: Protocol, kind: FlowKind) -> NewFlow {
        NewFlow {
            protocol,
            kind,
            client_id: None,
            identity: None,
            tls: false,
            server_cert: None,
            topic: None,
            path: None,
            method: None,
            status: None,
            peer: None,
            detail: None,
            actor: None,
        }
    }
}

/// Most payload bytes kept in memory for checks; beyond it only digests (and the payload files) remain.
const MEMORY_LIMIT: usize = 64 * 1024 * 1024;

struct State {
    flows: Vec<Flow>,
    payloads: HashMap<String, Vec<u8>>,
    payload_bytes: usize,
    jsonl: Option<File>,
    payload_dir: Option<PathBuf>,
}

/// A cheaply cloneable handle on one log.
#[derive(Clone)]
pub struct FlowLog {
    inner: Arc<(Mutex<State>, Condvar)>,
    start: Instant,
}

impl Default for FlowLog {
    fn default() -> Self {
        Self::new()
    }
}

impl FlowLog {
    pub fn new() -> FlowLog {
        let state = State {
            flows: Vec::new(),
            payloads: HashMap::new(),
            payload_bytes: 0,
            jsonl: None,
            payload_dir: None,
        };
        FlowLog {
            inner: Arc::new((Mutex::new(state), Condvar::new())),
            start: Instant::now(),
        }
    }

    /// Also append every flow to `path` as one JSON object per line, flushed as it is recorded.
    pub fn append_jsonl(&self, path: &Path) -> std::io::Result<()> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        self.lock().jsonl = Some(f);
        Ok(())
    }

    /// Also keep every distinct payload as `dir/<sha256>`.
    pub fn keep_payloads(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        self.lock().payload_dir = Some(dir.to_path_buf());
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Microseconds since the log started.
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    pub fn record(&self, f: NewFlow, payload: &[u8]) -> Flow {
        let sha = hex::encode(Sha256::digest(payload));
        let t_us = self.now_us();
        let mut st = self.lock();
        let flow = Flow {
            seq: st.flows.len() as u64,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            t_us,
            protocol: f.protocol,
            kind: f.kind,
            client_id: f.client_id,
            identity: f.identity,
            tls: f.tls,
            server_cert: f.server_cert,
            topic: f.topic,
            path: f.path,
            method: f.method,
            status: f.status,
            peer: f.peer,
            payload_len: payload.len() as u64,
            payload_sha256: sha.clone(),
            detail: f.detail,
            actor: f.actor,
        };
        if !payload.is_empty() && !st.payloads.contains_key(&sha) {
            if let Some(dir) = &st.payload_dir
                && let Err(e) = std::fs::write(dir.join(&sha), payload)
            {
                tracing::warn!("cannot keep payload {sha}: {e}");
            }
            if st.payload_bytes + payload.len() <= MEMORY_LIMIT {
                st.payload_bytes += payload.len();
                st.payloads.insert(sha, payload.to_vec());
            }
        }
        if let Some(out) = st.jsonl.as_mut() {
            let line = serde_json::to_string(&flow).unwrap_or_default();
            if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
                tracing::warn!("cannot append to the flow log: {e}");
            }
        }
        st.flows.push(flow.clone());
        drop(st);
        self.inner.1.notify_all();
        flow
    }

    pub fn snapshot(&self) -> Vec<Flow> {
        self.lock().flows.clone()
    }

    /// Flows recorded at or after `t_us`.
    pub fn since(&self, t_us: u64) -> Vec<Flow> {
        self.lock()
            .flows
            .iter()
            .filter(|f| f.t_us >= t_us)
            .cloned()
            .collect()
    }

    /// A kept payload by digest.
    pub fn payload(&self, sha256: &str) -> Option<Vec<u8>> {
        self.lock().payloads.get(sha256).cloned()
    }

    /// Wait up to `timeout` for a flow with `seq >= from_seq` matching `pred`.
    pub fn wait_for(
        &self,
        from_seq: u64,
        timeout: Duration,
        pred: impl Fn(&Flow) -> bool,
    ) -> Option<Flow> {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if let Some(f) = st.flows.iter().skip(from_seq as usize).find(|f| pred(f)) {
                return Some(f.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            st = self
                .inner
                .1
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// The next sequence number: flows recorded from now on have `seq >=` this.
    pub fn next_seq(&self) -> u64 {
        self.lock().flows.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_digests_payloads_and_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let log = FlowLog::new();
        log.append_jsonl(&dir.path().join("flows.jsonl")).unwrap();
        log.keep_payloads(&dir.path().join("payloads")).unwrap();
        let f = log.record(
            NewFlow {
                topic: Some("t/1".into()),
                tls: true,
                server_cert: Some(ServerCert::Trusted),
                actor: Some(Actor::Device),
                ..NewFlow::new(Protocol::Mqtt, FlowKind::Publish)
            },
            b"hello",
        );
        assert_eq!(f.payload_len, 5);
        assert_eq!(f.protocol, Protocol::Mqtt);
        assert_eq!(log.payload(&f.payload_sha256).unwrap(), b"hello");
        assert!(
            dir.path()
                .join("payloads")
                .join(&f.payload_sha256)
                .is_file()
        );
        let text = std::fs::read_to_string(dir.path().join("flows.jsonl")).unwrap();
        let line = text.lines().next().unwrap();
        // The typed vocabulary keeps the log's JSON form.
        for word in [
            r#""protocol":"mqtt""#,
            r#""kind":"publish""#,
            r#""server_cert":"trusted""#,
            r#""actor":"device""#,
        ] {
            assert!(line.contains(word), "{word} in {line}");
        }
        let back: Flow = serde_json::from_str(line).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn actor_is_lowercase_and_optional_in_json() {
        for (a, word) in [
            (Actor::Device, "device"),
            (Actor::User, "user"),
            (Actor::Backend, "backend"),
        ] {
            assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{word}\""));
            assert_eq!(a.to_string(), word);
        }
        let log = FlowLog::new();
        let anon = log.record(NewFlow::new(Protocol::Http, FlowKind::Request), b"");
        let json = serde_json::to_value(&anon).unwrap();
        assert!(json.get("actor").is_none(), "{json}");
        // A line written before actors existed still reads back, as anonymous.
        let back: Flow = serde_json::from_value(json).unwrap();
        assert_eq!(back.actor, None);
    }

    #[test]
    fn wait_for_sees_flows_from_other_threads_and_times_out() {
        let log = FlowLog::new();
        let from = log.next_seq();
        let l2 = log.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            l2.record(NewFlow::new(Protocol::Mqtt, FlowKind::Publish), b"x");
        });
        let got = log.wait_for(from, Duration::from_secs(10), |f| {
            f.kind == FlowKind::Publish
        });
        assert!(got.is_some());
        t.join().unwrap();
        let none = log.wait_for(log.next_seq(), Duration::from_millis(50), |_| true);
        assert!(none.is_none());
    }
}
