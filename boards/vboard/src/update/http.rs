//! A minimal HTTP/1.1 client for the update agent: one request per connection, over HTTPS (the run's
//! CA as the only root, the device's client certificate) or plain TCP, every exchange bounded in time
//! and size so a slow or hostile server cannot stall or exhaust the board.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Bytes};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::url::HttpUrl;
use crate::cloud::server_name;

/// TCP connection and TLS handshake together.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole exchange, connection and body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read (an image included).
pub const MAX_BODY: usize = 16 << 20;

/// The bounds of every exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub connect: Duration,
    pub request: Duration,
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect: CONNECT_TIMEOUT,
            request: REQUEST_TIMEOUT,
            max_body: MAX_BODY,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connecting to {0} timed out")]
    ConnectTimeout(String),
    #[error("'{0}' is not a valid TLS server name")]
    ServerName(String),
    #[error("TLS with {addr} failed: {source}")]
    Tls {
        addr: String,
        source: std::io::Error,
    },
    #[error("timed out")]
    Timeout,
    #[error("HTTP: {0}")]
    Protocol(#[from] hyper::Error),
    #[error("the response is larger than {0} bytes")]
    TooLarge(usize),
    #[error("reading the response failed: {0}")]
    Body(String),
    #[error("cannot make the request: {0}")]
    Request(String),
}

/// A response read in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Makes requests with one TLS configuration and one set of limits.
#[derive(Clone)]
pub struct Client {
    tls: TlsConnector,
    limits: Limits,
}

impl Client {
    pub fn new(tls: Arc<ClientConfig>) -> Self {
        Self {
            tls: TlsConnector::from(tls),
            limits: Limits::default(),
        }
    }

    /// Other bounds (tests shorten them).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub async fn get(&self, url: &HttpUrl) -> Result<Response, HttpError> {
        self.send(request(Method::GET, url, Bytes::new(), None)?, url)
            .await
    }

    pub async fn post_json(&self, url: &HttpUrl, body: Vec<u8>) -> Result<Response, HttpError> {
        self.send_json(Method::POST, url, body).await
    }

    pub async fn put_json(&self, url: &HttpUrl, body: Vec<u8>) -> Result<Response, HttpError> {
        self.send_json(Method::PUT, url, body).await
    }

    async fn send_json(
        &self,
        method: Method,
        url: &HttpUrl,
        body: Vec<u8>,
    ) -> Result<Response, HttpError> {
        let req = request(method, url, Bytes::from(body), Some("application/json"))?;
        self.send(req, url).await
    }

    async fn send(&self, req: Request<Full<Bytes>>, url: &HttpUrl) -> Result<Response, HttpError> {
        timeout(self.limits.request, self.exchange(req, url))
            .await
            .map_err(|_| HttpError::Timeout)?
    }

    async fn exchange(
        &self,
        req: Request<Full<Bytes>>,
        url: &HttpUrl,
    ) -> Result<Response, HttpError> {
        let max = self.limits.max_body;
        let bounded = |addr: String| move |_| HttpError::ConnectTimeout(addr);
        if url.tls {
            let stream = timeout(self.limits.connect, self.open_tls(url))
                .await
                .map_err(bounded(url.authority()))??;
            roundtrip(stream, req, max).await
        } else {
            let stream = timeout(self.limits.connect, open_tcp(url))
                .await
                .map_err(bounded(url.authority()))??;
            roundtrip(stream, req, max).await
        }
    }

    /// TCP, then the TLS handshake: both within the one connect bound.
    async fn open_tls(&self, url: &HttpUrl) -> Result<TlsStream<TcpStream>, HttpError> {
        let tcp = open_tcp(url).await?;
        let name = server_name(&url.host).ok_or_else(|| HttpError::ServerName(url.host.clone()))?;
        self.tls
            .connect(name, tcp)
            .await
            .map_err(|source| HttpError::Tls {
                addr: url.authority(),
                source,
            })
    }
}

async fn open_tcp(url: &HttpUrl) -> Result<TcpStream, HttpError> {
    TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|source| HttpError::Connect {
            addr: url.authority(),
            source,
        })
}

