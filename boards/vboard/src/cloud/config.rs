//! The cloud options of `run`, checked and resolved before the board boots.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::CertificateDer;

use super::tls::{TlsError, load_ca};
use super::url::{BrokerUrl, UrlError};
use crate::defects::{Defect, DefectSet};

/// The command-line options, as given.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CloudSettings {
    /// Broker to connect to: mqtts://HOST:PORT (TLS) or mqtt://HOST:PORT (plain). Without it, no cloud.
    #[arg(long, value_name = "URL")]
    pub mqtt_url: Option<String>,
    /// CA certificate (PEM) the broker's certificate must chain to; the only trusted root.
    #[arg(long, value_name = "PATH")]
    pub ca_cert: Option<PathBuf>,
    /// MQTT username.
    #[arg(long, value_name = "U")]
    pub mqtt_username: Option<String>,
    /// File holding the MQTT password (one line). Never given on the command line.
    #[arg(long, value_name = "PATH")]
    pub mqtt_password_file: Option<PathBuf>,
    /// The cloud's plaintext listener (mqtt://HOST:PORT), used only by the plaintext-mqtt defect.
    #[arg(long, value_name = "URL")]
    pub mqtt_plain_url: Option<String>,
    /// Telemetry period in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(10..))]
    pub telemetry_ms: u64,
    /// Longest reconnection back-off in milliseconds (the bench shortens it to keep runs fast).
    #[arg(long, value_name = "N", default_value_t = 2_000,
          value_parser = clap::value_parser!(u64).range(200..))]
    pub backoff_max_ms: u64,
}

/// A password: shown as `<redacted>` by `Debug`, so it cannot leak through a logged struct.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

