//! A tiny MQTT 3.1.1 peer for the board to talk to: accepts CONNECT, answers CONNACK/SUBACK/PUBACK
//! and PINGRESP, records what arrives, and can push publishes once the board subscribes.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Packet, PubAck, Publish, SubAck, SubscribeReasonCode,
};
use rumqttc::mqttbytes::{Error as MqttError, QoS};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

const MAX_PACKET: usize = 1 << 20;

#[derive(Clone)]
pub struct Connect {
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub keep_alive: u16,
    pub clean_session: bool,
    pub at: Instant,
}

/// The password is shown as `‹secret›`: a failing assertion must not print it.
impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "‹secret›"))
            .field("keep_alive", &self.keep_alive)
            .field("clean_session", &self.clean_session)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
pub struct Record {
    pub connects: Vec<Connect>,
    pub subscriptions: Vec<String>,
    pub publishes: Vec<(String, Vec<u8>)>,
    /// Connections whose TLS handshake failed.
    pub tls_failures: usize,
}

impl Record {
    pub fn published(&self, topic: &str) -> Vec<serde_json::Value> {
        self.publishes
            .iter()
            .filter(|(t, _)| t == topic)
            .filter_map(|(_, p)| serde_json::from_slice(p).ok())
            .collect()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Script {
    /// Publishes sent to the board right after it subscribes to their topic.
    pub on_subscribe: Vec<(String, Vec<u8>)>,
    /// The first N connections are closed right after their CONNACK (a flaky broker).
    pub drop_first: usize,
}

pub struct Peer {
    pub addr: SocketAddr,
    record: Arc<Mutex<Record>>,
    _runtime: tokio::runtime::Runtime,
}

impl Peer {
    /// Listens on 127.0.0.1 (TLS with `tls`, else plain).
    pub fn start(tls: Option<Arc<ServerConfig>>, script: Script) -> Peer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let record = Arc::new(Mutex::new(Record::default()));
        let rec = record.clone();
        runtime.spawn(async move {
            let script = Arc::new(script);
            let mut n = 0usize;
            while let Ok((tcp, _)) = listener.accept().await {
                n += 1;
                let (rec, script, tls) = (rec.clone(), script.clone(), tls.clone());
                let drop_it = n <= script.drop_first;
                tokio::spawn(async move {
                    match tls {
                        None => serve(tcp, rec, &script, drop_it).await,
                        Some(cfg) => match TlsAcceptor::from(cfg).accept(tcp).await {
                            Ok(s) => serve(s, rec, &script, drop_it).await,
                            Err(_) => rec.lock().unwrap().tls_failures += 1,
                        },
                    }
                });
            }
        });
        Peer {
            addr,
            record,
            _runtime: runtime,
        }
    }

    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.addr)
    }

    pub fn with<T>(&self, f: impl FnOnce(&Record) -> T) -> T {
        f(&self.record.lock().unwrap())
    }

    /// Waits (10 s at most) until `cond` holds; panics with the record otherwise.
    pub fn wait_for(&self, what: &str, cond: impl Fn(&Record) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.with(&cond) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Formatted first: panicking with the lock held would poison it for the peer's tasks.
        let record = self.with(|r| format!("{r:?}"));
        panic!("timed out waiting for {what}: {record}");
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    rec: Arc<Mutex<Record>>,
    script: &Script,
    drop_after_connack: bool,
) {
    let mut buf = BytesMut::new();
    let mut pkid = 0u16;
    loop {
        let packet = match Packet::read(&mut buf, MAX_PACKET) {
            Ok(p) => p,
            Err(MqttError::InsufficientBytes(_)) => match s.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
            Err(_) => return,
        };
        let mut out = Vec::new();
        match packet {
            Packet::Connect(c) => {
                rec.lock().unwrap().connects.push(Connect {
                    client_id: c.client_id.clone(),
                    username: c.login.as_ref().map(|l| l.username.clone()),
                    password: c.login.as_ref().map(|l| l.password.clone()),
                    keep_alive: c.keep_alive,
                    clean_session: c.clean_session,
                    at: Instant::now(),
                });
                out.push(Packet::ConnAck(ConnAck::new(
                    ConnectReturnCode::Success,
                    false,
                )));
            }
            Packet::Subscribe(sub) => {
                let codes = sub
                    .filters
                    .iter()
                    .map(|f| SubscribeReasonCode::Success(f.qos))
                    .collect();
                out.push(Packet::SubAck(SubAck::new(sub.pkid, codes)));
                for f in &sub.filters {
                    rec.lock().unwrap().subscriptions.push(f.path.clone());
                    for (topic, payload) in script.on_subscribe.iter().filter(|(t, _)| *t == f.path)
                    {
                        pkid += 1;
                        let mut p = Publish::new(topic.as_str(), QoS::AtLeastOnce, payload.clone());
                        p.pkid = pkid;
                        out.push(Packet::Publish(p));
                    }
                }
            }
            Packet::Publish(p) => {
                if p.qos != QoS::AtMostOnce {
                    out.push(Packet::PubAck(PubAck::new(p.pkid)));
                }
                rec.lock()
                    .unwrap()
                    .publishes
                    .push((p.topic.clone(), p.payload.to_vec()));
            }
            Packet::PingReq => out.push(Packet::PingResp),
            Packet::Disconnect => return,
            _ => {}
        }
        let mut wire = BytesMut::new();
        for p in &out {
            p.write(&mut wire, MAX_PACKET).unwrap();
        }
        if s.write_all(&wire).await.is_err() || s.flush().await.is_err() {
            return;
        }
        if drop_after_connack && out.iter().any(|p| matches!(p, Packet::ConnAck(_))) {
            let _ = s.shutdown().await;
            return;
        }
    }
}
