//! A tiny update server for the board's update agent: HTTPS (the run's PKI, client certificates
//! recorded) and a plain HTTP listener beside it, serving whatever offer the test sets and recording
//! every request and device notice (with the users it is addressed to). It also answers the mock cloud's privacy routes (pairing, consent
//! reports, analytics ingest, erasure notices) and records their JSON bodies.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

#[derive(Default)]
struct State {
    offer: Option<Offer>,
    /// A path answered 503, to play a party that cannot be reached.
    refused: Option<String>,
    record: Record,
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
