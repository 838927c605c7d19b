//! Interoperability with mosquitto's command-line clients (Debian package `mosquitto-clients`): they
//! publish and subscribe through our broker over TLS, MQTT 3.1.1 and 5, QoS 1 and 2. Where the binaries
//! are missing the trials report *ignored*, never passed. The self-check trial always runs.

#[path = "common/mod.rs"]
mod common;

use common::*;
use hilt_cloud::{FlowKind, ServerCert};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MESSAGES: usize = 50;

fn main() {
    let args = Arguments::from_args();
    let mut trials = vec![Trial::test("self_check_ca_file_and_tls_login", self_check)];
    for (version, qos) in [
        ("mqttv311", 1),
        ("mqttv311", 2),
        ("mqttv5", 1),
        ("mqttv5", 2),
    ] {
        trials.push(Trial::ignorable_test(
            format!("mosquitto_{version}_qos{qos}_over_tls"),
            move || interop(version, qos),
        ));
    }
    trials.push(Trial::ignorable_test(
        "mosquitto_bad_password_is_refused",
        bad_password,
    ));
    libtest_mimic::run(&args, trials).exit();
}

fn find(bin: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

fn binaries() -> Option<(PathBuf, PathBuf)> {
    Some((find("mosquitto_pub")?, find("mosquitto_sub")?))
}

const MISSING: &str =
    "mosquitto_pub/mosquitto_sub not installed (apt-get install mosquitto-clients)";

fn runtime() -> Result<tokio::runtime::Runtime, Failed> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn write_ca(dir: &Path, env: &Env) -> Result<PathBuf, Failed> {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, env.pki.ca_pem())?;
    Ok(ca)
}

/// Wait for a child with a deadline; kill it if it overruns. Returns (success, stdout, stderr).
fn wait(mut child: Child, limit: Duration) -> Result<(bool, String, String), Failed> {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{child:?} did not finish within {limit:?}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut out)?;
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err)?;
    }
    Ok((status.success(), out, err))
}

fn self_check() -> Result<(), Failed> {
    let rt = runtime()?;
    let dir = tempfile::tempdir()?;
    rt.block_on(async {
        let env = start(config()).await;
        let ca = write_ca(dir.path(), &env)?;
        let pem = std::fs::read_to_string(&ca)?;
        let (c, _rx) = v4_connect(v4_opts(
            "self-check",
            env.tls(),
            Some(client_tls(&pem, None)),
            Some(("ops", "opspass")),
        ))
        .await
        .map_err(|e| format!("TLS login with the CA file failed: {e}"))?;
        c.disconnect().await?;
        env.broker.shutdown().await;
        Ok(())
    })
}