/// Everything the cloud link needs, validated.
#[derive(Debug, Clone)]
pub struct CloudOptions {
    /// Where the board connects (the plain URL under `plaintext-mqtt`).
    pub url: BrokerUrl,
    /// Trusted roots; empty when no TLS or under `accepts-untrusted-cert`.
    pub ca: Vec<CertificateDer<'static>>,
    pub credentials: Option<Credentials>,
    pub telemetry: Duration,
    pub accept_any_cert: bool,
    pub undeclared_flow: bool,
    /// The `reconnect-storm` defect: retry at once, forever, without back-off.
    pub reconnect_storm: bool,
    /// The back-off ceiling.
    pub backoff_max: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--mqtt-url {0}")]
    Url(UrlError),
    #[error("--mqtt-plain-url {0}")]
    PlainUrl(UrlError),
    #[error("defect plaintext-mqtt needs --mqtt-plain-url (the cloud's plaintext listener)")]
    PlainUrlMissing,
    #[error("--mqtt-plain-url must be a plaintext mqtt:// URL")]
    PlainUrlIsTls,
    #[error("{0} needs --mqtt-url")]
    NoUrl(&'static str),
    #[error("a TLS broker (mqtts://) needs --ca-cert")]
    CaMissing,
    #[error("--mqtt-username and --mqtt-password-file must be given together")]
    CredentialsPair,
    #[error("cannot read password file {path}: {source}")]
    PasswordFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("password file {0} is empty")]
    EmptyPassword(PathBuf),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl CloudSettings {
    /// `None` when the board runs without a cloud. `ca_shared`: the update agent uses `--ca-cert`
    /// too, so it is no stray option without a cloud.
    pub fn resolve(
        &self,
        defects: &DefectSet,
        ca_shared: bool,
    ) -> Result<Option<CloudOptions>, ConfigError> {
        let url = if defects.has(Defect::PlaintextMqtt) {
            let text = self
                .mqtt_plain_url
                .as_deref()
                .ok_or(ConfigError::PlainUrlMissing)?;
            let url = BrokerUrl::parse(text).map_err(ConfigError::PlainUrl)?;
            if url.tls {
                return Err(ConfigError::PlainUrlIsTls);
            }
            url
        } else if let Some(text) = &self.mqtt_url {
            BrokerUrl::parse(text).map_err(ConfigError::Url)?
        } else {
            return self.check_unused(ca_shared).map(|()| None);
        };
        if let Some(text) = &self.mqtt_url {
            BrokerUrl::parse(text).map_err(ConfigError::Url)?;
        }
        let accept_any_cert = defects.has(Defect::AcceptsUntrustedCert);
        let ca = match &self.ca_cert {
            Some(path) => load_ca(path)?,
            None if url.tls && !accept_any_cert => return Err(ConfigError::CaMissing),
            None => Vec::new(),
        };
        let credentials = match (&self.mqtt_username, &self.mqtt_password_file) {
            (None, None) => None,
            (Some(username), Some(path)) => Some(Credentials {
                username: username.clone(),
                password: read_password(path)?,
            }),
            _ => return Err(ConfigError::CredentialsPair),
        };
        Ok(Some(CloudOptions {
            url,
            ca,
            credentials,
            telemetry: Duration::from_millis(self.telemetry_ms),
            accept_any_cert,
            undeclared_flow: defects.has(Defect::UndeclaredFlow),
            reconnect_storm: defects.has(Defect::ReconnectStorm),
            backoff_max: Duration::from_millis(self.backoff_max_ms),
        }))
    }

    /// Cloud options without a cloud are a mistake worth refusing, not ignoring.
    fn check_unused(&self, ca_shared: bool) -> Result<(), ConfigError> {
        let given = [
            (self.ca_cert.is_some() && !ca_shared, "--ca-cert"),
            (self.mqtt_username.is_some(), "--mqtt-username"),
            (self.mqtt_password_file.is_some(), "--mqtt-password-file"),
        ];
        match given.iter().find(|(set, _)| *set) {
            Some((_, name)) => Err(ConfigError::NoUrl(name)),
            None => Ok(()),
        }
    }
}

/// The first line of the file, without its line ending.
fn read_password(path: &Path) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::PasswordFile {
        path: path.to_path_buf(),
        source,
    })?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(ConfigError::EmptyPassword(path.to_path_buf()));
    }
    Ok(Secret::new(line.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Files {
        _dir: tempfile::TempDir,
        ca: PathBuf,
        pw: PathBuf,
    }

    fn files() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let pki = hilt_cloud::Pki::generate(&["127.0.0.1".into()]).unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, pki.ca_pem()).unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "hunter2-secret\r\n").unwrap();
        Files { _dir: dir, ca, pw }
    }

    fn settings(f: &Files) -> CloudSettings {
        CloudSettings {
            mqtt_url: Some("mqtts://127.0.0.1:8883".into()),
            ca_cert: Some(f.ca.clone()),
            mqtt_username: Some("dev".into()),
            mqtt_password_file: Some(f.pw.clone()),
            mqtt_plain_url: Some("mqtt://127.0.0.1:1883".into()),
            telemetry_ms: 100,
            backoff_max_ms: 2_000,
        }
    }

    fn defects(names: &[&str]) -> DefectSet {
        DefectSet::parse(names).unwrap()
    }

    #[test]
    fn resolves_a_tls_cloud_without_leaking_the_password() {
        let f = files();
        let o = settings(&f).resolve(&defects(&[]), false).unwrap().unwrap();
        assert!(o.url.tls && o.url.port == 8883);
        assert_eq!(o.ca.len(), 1);
        let c = o.credentials.as_ref().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.expose()),
            ("dev", "hunter2-secret")
        );
        assert_eq!(o.telemetry, Duration::from_millis(100));
        assert!(!o.accept_any_cert && !o.undeclared_flow);
        assert!(!format!("{o:?}").contains("hunter2"));
    }

    #[test]
    fn no_url_means_no_cloud_but_stray_options_are_refused() {
        assert!(
            CloudSettings::default()
                .resolve(&defects(&[]), false)
                .unwrap()
                .is_none()
        );
        let f = files();
        let mut s = settings(&f);
        s.mqtt_url = None;
        assert!(matches!(
            s.resolve(&defects(&[]), false),
            Err(ConfigError::NoUrl("--ca-cert"))
        ));
        s.mqtt_username = None;
        s.mqtt_password_file = None;
        assert!(s.resolve(&defects(&[]), true).unwrap().is_none());
    }

    #[test]
    fn defects_pick_url_and_trust() {
        let f = files();
        let o = settings(&f)
            .resolve(&defects(&["plaintext-mqtt", "undeclared-flow"]), false)
            .unwrap()
            .unwrap();
        assert!(!o.url.tls && o.url.port == 1883 && o.undeclared_flow);
        let mut s = settings(&f);
        s.mqtt_plain_url = None;
        let err = s.resolve(&defects(&["plaintext-mqtt"]), false).unwrap_err();
        assert!(matches!(err, ConfigError::PlainUrlMissing));
        assert!(err.to_string().contains("--mqtt-plain-url"));
        s.mqtt_plain_url = Some("mqtts://127.0.0.1:1".into());
        assert!(matches!(
            s.resolve(&defects(&["plaintext-mqtt"]), false),
            Err(ConfigError::PlainUrlIsTls)
        ));
        s.ca_cert = None;
        assert!(matches!(
            s.resolve(&defects(&[]), false),
            Err(ConfigError::CaMissing)
        ));
        let o = s
            .resolve(&defects(&["accepts-untrusted-cert"]), false)
            .unwrap()
            .unwrap();
        assert!(o.accept_any_cert && o.ca.is_empty());
    }

    #[test]
    fn credential_files_are_checked() {
        let f = files();
        let mut s = settings(&f);
        s.mqtt_password_file = None;
        assert!(matches!(
            s.resolve(&defects(&[]), false),
            Err(ConfigError::CredentialsPair)
        ));
        s.mqtt_password_file = Some(f.pw.with_extension("missing"));
        assert!(matches!(
            s.resolve(&defects(&[]), false),
            Err(ConfigError::PasswordFile { .. })
        ));
        std::fs::write(&f.pw, "\n").unwrap();
        s.mqtt_password_file = Some(f.pw.clone());
        assert!(matches!(
            s.resolve(&defects(&[]), false),
            Err(ConfigError::EmptyPassword(_))
        ));
        s.mqtt_url = Some("mqtts://u:p@h".into());
        assert!(matches!(
            s.resolve(&defects(&[]), false),
            Err(ConfigError::Url(_))
        ));
    }
}
