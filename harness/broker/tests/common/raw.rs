//! A raw MQTT client over TCP built from rumqttc's codecs, for observing exactly what the broker sends
//! (in-flight windows, DISCONNECT reason codes) and for sending what well-behaved clients never would.

use bytes::BytesMut;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
}

pub enum Read<P> {
    Packet(P),
    Timeout,
    Closed,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.expect("tcp connect"),
            buf: BytesMut::new(),
        }
    }

    pub async fn send_bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(b).await
    }

    pub async fn send5(&mut self, p: v5::Packet) {
        let mut b = BytesMut::new();
        p.write(&mut b, None).expect("encode");
        self.send_bytes(&b).await.expect("send");
    }

    pub async fn send4(&mut self, p: v4::Packet) {
        let mut b = BytesMut::new();
        p.write(&mut b, usize::MAX).expect("encode");
        self.send_bytes(&b).await.expect("send");
    }

    /// Read bytes until `parse` yields a packet, the timeout passes, or the peer closes.
    async fn read<P>(
        &mut self,
        wait: Duration,
        parse: impl Fn(&mut BytesMut) -> Option<P>,
    ) -> Read<P> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(p) = parse(&mut self.buf) {
                return Read::Packet(p);
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return Read::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return Read::Closed,
                Ok(Ok(_)) => {}
            }
        }
    }

    pub async fn recv5(&mut self, wait: Duration) -> Read<v5::Packet> {
        self.read(wait, |b| v5::Packet::read(b, None).ok()).await
    }

    pub async fn recv4(&mut self, wait: Duration) -> Read<v4::Packet> {
        self.read(wait, |b| v4::Packet::read(b, usize::MAX).ok())
            .await
    }

    /// Whether the broker closes the connection within `wait` (bytes it sends first are skipped).
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        let mut sink = [0u8; 4096];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut sink)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }
}

pub fn connect5(
    id: &str,
    user: &str,
    pass: &str,
    receive_maximum: Option<u16>,
    keep_alive: u16,
) -> v5::Packet {
    let mut props = v5::ConnectProperties::new();
    props.receive_maximum = receive_maximum;
    let c = v5::Connect {
        keep_alive,
        client_id: id.into(),
        clean_start: true,
        properties: Some(props),
    };
    v5::Packet::Connect(c, None, Some(v5::Login::new(user, pass)))
}

pub fn connect4(id: &str, user: &str, pass: &str, keep_alive: u16) -> v4::Packet {
    let mut c = v4::Connect::new(id);
    c.keep_alive = keep_alive;
    c.set_login(user, pass);
    v4::Packet::Connect(c)
}

/// Connect with MQTT 5 and expect CONNACK success.
pub async fn connected5(
    addr: SocketAddr,
    id: &str,
    user: &str,
    pass: &str,
    receive_maximum: Option<u16>,
) -> Raw {
    let mut r = Raw::connect(addr).await;
    r.send5(connect5(id, user, pass, receive_maximum, 60)).await;
    match r.recv5(Duration::from_secs(10)).await {
        Read::Packet(v5::Packet::ConnAck(a)) => assert_eq!(a.code, v5::ConnectReturnCode::Success),
        _ => panic!("no CONNACK"),
    }
    r
}
