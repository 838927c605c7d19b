//! The companion app, as the harness plays it for a test account: real HTTPS to the mock cloud's app
//! API with the account's bearer token, trusting only the run's CA, so what the user does there is a
//! flow attributed to the user (not to the device, not to the backend). Bounded in time and size.

use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

use crate::cloud::CloudSession;

/// The longest one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read.
const MAX_ANSWER: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("companion app: cannot trust the run's CA: {0}")]
    Ca(String),
    #[error("companion app: {0}")]
    Request(String),
    #[error("companion app: no answer within {} s", TIMEOUT.as_secs())]
    Timeout,
}

/// An answer: its status and JSON body (`Null` when none).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// The app's HTTPS client for one mock cloud.
pub struct AppClient {
    host: String,
    port: u16,
    tls: Arc<ClientConfig>,
}

impl AppClient {
    pub fn new(cloud: &CloudSession) -> Result<AppClient, AppError> {
        let url = cloud.endpoints.https.trim_start_matches("https://");
        let (host, port) = url
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_string(), p.parse().ok()?)))
            .ok_or_else(|| AppError::Request(format!("bad endpoint {url:?}")))?;
        let pem =
            std::fs::read(&cloud.endpoints.ca_cert).map_err(|e| AppError::Ca(e.to_string()))?;
        let mut roots = RootCertStore::empty();
        for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| AppError::Ca(e.to_string()))?;
            roots.add(cert).map_err(|e| AppError::Ca(e.to_string()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| AppError::Ca(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(AppClient {
            host,
            port,
            tls: Arc::new(tls),
        })
    }

    /// `PUT path` with `body` as JSON, as the account holding `token`.
    pub fn put_json(&self, path: &str, token: &str, body: &Value) -> Result<Answer, AppError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AppError::Request(e.to_string()))?;
        let bytes = Bytes::from(body.to_string());
        rt.block_on(async {
            tokio::time::timeout(TIMEOUT, self.exchange("PUT", path, token, bytes))
                .await
                .map_err(|_| AppError::Timeout)?
        })
    }

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Bytes,
    ) -> Result<Answer, AppError> {
        let err = |e: &dyn std::fmt::Display| AppError::Request(e.to_string());
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| err(&e))?;
        let name = ServerName::try_from(self.host.clone()).map_err(|e| err(&e))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| err(&e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| err(&e))?;
        tokio::spawn(conn);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("{}:{}", self.host, self.port))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Full::new(body))
            .map_err(|e| err(&e))?;
        let response = sender.send_request(request).await.map_err(|e| err(&e))?;
        let status = response.status().as_u16();
        let bytes = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| err(&e))?
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }
}
