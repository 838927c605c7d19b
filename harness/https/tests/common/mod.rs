//! A minimal HTTPS client for the tests: hyper's HTTP/1.1 client over tokio-rustls (ring), trusting only
//! the run CA, one connection per request so every request sees the faults in force when it starts.
#![allow(dead_code)]

use bytes::Bytes;
use hilt_cloud::{Faults, FlowLog, Pki};
use hilt_https::{CloudState, Https, HttpsConfig};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub struct Cloud {
    pub https: Https,
    pub pki: Arc<Pki>,
    pub log: FlowLog,
    pub faults: Faults,
    pub state: CloudState,
}

pub async fn start(plain: bool) -> Cloud {
    let pki = Arc::new(Pki::generate(&["localhost".into(), "127.0.0.1".into()]).expect("pki"));
    let (log, faults, state) = (FlowLog::new(), Faults::new(), CloudState::default());
    let cfg = HttpsConfig {
        plain_port: plain.then_some(0),
        ..HttpsConfig::default()
    };
    let https = Https::start(cfg, pki.clone(), log.clone(), faults.clone(), state.clone())
        .await
        .expect("start");
    Cloud {
        https,
        pki,
        log,
        faults,
        state,
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    /// None: plain HTTP.
    tls: Option<TlsConnector>,
    pub token: Option<String>,
}

fn config(ca: &CertificateDer<'static>, client_cert: Option<(&str, &str)>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).expect("CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    match client_cert {
        None => b.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("cert pem")];
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key pem");
            b.with_client_auth_cert(chain, key).expect("client auth")
        }
    }
}

impl Client {
    /// Trusts only the run CA.
    pub fn new(cloud: &Cloud) -> Client {
        let cfg = config(cloud.pki.ca_der(), None);
        Client {
            addr: cloud.https.addr(),
            tls: Some(TlsConnector::from(Arc::new(cfg))),
            token: None,
        }
    }

    /// Presents a client certificate with CN `identity`.
    pub fn with_cert(cloud: &Cloud, identity: &str) -> Client {
        let c = cloud.pki.issue_client(identity).expect("client cert");
        let cfg = config(cloud.pki.ca_der(), Some((&c.cert_pem, &c.key_pem)));
        Client {
            addr: cloud.https.addr(),
            tls: Some(TlsConnector::from(Arc::new(cfg))),
            token: None,
        }
    }

    pub fn plain(cloud: &Cloud) -> Client {
        Client {
            addr: cloud.https.plain_addr().expect("plain port"),
            tls: None,
            token: None,
        }
    }

    pub fn authed(&self, token: &str) -> Client {
        Client {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    pub async fn get(&self, path: &str) -> Result<Reply, Error> {
        self.request("GET", path, None).await
    }

    pub async fn send(&self, method: &str, path: &str, body: &[u8]) -> Result<Reply, Error> {
        self.request(method, path, Some(body)).await
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Reply, Error> {
        let tcp = TcpStream::connect(self.addr).await?;
        match &self.tls {
            Some(tls) => {
                let stream = tls.connect(ServerName::try_from("localhost")?, tcp).await?;
                self.exchange(stream, method, path, body).await
            }
            None => self.exchange(tcp, method, path, body).await,
        }
    }

    /// A kept-alive TLS connection, for tests about what happens to live connections.
    pub async fn keep_alive(
        &self,
    ) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, Error> {
        let tls = self.tls.as_ref().ok_or("keep_alive needs TLS")?;
        let stream = tls
            .connect(
                ServerName::try_from("localhost")?,
                TcpStream::connect(self.addr).await?,
            )
            .await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(sender)
    }

    async fn exchange<S>(
        &self,
        stream: S,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Reply, Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("localhost:{}", self.addr.port()));
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(Full::new(Bytes::copy_from_slice(body.unwrap_or_default())))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Reply {
            status,
            content_type,
            body,
        })
    }
}

/// Wait (asynchronously: the server runs on this test's runtime) for a flow matching `pred`.
pub async fn wait_flow(
    log: &FlowLog,
    pred: impl Fn(&hilt_cloud::Flow) -> bool,
) -> Option<hilt_cloud::Flow> {
    for _ in 0..500 {
        if let Some(f) = log.snapshot().into_iter().find(|f| pred(f)) {
            return Some(f);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    None
}
