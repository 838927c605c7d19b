//! `hilt cloud` as a lab uses it: start it, read endpoints.json, talk to it over TLS with a Rust client
//! and with mosquitto's command-line clients, interrupt it, and check the flow log it left.

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Cloud {
    child: Child,
    dir: tempfile::TempDir,
    endpoints: serde_json::Value,
}

impl Cloud {
    fn start(clients: &[&str]) -> Result<Cloud, Failed> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let state = dir.path().join("state");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hilt"));
        cmd.args(["cloud", "--state-dir", state.to_str().unwrap()]);
        for c in clients {
            cmd.args(["--client", c]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let path = state.join("endpoints.json");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !path.exists() {
            if Instant::now() > deadline {
                return Err("hilt cloud wrote no endpoints.json within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let endpoints = serde_json::from_slice(&std::fs::read(&path).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        Ok(Cloud {
            child,
            dir,
            endpoints,
        })
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn port(&self, key: &str) -> u16 {
        let url = self.endpoints[key].as_str().unwrap_or_default();
        url.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    fn password(&self, user: &str) -> String {
        let clients = self.endpoints["clients"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        clients
            .iter()
            .find(|c| c["username"] == user)
            .and_then(|c| c["password"].as_str())
            .unwrap_or_default()
            .to_string()
    }

    /// SIGINT, as at the terminal; returns the exit code and the flow log's lines.
    fn stop(mut self) -> Result<(i32, Vec<serde_json::Value>), Failed> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().map_err(|e| e.to_string())? {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return Err("hilt cloud did not stop within 20 s of SIGINT".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let text =
            std::fs::read_to_string(self.state().join("flows.jsonl")).map_err(|e| e.to_string())?;
        let flows = text
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<Vec<serde_json::Value>, _>>()
            .map_err(|e| e.to_string())?;
        Ok((status.code().unwrap_or(-1), flows))
    }
}

fn check(cond: bool, what: impl Into<String>) -> Result<(), Failed> {
    if cond {
        Ok(())
    } else {
        Err(what.into().into())
    }
}

fn tls_config(ca_pem: &Path) -> Result<Arc<rustls::ClientConfig>, Failed> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        rustls_pki_types::CertificateDer::pem_file_iter(ca_pem).map_err(|e| e.to_string())?
    {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

fn rust_client_over_tls() -> Result<(), Failed> {
    let cloud = Cloud::start(&["dev-a"])?;
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(cloud.state())
            .map_err(|e| e.to_string())?
            .permissions(),
    ) & 0o777;
    check(
        mode == 0o700,
        format!("state dir mode {mode:o}, expected 700"),
    )?;
    let ca = PathBuf::from(cloud.endpoints["ca_cert"].as_str().unwrap_or_default());
    let mut opts = rumqttc::MqttOptions::new("dev-a-client", "127.0.0.1", cloud.port("mqtts"));
    opts.set_credentials("dev-a", cloud.password("dev-a"));
    opts.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(tls_config(&ca)?),
    ));
    let (client, mut connection) = rumqttc::Client::new(opts, 10);
    client
        .subscribe("lab/echo", rumqttc::QoS::AtLeastOnce)
        .map_err(|e| e.to_string())?;
    client
        .publish(
            "lab/echo",
            rumqttc::QoS::AtLeastOnce,
            false,
            b"hello".to_vec(),
        )
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = false;
    for event in connection.iter() {
        if Instant::now() > deadline {
            break;
        }
        match event {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)))
                if p.payload.as_ref() == b"hello" =>
            {
                got = true;
                break;
            }
            Ok(_) => {}
            Err(e) => return Err(format!("MQTT over TLS failed: {e}").into()),
        }
    }
    check(got, "the message did not come back through the broker")?;
    drop(client);
    let (code, flows) = cloud.stop()?;
    check(code == 0, format!("hilt cloud exited {code} on SIGINT"))?;
    let publish = flows
        .iter()
        .find(|f| f["kind"] == "publish" && f["topic"] == "lab/echo");
    let publish = publish.ok_or("no publish flow in flows.jsonl")?;
    check(
        publish["identity"] == "dev-a"
            && publish["client_id"] == "dev-a-client"
            && publish["tls"] == true,
        format!("bad attribution: {publish}"),
    )?;
    check(publish["payload_len"] == 5, "payload_len")?;
    for f in &flows {
        for key in [
            "time",
            "protocol",
            "kind",
            "client_id",
            "identity",
            "tls",
            "payload_len",
            "payload_sha256",
        ] {
            check(f.get(key).is_some(), format!("flow without {key}: {f}"))?;
        }
    }
    Ok(())
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn mosquitto_clients_over_tls() -> Result<Completion, Failed> {
    if !have("mosquitto_pub") || !have("mosquitto_sub") {
        return Ok(Completion::ignored_with(
            "mosquitto_pub/mosquitto_sub not installed (Debian package mosquitto-clients)",
        ));
    }
    let cloud = Cloud::start(&["sub", "pub"])?;
    let ca = cloud.endpoints["ca_cert"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let port = cloud.port("mqtts").to_string();
    let common = |user: &str, pw: &str| -> Vec<String> {
        [
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--cafile",
            &ca,
            "-u",
            user,
            "-P",
            pw,
            "-V",
            "mqttv5",
            "-q",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let sub = Command::new("mosquitto_sub")
        .args(common("sub", &cloud.password("sub")))
        .args(["-t", "lab/mosq", "-C", "1", "-W", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    // Publish until the subscriber has had time to subscribe, then read what it got.
    let mut out = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut sub = Some(sub);
    while Instant::now() < deadline {
        let ok = Command::new("mosquitto_pub")
            .args(common("pub", &cloud.password("pub")))
            .args(["-t", "lab/mosq", "-m", "from-mosquitto"])
            .status()
            .map_err(|e| e.to_string())?;
        check(ok.success(), "mosquitto_pub failed")?;
        std::thread::sleep(Duration::from_millis(300));
        if let Some(mut s) = sub.take() {
            if s.try_wait().map_err(|e| e.to_string())?.is_some() {
                out = Some(s.wait_with_output().map_err(|e| e.to_string())?);
                break;
            }
            sub = Some(s);
        }
    }
    let out = out.ok_or("mosquitto_sub received nothing within 20 s")?;
    check(
        String::from_utf8_lossy(&out.stdout).trim() == "from-mosquitto",
        format!(
            "mosquitto_sub printed {:?}",
            String::from_utf8_lossy(&out.stdout)
        ),
    )?;
    let (code, flows) = cloud.stop()?;
    check(code == 0, format!("hilt cloud exited {code}"))?;
    let attributed = flows.iter().any(|f| {
        f["kind"] == "publish"
            && f["topic"] == "lab/mosq"
            && f["identity"] == "pub"
            && f["tls"] == true
    });
    check(
        attributed,
        "the flow log does not attribute mosquitto_pub's publish to its identity over TLS",
    )?;
    let subscribed = flows
        .iter()
        .any(|f| f["kind"] == "subscribe" && f["identity"] == "sub");
    check(subscribed, "the flow log has no subscribe by mosquitto_sub")?;
    Ok(Completion::Completed)
}

fn main() {
    let args = Arguments::from_args();
    let trials = vec![
        Trial::test(
            "hilt_cloud_serves_a_rust_client_over_tls_and_logs_it",
            rust_client_over_tls,
        ),
        Trial::ignorable_test(
            "mosquitto_clients_publish_and_subscribe_through_hilt_cloud",
            mosquitto_clients_over_tls,
        ),
    ];
    libtest_mimic::run(&args, trials).exit();
}
