//! `cargo bench -p hilt-broker`: broker throughput (QoS 0 and 1, one rumqttc publisher to one rumqttc
//! subscriber over loopback) and connect latency (CONNECT to CONNACK, p50/p99), for hilt's broker and,
//! where a `mosquitto` binary exists, for mosquitto started on a free port in the same run.
//! Bounded: a fixed message count, and every measurement gives up after 60 s.

use bytes::BytesMut;
use hilt_broker::{Broker, BrokerConfig};
use hilt_cloud::{Faults, FlowLog, Pki};
use rumqttc::mqttbytes::v4::{Connect, Packet};
use rumqttc::{AsyncClient, Event, MqttOptions, QoS};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MESSAGES: usize = 10_000;
const CONNECTS: usize = 200;
const LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Clone, Copy)]
struct Numbers {
    qos0: f64,
    qos1: f64,
    p50: Duration,
    p99: Duration,
}

fn opts(id: &str, addr: SocketAddr) -> MqttOptions {
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(30));
    o
}

/// Messages per second from the first publish to the subscriber holding all of them (or what arrived
/// within the limit, reported as a rate over the limit).
async fn throughput(addr: SocketAddr, qos: QoS, tag: &str) -> f64 {
    let (sub, mut sel) = AsyncClient::new(opts(&format!("bench-sub-{tag}"), addr), 100);
    sub.subscribe("bench/#", qos)
        .await
        .expect("subscribe request");
    loop {
        if let Ok(Event::Incoming(rumqttc::Packet::SubAck(_))) = sel.poll().await {
            break;
        }
    }
    let counter = tokio::spawn(async move {
        let mut n = 0;
        while n < MESSAGES {
            match sel.poll().await {
                Ok(Event::Incoming(rumqttc::Packet::Publish(_))) => n += 1,
                Ok(_) => {}
                Err(e) => {
                    eprintln!("subscriber error after {n}: {e}");
                    break;
                }
            }
        }
        n
    });
    let (publ, mut pel) = AsyncClient::new(opts(&format!("bench-pub-{tag}"), addr), 1000);
    let driver = tokio::spawn(async move { while pel.poll().await.is_ok() {} });
    let payload = vec![b'x'; 64];
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        for _ in 0..MESSAGES {
            if publ
                .publish("bench/t", qos, false, payload.clone())
                .await
                .is_err()
            {
                break;
            }
        }
        publ
    });
    let got = tokio::time::timeout(LIMIT, counter)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    let secs = started.elapsed().as_secs_f64();
    if got < MESSAGES {
        eprintln!("  {tag}: only {got}/{MESSAGES} messages arrived");
    }
    if let Ok(p) = sender.await {
        let _ = p.disconnect().await;
    }
    let _ = sub.disconnect().await;
    driver.abort();
    got as f64 / secs
}

/// CONNECT to CONNACK over a fresh TCP connection each time, with a raw codec-level client.
async fn connect_latency(addr: SocketAddr) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(CONNECTS);
    for i in 0..CONNECTS {
        let t0 = Instant::now();
        let Ok(Ok(mut s)) = tokio::time::timeout(LIMIT, tokio::net::TcpStream::connect(addr)).await
        else {
            continue;
        };
        let _ = s.set_nodelay(true);
        let mut out = BytesMut::new();
        if Packet::Connect(Connect::new(format!("lat-{i}")))
            .write(&mut out, usize::MAX)
            .is_err()
            || s.write_all(&out).await.is_err()
        {
            continue;
        }
        let mut buf = BytesMut::new();
        let acked = tokio::time::timeout(LIMIT, async {
            loop {
                if let Ok(Packet::ConnAck(_)) = Packet::read(&mut buf, 1024) {
                    return true;
                }
                match s.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => {}
                }
            }
        })
        .await;
        if acked == Ok(true) {
            samples.push(t0.elapsed());
        }
    }
    samples.sort();
    let pick = |q: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    (pick(0.50), pick(0.99))
}

async fn measure(addr: SocketAddr, tag: &str) -> Numbers {
    let qos0 = throughput(addr, QoS::AtMostOnce, &format!("{tag}-q0")).await;
    let qos1 = throughput(addr, QoS::AtLeastOnce, &format!("{tag}-q1")).await;
    let (p50, p99) = connect_latency(addr).await;
    Numbers {
        qos0,
        qos1,
        p50,
        p99,
    }
}

fn print(name: &str, n: &Numbers) {
    println!(
        "{name:<10} QoS0 {:>9.0} msg/s   QoS1 {:>9.0} msg/s   connect p50 {:>8.0?}  p99 {:>8.0?}",
        n.qos0, n.qos1, n.p50, n.p99
    );
}

fn free_port() -> Option<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()
        .map(|a| a.port())
}

async fn mosquitto() -> Option<Numbers> {
    let bin = std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())?;
    let dir = tempfile::tempdir().ok()?;
    let port = free_port()?;
    let conf = dir.path().join("mosquitto.conf");
    // Same in-flight window as ours (100) and no queue cap, so neither broker drops or throttles differently.
    let text = format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 100\nmax_queued_messages 0\npersistence false\nlog_dest none\n"
    );
    std::fs::write(&conf, text).ok()?;
    let mut child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(addr).await.is_err() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let n = measure(addr, "mosquitto").await;
    let _ = child.kill();
    let _ = child.wait();
    Some(n)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let pki = Arc::new(Pki::generate(&["localhost".into(), "127.0.0.1".into()]).expect("pki"));
        let cfg = BrokerConfig { tls_port: None, allow_anonymous: true, ..BrokerConfig::default() };
        let broker = Broker::start(cfg, pki, FlowLog::new(), Faults::new()).await.expect("broker");
        let addr = broker.plain_addr().expect("plain listener");
        println!("broker throughput: {MESSAGES} x 64-byte messages, 1 publisher -> 1 subscriber (rumqttc), loopback; {CONNECTS} connects");
        let ours = measure(addr, "hilt").await;
        broker.shutdown().await;
        print("hilt", &ours);
        match mosquitto().await {
            Some(m) => {
                print("mosquitto", &m);
                println!(
                    "ratio hilt/mosquitto: QoS0 {:.2}  QoS1 {:.2}  connect p50 {:.2}  p99 {:.2} (latency: lower is better)",
                    ours.qos0 / m.qos0,
                    ours.qos1 / m.qos1,
                    ours.p50.as_secs_f64() / m.p50.as_secs_f64(),
                    ours.p99.as_secs_f64() / m.p99.as_secs_f64()
                );
            }
            None => println!("mosquitto: not installed (apt-get install mosquitto); no comparison"),
        }
    });
}