fn request(
    method: Method,
    url: &HttpUrl,
    body: Bytes,
    content_type: Option<&str>,
) -> Result<Request<Full<Bytes>>, HttpError> {
    let mut builder = Request::builder()
        .method(method)
        .uri(url.path.as_str())
        .header(header::HOST, url.authority())
        .header(
            header::USER_AGENT,
            concat!("hilt-vboard/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(ct) = content_type {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    builder
        .body(Full::new(body))
        .map_err(|e| HttpError::Request(e.to_string()))
}

/// Aborts the connection task when the exchange ends, however it ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One request on a fresh connection, the response read in full (at most `max_body` bytes).
async fn roundtrip<S>(
    io: S,
    req: Request<Full<Bytes>>,
    max_body: usize,
) -> Result<Response, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    // Connection errors also surface through the request, so the task's own result is not needed.
    let _conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let response = sender.send_request(req).await?;
    let status = response.status().as_u16();
    let body = response.into_body();
    if body.size_hint().lower() > max_body as u64 {
        return Err(HttpError::TooLarge(max_body));
    }
    let collected = Limited::new(body, max_body).collect().await.map_err(|e| {
        if e.is::<LengthLimitError>() {
            HttpError::TooLarge(max_body)
        } else {
            HttpError::Body(e.to_string())
        }
    })?;
    Ok(Response {
        status,
        body: collected.to_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{load_identity, trusting_as};
    use hilt_cloud::Pki;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Reads one request (head and a Content-Length body), answers `reply`, returns the request.
    async fn answer<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, reply: &[u8]) -> String {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let text = String::from_utf8_lossy(&seen).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(String::from)
                    })
                    .and_then(|n| n.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if seen.len() >= end + 4 + len {
                    break;
                }
            }
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        let _ = s.write_all(reply).await;
        let _ = s.flush().await;
        String::from_utf8_lossy(&seen).into_owned()
    }

    /// A plain server answering `reply` once; the request it saw comes back on the receiver.
    async fn plain_server(reply: &'static [u8]) -> (HttpUrl, oneshot::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = tx.send(answer(&mut s, reply).await);
        });
        let url = HttpUrl::parse(&format!("http://127.0.0.1:{port}/a/b.json")).unwrap();
        (url, rx)
    }

    fn client() -> Client {
        let pki = Pki::generate(&["127.0.0.1".into()]).unwrap();
        client_of(&pki).0
    }

    /// A client of `pki` with identity `VRB-HTTP`, and the directory its files are in.
    fn client_of(pki: &Pki) -> (Client, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let id = pki.issue_client("VRB-HTTP").unwrap();
        std::fs::write(dir.path().join("c.pem"), &id.cert_pem).unwrap();
        std::fs::write(dir.path().join("c.key"), &id.key_pem).unwrap();
        let identity = load_identity(&dir.path().join("c.pem"), &dir.path().join("c.key")).unwrap();
        let tls = trusting_as(&[pki.ca_der().clone()], &identity, &[b"http/1.1"]).unwrap();
        (Client::new(tls), dir)
    }

    #[test]
    fn plain_get_and_post_send_host_and_read_the_body() {
        runtime().block_on(async {
            let (url, seen) = plain_server(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            )
            .await;
            let r = client().get(&url).await.unwrap();
            assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
            let head = seen.await.unwrap().to_ascii_lowercase();
            assert!(head.starts_with("get /a/b.json http/1.1\r\n"), "{head}");
            assert!(
                head.contains(&format!("host: {}\r\n", url.authority())),
                "{head}"
            );

            let (url, seen) =
                plain_server(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").await;
            let r = client()
                .post_json(&url, br#"{"text":"hi"}"#.to_vec())
                .await
                .unwrap();
            assert_eq!((r.status, r.body.len()), (404, 0));
            let request = seen.await.unwrap();
            assert!(
                request.starts_with("POST /a/b.json HTTP/1.1\r\n"),
                "{request}"
            );
            assert!(
                request
                    .to_ascii_lowercase()
                    .contains("content-type: application/json\r\n")
            );
            assert!(request.ends_with("\r\n\r\n{\"text\":\"hi\"}"), "{request}");

            let (url, seen) = plain_server(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
            let r = client().put_json(&url, b"{}".to_vec()).await.unwrap();
            assert_eq!(r.status, 200);
            let request = seen.await.unwrap();
            assert!(
                request.starts_with("PUT /a/b.json HTTP/1.1\r\n"),
                "{request}"
            );
            assert!(request.ends_with("\r\n\r\n{}"), "{request}");
        });
    }

    #[test]
    fn oversized_bodies_are_refused() {
        let small = Limits {
            max_body: 10,
            ..Limits::default()
        };
        runtime().block_on(async {
            let (url, _seen) =
                plain_server(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\nxx").await;
            let err = client().with_limits(small).get(&url).await.unwrap_err();
            assert!(matches!(err, HttpError::TooLarge(10)), "{err}");
            let (url, _seen) = plain_server(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n",
            )
            .await;
            let err = client().with_limits(small).get(&url).await.unwrap_err();
            assert!(matches!(err, HttpError::TooLarge(10)), "{err}");
        });
    }

    #[test]
    fn a_silent_server_and_a_closed_port_are_errors_in_bounded_time() {
        let quick = Limits {
            request: Duration::from_millis(200),
            ..Limits::default()
        };
        runtime().block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            // Accepts, then never answers.
            tokio::spawn(async move {
                let (_s, _) = listener.accept().await.unwrap();
                std::future::pending::<()>().await;
            });
            let url = HttpUrl::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
            let started = std::time::Instant::now();
            let err = client().with_limits(quick).get(&url).await.unwrap_err();
            assert!(matches!(err, HttpError::Timeout), "{err}");
            assert!(started.elapsed() < Duration::from_secs(2));

            let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = closed.local_addr().unwrap().port();
            drop(closed);
            let url = HttpUrl::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
            let err = client().get(&url).await.unwrap_err();
            assert!(matches!(err, HttpError::Connect { .. }), "{err}");
        });
    }

    #[test]
    fn https_presents_the_client_certificate_and_refuses_an_untrusted_server() {
        let pki = Pki::generate(&["127.0.0.1".into()]).unwrap();
        let (client, _dir) = client_of(&pki);
        runtime().block_on(async {
            for untrusted in [false, true] {
                let config = pki.server_config(untrusted, &[b"http/1.1"]).unwrap();
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let port = listener.local_addr().unwrap().port();
                let (tx, rx) = oneshot::channel();
                tokio::spawn(async move {
                    let (tcp, _) = listener.accept().await.unwrap();
                    let Ok(mut tls) = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await
                    else {
                        return;
                    };
                    let cn = hilt_cloud::pki::peer_identity(tls.get_ref().1.peer_certificates());
                    answer(&mut tls, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
                    let _ = tx.send(cn);
                });
                let url = HttpUrl::parse(&format!("https://127.0.0.1:{port}/m")).unwrap();
                let result = client.get(&url).await;
                if untrusted {
                    let err = result.unwrap_err();
                    assert!(matches!(err, HttpError::Tls { .. }), "{err}");
                    assert!(err.to_string().contains("certificate"), "{err}");
                } else {
                    assert_eq!(result.unwrap().body, b"ok");
                    assert_eq!(rx.await.unwrap().as_deref(), Some("VRB-HTTP"));
                }
            }
        });
    }
}
