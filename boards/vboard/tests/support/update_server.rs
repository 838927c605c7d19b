//! A tiny update server for the board's update agent: HTTPS (the run's PKI, client certificates
//! recorded) and a plain HTTP listener beside it, serving whatever offer the test sets and recording
//! every request and device notice (with the users it is addressed to). It also answers the mock cloud's privacy routes (pairing, consent
//! reports, analytics ingest, erasure notices) and records their JSON bodies, and serves each user's
//! consent history (`GET /device/users/{user}/consents`, to a device the user is paired with): the
//! decisions the devices reported and those the test makes "in the app", oldest first.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hilt_update::variant::Offer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

/// Longest request the server reads.
const MAX_REQUEST: usize = 64 * 1024;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub tls: bool,
    pub method: String,
    pub path: String,
    /// The client certificate's CN (HTTPS only).
    pub cn: Option<String>,
    pub host: Option<String>,
    /// The JSON body, `Null` when there is none or it is not JSON.
    pub json: serde_json::Value,
}

/// One `POST /device/notices`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNotice {
    /// The client certificate's CN.
    pub cn: Option<String>,
    pub text: String,
    /// The `users` it is addressed to; `None`: every user linked to the device.
    pub users: Option<Vec<String>>,
}

#[derive(Debug, Default)]
pub struct Record {
    pub requests: Vec<Seen>,
    pub notices: Vec<DeviceNotice>,
}

impl Record {
    /// Manifest requests made by the client with certificate CN `cn`.
    pub fn manifest_requests(&self, cn: &str) -> usize {
        self.requests
            .iter()
            .filter(|r| r.path.ends_with("/manifest.json") && r.cn.as_deref() == Some(cn))
            .count()
    }

    /// The JSON bodies of the `method path` requests made by the client with CN `cn`, in order.
    pub fn bodies(&self, cn: &str, method: &str, path: &str) -> Vec<serde_json::Value> {
        self.requests
            .iter()
            .filter(|r| r.cn.as_deref() == Some(cn) && r.method == method && r.path == path)
            .map(|r| r.json.clone())
            .collect()
    }

    /// Where the first `method path` request of client `cn` is in the record.
    pub fn position(&self, cn: &str, method: &str, path: &str) -> Option<usize> {
        self.requests
            .iter()
            .position(|r| r.cn.as_deref() == Some(cn) && r.method == method && r.path == path)
    }

    pub fn notice_texts(&self, cn: &str) -> Vec<String> {
        self.notices_of(cn).into_iter().map(|n| n.text).collect()
    }

    /// The notices client `cn` posted, in order.
    pub fn notices_of(&self, cn: &str) -> Vec<DeviceNotice> {
        self.notices
            .iter()
            .filter(|n| n.cn.as_deref() == Some(cn))
            .cloned()
            .collect()
    }
}

/// One decision in a consent history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEntry {
    pub granted: bool,
    /// RFC 3339, as the mock cloud writes it.
    pub time: String,
}

#[derive(Default)]
struct State {
    offer: Option<Offer>,
    /// A path answered 503, to play a party that cannot be reached.
    refused: Option<String>,
    record: Record,
    /// By user id, then purpose: the consent history, oldest first.
    consents: BTreeMap<String, BTreeMap<String, Vec<ConsentEntry>>>,
}

impl State {
    fn decide(&mut self, user: &str, purpose: &str, granted: bool) {
        let entry = ConsentEntry {
            granted,
            time: rfc3339(SystemTime::now()),
        };
        let purposes = self.consents.entry(user.to_string()).or_default();
        purposes.entry(purpose.to_string()).or_default().push(entry);
    }
}

pub struct UpdateServer {
    pub https: SocketAddr,
    pub http: SocketAddr,
    state: Arc<Mutex<State>>,
    _runtime: tokio::runtime::Runtime,
}

impl UpdateServer {
    pub fn start(tls: Arc<ServerConfig>) -> UpdateServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let https = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let http = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let (https_addr, http_addr) = (https.local_addr().unwrap(), http.local_addr().unwrap());
        runtime.spawn(listen(https, Some(TlsAcceptor::from(tls)), state.clone()));
        runtime.spawn(listen(http, None, state.clone()));
        UpdateServer {
            https: https_addr,
            http: http_addr,
            state,
            _runtime: runtime,
        }
    }

    /// `https://ADDR/update/VRB-1`, the board's `--update-url`.
    pub fn https_base(&self) -> String {
        format!("https://{}/update/VRB-1", self.https)
    }

    pub fn http_base(&self) -> String {
        format!("http://{}/update/VRB-1", self.http)
    }

    /// What the server offers from now on (`None`: 404 for the manifest).
    pub fn offer(&self, offer: Option<Offer>) {
        self.state.lock().unwrap().offer = offer;
    }

    /// Answers `path` with 503 from now on.
    pub fn refuse(&self, path: &str) {
        self.state.lock().unwrap().refused = Some(path.to_string());
    }

    /// `user` decides on `purpose` in the companion app, now; returns where the record then ends,
    /// so requests after the decision can be told from those before.
    pub fn app_consent(&self, user: &str, purpose: &str, granted: bool) -> usize {
        let mut st = self.state.lock().unwrap();
        st.decide(user, purpose, granted);
        st.record.requests.len()
    }

    /// `user`'s history on `purpose`, oldest first.
    pub fn consent_history(&self, user: &str, purpose: &str) -> Vec<ConsentEntry> {
        let st = self.state.lock().unwrap();
        let purposes = st.consents.get(user);
        purposes
            .and_then(|p| p.get(purpose))
            .cloned()
            .unwrap_or_default()
    }

    pub fn with<T>(&self, f: impl FnOnce(&Record) -> T) -> T {
        f(&self.state.lock().unwrap().record)
    }

    /// Waits (10 s at most) until `cond` holds; panics with the record otherwise.
    pub fn wait_for(&self, what: &str, cond: impl Fn(&Record) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.with(&cond) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let record = self.with(|r| format!("{r:?}"));
        panic!("timed out waiting for {what}: {record}");
    }
}

