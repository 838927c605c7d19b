//! The update options of `run`, checked and resolved before the board boots.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use hilt_report::keys::{KeyError, load_public};
use hilt_update::Checks;
use rustls::ClientConfig;

use super::http::Limits;
use super::judge::checks_for;
use super::url::{HttpUrl, UrlError};
use crate::cloud::{TlsError, load_ca, load_identity, trusting_as};
use crate::defects::{Defect, DefectSet};

/// The update server speaks HTTP/1.1.
const ALPN: &[&[u8]] = &[b"http/1.1"];

/// The command-line options, as given.
#[derive(Debug, Clone, clap::Args)]
pub struct UpdateSettings {
    /// Base URL of the update service (https://HOST:PORT/update/MODEL); the signed manifest is at
    /// URL/manifest.json. Without it, the board has no update agent.
    #[arg(long, value_name = "URL")]
    pub update_url: Option<String>,
    /// The manufacturer's update-signing public key (PEM, Ed25519): the only key trusted for updates.
    #[arg(long, value_name = "PATH")]
    pub update_key: Option<PathBuf>,
    /// Client certificate (PEM) presented to the update server: the device's identity.
    #[arg(long, value_name = "PATH")]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PKCS#8 PEM).
    #[arg(long, value_name = "PATH")]
    pub client_key: Option<PathBuf>,
    /// Interval between periodic update checks, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 86_400_000,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub update_check_ms: u64,
    /// How long the restart warning is shown before an install, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub update_warn_ms: u64,
}

