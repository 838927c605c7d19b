//! A certificate authority made per run, server certificates for the cloud's names and addresses, client
//! certificates for devices, and a second, untrusted CA the cloud can present on demand so that scenarios
//! can check that a device refuses a man-in-the-middle.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("TLS configuration failed: {0}")]
    Tls(String),
}

/// One CA and a server certificate issued by it.
struct Authority {
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivatePkcs8KeyDer<'static>,
}

impl Authority {
    fn new(name: &str, server_names: &[String]) -> Result<Authority, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "hilt mock cloud");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let ca = params.self_signed(&key)?;
        let issuer = Issuer::new(params, key);
        let mut sp = CertificateParams::new(server_names.to_vec())?;
        sp.distinguished_name.push(
            DnType::CommonName,
            server_names
                .first()
                .map(String::as_str)
                .unwrap_or("localhost"),
        );
        sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let skey = KeyPair::generate()?;
        let server = sp.signed_by(&skey, &issuer)?;
        Ok(Authority {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            issuer,
            server_chain: vec![server.der().clone()],
            server_key: PrivatePkcs8KeyDer::from(skey.serialize_der()),
        })
    }
}

/// The run's PKI.
pub struct Pki {
    trusted: Authority,
    untrusted: Authority,
}

/// A client certificate and key, PEM.
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    /// Make both CAs and server certificates for `server_names` (DNS names or IP addresses).
    pub fn generate(server_names: &[String]) -> Result<Pki, PkiError> {
        Ok(Pki {
            trusted: Authority::new("hilt run CA", server_names)?,
            untrusted: Authority::new("hilt UNTRUSTED CA (man-in-the-middle)", server_names)?,
        })
    }

    /// The CA certificate devices must trust (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.trusted.ca_pem
    }

    /// The untrusted CA's certificate, for tests that want to play the attacker's client side.
    pub fn untrusted_ca_pem(&self) -> &str {
        &self.untrusted.ca_pem
    }

    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.trusted.ca_der
    }

    /// Issue a client certificate whose subject CN is `identity` (a device's authenticated identity).
    pub fn issue_client(&self, identity: &str) -> Result<ClientCert, PkiError> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name.push(DnType::CommonName, identity);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &self.trusted.issuer)?;
        Ok(ClientCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A rustls server config presenting the trusted (or, for the MITM fault, the untrusted) server
    /// certificate. Client certificates issued by the run CA are accepted but not required, so devices
    /// may authenticate with a certificate or with username/password.
    pub fn server_config(
        &self,
        untrusted: bool,
        alpn: &[&[u8]],
    ) -> Result<Arc<ServerConfig>, PkiError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(self.trusted.ca_der.clone())
            .map_err(|e| PkiError::Tls(e.to_string()))?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| PkiError::Tls(e.to_string()))?;
        let auth = if untrusted {
            &self.untrusted
        } else {
            &self.trusted
        };
        let mut cfg = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| PkiError::Tls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                auth.server_chain.clone(),
                PrivateKeyDer::Pkcs8(auth.server_key.clone_key()),
            )
            .map_err(|e| PkiError::Tls(e.to_string()))?;
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(cfg))
    }
}

/// The subject CN of a peer's leaf certificate: the authenticated identity of a client-cert login.
pub fn peer_identity(certs: Option<&[CertificateDer<'_>]>) -> Option<String> {
    let leaf = certs?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    Some(cn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_a_usable_server_config_and_client_identity() {
        let pki = Pki::generate(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        assert!(pki.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert_ne!(pki.ca_pem(), pki.untrusted_ca_pem());
        pki.server_config(false, &[]).unwrap();
        pki.server_config(true, &[]).unwrap();
        let c = pki.issue_client("VRB-00000001").unwrap();
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(c.cert_pem.as_bytes())
            .map(|d: CertificateDer| d)
            .unwrap();
        assert_eq!(
            peer_identity(Some(&[der])),
            Some("VRB-00000001".to_string())
        );
    }
}