fn interop(version: &'static str, qos: u8) -> Result<Completion, Failed> {
    let Some((pub_bin, sub_bin)) = binaries() else {
        return Ok(Completion::ignored_with(MISSING));
    };
    let rt = runtime()?;
    let env = rt.block_on(start(config()));
    let dir = tempfile::tempdir()?;
    let ca = write_ca(dir.path(), &env)?;
    let port = env.tls().port().to_string();
    let (sub_id, pub_id) = (
        format!("msub-{version}-q{qos}"),
        format!("mpub-{version}-q{qos}"),
    );
    let common = |bin: &Path, id: &str, user: &str, pass: &str| {
        let mut c = Command::new(bin);
        c.args(["-h", "127.0.0.1", "-p", &port, "--cafile"])
            .arg(&ca);
        c.args([
            "-u",
            user,
            "-P",
            pass,
            "-V",
            version,
            "-q",
            &qos.to_string(),
            "-i",
            id,
        ]);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    };
    let sub = common(&sub_bin, &sub_id, "ops", "opspass")
        .args([
            "-t",
            "devices/+/tele",
            "-v",
            "-C",
            &MESSAGES.to_string(),
            "-W",
            "60",
        ])
        .spawn()?;
    let sid = sub_id.clone();
    if env
        .log
        .wait_for(0, T, move |f| {
            f.kind == FlowKind::Subscribe && f.client_id.as_deref() == Some(&sid)
        })
        .is_none()
    {
        let (_, out, err) = wait(sub, Duration::from_secs(1)).unwrap_or_default();
        return Err(format!(
            "mosquitto_sub never subscribed: {out} {err} {:#?}",
            env.log.snapshot()
        )
        .into());
    }
    let mut publ = common(&pub_bin, &pub_id, "dev", "devpass")
        .args(["-t", "devices/dev/tele", "-l"])
        .stdin(Stdio::piped())
        .spawn()?;
    let lines: Vec<String> = (0..MESSAGES).map(|i| format!("reading-{i}")).collect();
    if let Some(mut stdin) = publ.stdin.take() {
        stdin.write_all(format!("{}\n", lines.join("\n")).as_bytes())?;
    }
    let (pub_ok, _, pub_err) = wait(publ, Duration::from_secs(60))?;
    if !pub_ok {
        return Err(format!("mosquitto_pub failed: {pub_err}").into());
    }
    let (sub_ok, out, sub_err) = wait(sub, Duration::from_secs(60))?;
    if !sub_ok {
        return Err(format!("mosquitto_sub failed: {sub_err}; got {out:?}").into());
    }
    let expected: Vec<String> = lines
        .iter()
        .map(|l| format!("devices/dev/tele {l}"))
        .collect();
    let got: Vec<String> = out.lines().map(str::to_string).collect();
    if got != expected {
        return Err(format!("mosquitto_sub received {got:?}").into());
    }
    let flows = env.log.snapshot();
    let published: Vec<_> = flows
        .iter()
        .filter(|f| f.kind == FlowKind::Publish && f.client_id.as_deref() == Some(&pub_id))
        .collect();
    if published.len() != MESSAGES {
        return Err(format!(
            "{} publish flows from {pub_id}, want {MESSAGES}",
            published.len()
        )
        .into());
    }
    for (f, line) in published.iter().zip(&lines) {
        let ok = f.identity.as_deref() == Some("dev")
            && f.tls
            && f.server_cert == Some(ServerCert::Trusted)
            && f.topic.as_deref() == Some("devices/dev/tele")
            && env.log.payload(&f.payload_sha256).as_deref() == Some(line.as_bytes());
        if !ok {
            return Err(format!("misattributed flow {f:?}").into());
        }
    }
    let label = if version == "mqttv5" {
        "mqtt=5"
    } else {
        "mqtt=3.1.1"
    };
    let connect_ok = flows.iter().any(|f| {
        f.kind == FlowKind::Connect
            && f.client_id.as_deref() == Some(&pub_id)
            && f.detail.as_deref().is_some_and(|d| d.contains(label))
    });
    if !connect_ok {
        return Err(format!("no {label} connect flow for {pub_id}").into());
    }
    rt.block_on(env.broker.shutdown());
    Ok(Completion::Completed)
}

fn bad_password() -> Result<Completion, Failed> {
    let Some((pub_bin, _)) = binaries() else {
        return Ok(Completion::ignored_with(MISSING));
    };
    let rt = runtime()?;
    let env = rt.block_on(start(config()));
    let dir = tempfile::tempdir()?;
    let ca = write_ca(dir.path(), &env)?;
    for version in ["mqttv311", "mqttv5"] {
        let child = Command::new(&pub_bin)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &env.tls().port().to_string(),
                "--cafile",
            ])
            .arg(&ca)
            .args([
                "-u",
                "dev",
                "-P",
                "not-the-password",
                "-V",
                version,
                "-t",
                "devices/dev/x",
                "-m",
                "x",
                "-i",
                "intruder",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (ok, _, err) = wait(child, Duration::from_secs(30))?;
        if ok {
            return Err(format!("{version}: mosquitto_pub succeeded with a bad password").into());
        }
        // mosquitto prints the CONNACK reason it received: proof it got one, not a dropped socket.
        if !err.to_lowercase().contains("bad user name or password")
            && !err.to_lowercase().contains("not authori")
        {
            return Err(format!("{version}: unexpected mosquitto_pub error: {err}").into());
        }
    }
    let refused = env
        .log
        .snapshot()
        .iter()
        .filter(|f| {
            f.kind == FlowKind::ConnectRefused && f.client_id.as_deref() == Some("intruder")
        })
        .count();
    if refused != 2 {
        return Err(format!("{refused} connect-refused flows, want 2").into());
    }
    rt.block_on(env.broker.shutdown());
    Ok(Completion::Completed)
}