/// Everything the update agent needs, validated.
#[derive(Debug, Clone)]
pub struct UpdateOptions {
    /// Base URL; the manifest is `url/manifest.json`, notices go to `/device/notices` on its origin.
    pub url: HttpUrl,
    /// The manufacturer's update key: the only one trusted.
    pub vendor_key: VerifyingKey,
    /// The run's CA as the only root, and the device's client certificate.
    pub tls: Arc<ClientConfig>,
    pub check_interval: Duration,
    pub warn: Duration,
    pub checks: Checks,
    /// The `silent-update` defect.
    pub silent: bool,
    /// The `ignores-auto-update-off` defect: installs by itself whatever the user's setting.
    pub ignores_off: bool,
    /// Checks every `check_interval` after the boot check (off under `no-periodic-check`).
    pub periodic: bool,
    pub limits: Limits,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--update-url {0}")]
    Url(UrlError),
    #[error("--update-url needs {0}")]
    Missing(&'static str),
    #[error("{0} needs --update-url")]
    NoUrl(&'static str),
    #[error("--update-key {0}")]
    Key(KeyError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl UpdateSettings {
    /// `None` when the board runs without an update agent. `ca_cert` is the shared `--ca-cert`.
    pub fn resolve(
        &self,
        ca_cert: Option<&Path>,
        defects: &DefectSet,
    ) -> Result<Option<UpdateOptions>, ConfigError> {
        let Some(text) = &self.update_url else {
            return self.check_unused().map(|()| None);
        };
        let url = HttpUrl::parse(text).map_err(ConfigError::Url)?;
        let key_path = need(&self.update_key, "--update-key")?;
        let cert = need(&self.client_cert, "--client-cert")?;
        let key = need(&self.client_key, "--client-key")?;
        let ca = load_ca(ca_cert.ok_or(ConfigError::Missing("--ca-cert"))?)?;
        let vendor_key = load_public(key_path).map_err(ConfigError::Key)?;
        let identity = load_identity(cert, key)?;
        Ok(Some(UpdateOptions {
            url,
            vendor_key,
            tls: trusting_as(&ca, &identity, ALPN)?,
            check_interval: Duration::from_millis(self.update_check_ms),
            warn: Duration::from_millis(self.update_warn_ms),
            checks: checks_for(defects),
            silent: defects.has(Defect::SilentUpdate),
            ignores_off: defects.has(Defect::IgnoresAutoUpdateOff),
            periodic: !defects.has(Defect::NoPeriodicCheck),
            limits: Limits::default(),
        }))
    }

    /// Update options without an update service are a mistake worth refusing, not ignoring.
    fn check_unused(&self) -> Result<(), ConfigError> {
        let given = [
            (self.update_key.is_some(), "--update-key"),
            (self.client_cert.is_some(), "--client-cert"),
            (self.client_key.is_some(), "--client-key"),
        ];
        match given.iter().find(|(set, _)| *set) {
            Some((_, name)) => Err(ConfigError::NoUrl(name)),
            None => Ok(()),
        }
    }
}

fn need<'a>(path: &'a Option<PathBuf>, name: &'static str) -> Result<&'a Path, ConfigError> {
    path.as_deref().ok_or(ConfigError::Missing(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hilt_report::keys::{KeyPair, public_pem};

    struct Files {
        _dir: tempfile::TempDir,
        ca: PathBuf,
        key: PathBuf,
        cert: PathBuf,
        client_key: PathBuf,
    }

    fn files() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let pki = hilt_cloud::Pki::generate(&["127.0.0.1".into()]).unwrap();
        let client = pki.issue_client("VRB-CFG").unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let vendor = KeyPair::from_seed(&[3; 32]);
        Files {
            ca: write("ca.pem", pki.ca_pem()),
            key: write("vendor.pub.pem", &public_pem(&vendor.verifying_key())),
            cert: write("client.pem", &client.cert_pem),
            client_key: write("client.key", &client.key_pem),
            _dir: dir,
        }
    }

    fn settings(f: &Files) -> UpdateSettings {
        UpdateSettings {
            update_url: Some("https://127.0.0.1:8443/update/VRB-1".into()),
            update_key: Some(f.key.clone()),
            client_cert: Some(f.cert.clone()),
            client_key: Some(f.client_key.clone()),
            update_check_ms: 200,
            update_warn_ms: 0,
        }
    }

    #[test]
    fn resolves_with_every_check_by_default() {
        let f = files();
        let o = settings(&f)
            .resolve(Some(&f.ca), &DefectSet::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            o.url.join("manifest.json").path,
            "/update/VRB-1/manifest.json"
        );
        assert_eq!(o.vendor_key, KeyPair::from_seed(&[3; 32]).verifying_key());
        assert_eq!(o.checks, Checks::ALL);
        assert!(o.periodic && !o.silent && !o.ignores_off);
        assert_eq!(o.check_interval, Duration::from_millis(200));
        assert_eq!(o.tls.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let d = DefectSet::parse(&[
            "no-periodic-check",
            "silent-update",
            "accepts-unsigned",
            "ignores-auto-update-off",
        ])
        .unwrap();
        let o = settings(&f).resolve(Some(&f.ca), &d).unwrap().unwrap();
        assert!(!o.periodic && o.silent && !o.checks.require_signature && o.ignores_off);
    }

    #[test]
    fn missing_or_stray_options_are_refused() {
        let f = files();
        let none = DefectSet::default();
        let mut s = settings(&f);
        assert!(matches!(
            s.resolve(None, &none),
            Err(ConfigError::Missing("--ca-cert"))
        ));
        s.client_key = None;
        assert!(matches!(
            s.resolve(Some(&f.ca), &none),
            Err(ConfigError::Missing("--client-key"))
        ));
        s.update_url = None;
        assert!(matches!(
            s.resolve(Some(&f.ca), &none),
            Err(ConfigError::NoUrl("--update-key"))
        ));
        let mut s = settings(&f);
        s.update_url = Some("ftp://h/x".into());
        assert!(matches!(
            s.resolve(Some(&f.ca), &none),
            Err(ConfigError::Url(_))
        ));
        let mut s = settings(&f);
        s.update_key = Some(f.cert.clone());
        let err = s.resolve(Some(&f.ca), &none).unwrap_err();
        assert!(matches!(err, ConfigError::Key(_)), "{err}");
    }
}