async fn listen(listener: TcpListener, tls: Option<TlsAcceptor>, state: Arc<Mutex<State>>) {
    while let Ok((tcp, _)) = listener.accept().await {
        let (tls, state) = (tls.clone(), state.clone());
        tokio::spawn(async move {
            match tls {
                None => serve(tcp, false, None, &state).await,
                Some(acceptor) => {
                    if let Ok(s) = acceptor.accept(tcp).await {
                        let cn = hilt_cloud::pki::peer_identity(s.get_ref().1.peer_certificates());
                        serve(s, true, cn, &state).await;
                    }
                }
            }
        });
    }
}

/// One request per connection, answered and closed.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    tls: bool,
    cn: Option<String>,
    state: &Mutex<State>,
) {
    let Some((head, body)) = read_request(&mut s).await else {
        return;
    };
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").split(' ');
    let (method, path) = (
        first.next().unwrap_or("").to_string(),
        first.next().unwrap_or("").to_string(),
    );
    let host = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("host").then(|| v.trim().to_string())
    });
    let seen = Seen {
        tls,
        method,
        path,
        cn,
        host,
        json: serde_json::from_slice(&body).unwrap_or_default(),
    };
    let (status, reply) = respond(&seen, &body, state);
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.len()
    );
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(&reply).await;
    let _ = s.shutdown().await;
}

fn respond(seen: &Seen, body: &[u8], state: &Mutex<State>) -> (&'static str, Vec<u8>) {
    let mut st = state.lock().unwrap();
    st.record.requests.push(seen.clone());
    if st.refused.as_deref() == Some(seen.path.as_str()) {
        return ("503 Service Unavailable", Vec::new());
    }
    if let Some(answer) = consents(seen, &mut st) {
        return answer;
    }
    if let Some(status) = privacy_status(seen) {
        return (status, b"{}".to_vec());
    }
    if seen.method == "POST" && seen.path == "/device/notices" {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let text = json["text"].as_str().unwrap_or("<malformed>").to_string();
        // A `users` that is not a list of strings is recorded as a name no user has.
        let users = json.get("users").map(|u| {
            serde_json::from_value(u.clone()).unwrap_or_else(|_| vec!["<malformed>".to_string()])
        });
        st.record.notices.push(DeviceNotice {
            cn: seen.cn.clone(),
            text,
            users,
        });
        return ("200 OK", b"{}".to_vec());
    }
    let Some(offer) = &st.offer else {
        return ("404 Not Found", Vec::new());
    };
    if seen.path.ends_with("/manifest.json") {
        return ("200 OK", offer.envelope.clone());
    }
    if offer.manifest.image.url.ends_with(&seen.path) {
        return ("200 OK", offer.image.clone());
    }
    ("404 Not Found", Vec::new())
}

/// A consent report, recorded in the user's history, or a history asked for; `None` for other routes.
fn consents(seen: &Seen, st: &mut State) -> Option<(&'static str, Vec<u8>)> {
    let path = seen.path.as_str();
    if seen.method == "PUT"
        && let Some(purpose) = path.strip_prefix("/device/consents/")
    {
        let (user, granted) = (seen.json["user"].as_str()?, seen.json["granted"].as_bool()?);
        st.decide(user, purpose, granted);
        return None;
    }
    let user = path
        .strip_prefix("/device/users/")?
        .strip_suffix("/consents")?;
    if seen.method != "GET" {
        return None;
    }
    let cn = seen.cn.as_deref().unwrap_or_default();
    let pair = serde_json::json!({ "user": user });
    if !st.record.bodies(cn, "POST", "/device/pair").contains(&pair) {
        return Some(("403 Forbidden", Vec::new()));
    }
    let history = st.consents.get(user).cloned().unwrap_or_default();
    let purposes: serde_json::Map<String, serde_json::Value> = history
        .into_iter()
        .map(|(purpose, entries)| {
            let entries = entries
                .into_iter()
                .map(|e| serde_json::json!({ "granted": e.granted, "time": e.time }));
            (purpose, entries.collect())
        })
        .collect();
    let body = serde_json::json!({ "user": user, "consents": purposes });
    Some(("200 OK", body.to_string().into_bytes()))
}

/// `time` as the mock cloud writes it: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap();
    let secs = since.as_secs();
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // H. Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rest / 3_600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_micros()
    )
}

/// How the mock cloud answers its privacy routes.
fn privacy_status(seen: &Seen) -> Option<&'static str> {
    let path = seen.path.as_str();
    match seen.method.as_str() {
        "POST" if path == "/device/pair" => Some("201 Created"),
        "PUT" if path.starts_with("/device/consents/") => Some("200 OK"),
        "POST" if path == "/device/erasure" => Some("202 Accepted"),
        "POST" if path.starts_with("/thirdparty/") => Some("202 Accepted"),
        _ => None,
    }
}

/// The request head and its Content-Length body.
async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> Option<(String, Vec<u8>)> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).into_owned();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if seen.len() >= end + 4 + len {
                return Some((head, seen[end + 4..end + 4 + len].to_vec()));
            }
        }
        if seen.len() > MAX_REQUEST {
            return None;
        }
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}
