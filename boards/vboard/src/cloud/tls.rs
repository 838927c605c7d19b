//! The board's TLS client configuration: ring only, trusting the run's CA and nothing else
//! (no system roots), or, under the `accepts-untrusted-cert` defect, any certificate at all (MQTT
//! only). The update agent also presents the device's client certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read CA certificate {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CA certificate {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("client certificate {path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("client key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("TLS configuration failed: {0}")]
    Config(#[from] rustls::Error),
}

/// The device's identity: its certificate chain and private key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

// The key never reaches a log through a formatted struct.
impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// Loads a PEM certificate chain and its PKCS#8 PEM key. Errors name the file, never its contents.
pub fn load_identity(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
    let bad_cert = |reason: String| TlsError::Certificate {
        path: cert.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad_cert(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_cert(e.to_string()))?;
    if chain.is_empty() {
        return Err(bad_cert("no PEM certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(Identity { chain, key })
}

/// The certificates of a PEM file (at least one).
pub fn load_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let invalid = |reason: String| TlsError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    if certs.is_empty() {
        return Err(invalid("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Verifies servers against `ca` only.
pub fn trusting(ca: &[CertificateDer<'static>]) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in ca {
        roots.add(cert.clone())?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Verifies servers against `ca` only, presents `identity` and offers `alpn`.
pub fn trusting_as(
    ca: &[CertificateDer<'static>],
    identity: &Identity,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in ca {
        roots.add(cert.clone())?;
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The `accepts-untrusted-cert` defect: any server certificate is taken at its word.
pub fn accepting_any() -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let verifier = Arc::new(AcceptAnyServerCert(provider.clone()));
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The server name checked against the certificate: an IP address for an IP host, else a DNS name.
/// rumqttc derives it from the broker host with this same conversion.
pub fn server_name(host: &str) -> Option<ServerName<'static>> {
    ServerName::try_from(host.to_string()).ok()
}

/// Deliberately broken: approves every certificate and signature (the classic MITM bug).
#[derive(Debug)]
struct AcceptAnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hilt_cloud::Pki;
    use rustls::{ClientConnection, ServerConfig, ServerConnection};

    /// Runs a handshake in memory; the client's error, if any.
    fn handshake(
        client: Arc<ClientConfig>,
        server: Arc<ServerConfig>,
    ) -> Result<(), rustls::Error> {
        let name = server_name("127.0.0.1").expect("ip name");
        let mut c = ClientConnection::new(client, name)?;
        let mut s = ServerConnection::new(server)?;
        for _ in 0..10 {
            let mut buf = Vec::new();
            c.write_tls(&mut buf).expect("client write");
            let mut rd = &buf[..];
            while !rd.is_empty() {
                s.read_tls(&mut rd).expect("server read");
            }
            // The server may reject the client's alert; only the client's view matters here.
            let _ = s.process_new_packets();
            let mut buf = Vec::new();
            s.write_tls(&mut buf).expect("server write");
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).expect("client read");
            }
            c.process_new_packets()?;
            if !c.is_handshaking() && !s.is_handshaking() {
                return Ok(());
            }
        }
        panic!("handshake did not finish");
    }

    fn write_temp(text: &[u8]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn trusts_the_run_ca_and_nothing_else() {
        let pki = Pki::generate(&["127.0.0.1".into()]).unwrap();
        let file = write_temp(pki.ca_pem().as_bytes());
        let ca = load_ca(file.path()).unwrap();
        assert_eq!(ca.len(), 1);
        let client = trusting(&ca).unwrap();
        handshake(client.clone(), pki.server_config(false, &[]).unwrap()).unwrap();
        let err = handshake(client, pki.server_config(true, &[]).unwrap()).unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{err:?}"
        );
    }

    #[test]
    fn the_defect_accepts_an_untrusted_server() {
        let pki = Pki::generate(&["127.0.0.1".into()]).unwrap();
        handshake(
            accepting_any().unwrap(),
            pki.server_config(true, &[]).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn bad_ca_files_are_typed_errors() {
        let missing = load_ca(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(matches!(missing, TlsError::Read { .. }), "{missing}");
        let empty = write_temp(b"not a certificate\n");
        let err = load_ca(empty.path()).unwrap_err();
        assert!(matches!(err, TlsError::Invalid { .. }), "{err}");
        let junk = write_temp(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n");
        assert!(load_ca(junk.path()).is_err());
        let garbage_der = vec![CertificateDer::from(vec![1u8, 2, 3])];
        assert!(trusting(&garbage_der).is_err());
    }

    #[test]
    fn loads_a_client_identity_and_refuses_bad_files() {
        let pki = Pki::generate(&["127.0.0.1".into()]).unwrap();
        let client = pki.issue_client("VRB-1").unwrap();
        let cert = write_temp(client.cert_pem.as_bytes());
        let key = write_temp(client.key_pem.as_bytes());
        let ca = write_temp(pki.ca_pem().as_bytes());
        let id = load_identity(cert.path(), key.path()).unwrap();
        assert_eq!(id.chain.len(), 1);
        assert!(!format!("{id:?}").contains("PRIVATE"));
        let config = trusting_as(&load_ca(ca.path()).unwrap(), &id, &[b"http/1.1"]).unwrap();
        assert!(config.client_auth_cert_resolver.has_certs());
        handshake(config, pki.server_config(false, &[]).unwrap()).unwrap();
        let err = load_identity(key.path(), key.path()).unwrap_err();
        assert!(matches!(err, TlsError::Certificate { .. }), "{err}");
        let err = load_identity(cert.path(), cert.path()).unwrap_err();
        assert!(matches!(err, TlsError::Key { .. }), "{err}");
        assert!(!err.to_string().contains("BEGIN"), "{err}");
    }

    #[test]
    fn ip_hosts_are_checked_as_ip_addresses() {
        assert!(matches!(
            server_name("127.0.0.1"),
            Some(ServerName::IpAddress(_))
        ));
        assert!(matches!(server_name("::1"), Some(ServerName::IpAddress(_))));
        assert!(matches!(
            server_name("cloud.example"),
            Some(ServerName::DnsName(_))
        ));
    }
}
