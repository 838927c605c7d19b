//! One connected client after CONNACK: a single task that reads, writes, delivers queued messages
//! within the client's in-flight window, watches keepalive, faults, takeover and shutdown. Reading and
//! writing are polled together so a client that is busy writing to us still gets its deliveries.

mod deliver;
mod inbound;

use crate::acl::ResolvedAcl;
use crate::connect::close;
use crate::router::Session;
use crate::wire::{ConnectInfo, Message, Outbound, Version, WireError, reason};
use crate::{Link, Shared, v4, v5};
use bytes::{Buf, BytesMut};
use hilt_cloud::FaultState;
use hilt_cloud::flowlog::{FlowKind, NewFlow, ServerCert};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{Notify, watch};

/// MQTT 3.1.1 has no Receive Maximum: use rumqttc's and most clients' default window.
const V4_WINDOW: usize = 100;
/// Stop moving queued messages into the output buffer beyond this many bytes.
const OUT_HIGH_WATER: usize = 256 * 1024;
/// Stop reading from a client that does not read its acknowledgements beyond this many bytes.
const OUT_STOP_READING: usize = 1024 * 1024;

/// Sleep for `d` unless the broker stops first (then false).
pub async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stop.changed() => false,
    }
}

/// Why a session ended.
#[derive(Debug)]
enum End {
    Client { will: bool },
    Closed(String),
    KeepAlive,
    Protocol { code: u8, text: String },
    TakenOver,
    Fault(&'static str),
    Shutdown,
}

impl End {
    fn detail(&self) -> String {
        match self {
            End::Client { will: false } => "client DISCONNECT".into(),
            End::Client { will: true } => "client DISCONNECT with will".into(),
            End::Closed(why) => why.clone(),
            End::KeepAlive => "keepalive timeout (1.5 x keepalive without a packet)".into(),
            End::Protocol { text, .. } => format!("protocol error: {text}"),
            End::TakenOver => "session taken over by a new connection".into(),
            End::Fault(f) => format!("fault: {f}"),
            End::Shutdown => "broker shutdown".into(),
        }
    }

    /// The MQTT 5 DISCONNECT the broker sends; faults cut the link as a real outage would.
    fn v5_code(&self) -> Option<u8> {
        match self {
            End::KeepAlive => Some(reason::KEEP_ALIVE_TIMEOUT),
            End::Protocol { code, .. } => Some(*code),
            End::TakenOver => Some(reason::SESSION_TAKEN_OVER),
            End::Shutdown => Some(reason::SERVER_SHUTTING_DOWN),
            End::Client { .. } | End::Closed(_) | End::Fault(_) => None,
        }
    }

    fn publishes_will(&self) -> bool {
        !matches!(self, End::Client { will: false } | End::Shutdown)
    }
}

fn protocol(code: u8, text: impl Into<String>) -> End {
    End::Protocol {
        code,
        text: text.into(),
    }
}

pub struct Setup {
    pub shared: Arc<Shared>,
    pub link: Link,
    pub info: ConnectInfo,
    pub identity: Option<String>,
    pub acl: ResolvedAcl,
    pub session: Arc<Session>,
    pub conn_id: u64,
    pub wake: Arc<Notify>,
    pub inbuf: BytesMut,
    pub outbuf: BytesMut,
}

pub struct Conn {
    shared: Arc<Shared>,
    link: Link,
    version: Version,
    client_id: String,
    identity: Option<String>,
    acl: ResolvedAcl,
    session: Arc<Session>,
    conn_id: u64,
    wake: Arc<Notify>,
    inbuf: BytesMut,
    outbuf: BytesMut,
    needs_flush: bool,
    window: usize,
    max_out_packet: usize,
    keep_alive: Option<Duration>,
    last_rx: Instant,
    aliases: HashMap<u16, String>,
    will: Option<Message>,
}

enum Step {
    Wrote(usize),
    Flushed,
}

async fn write_step<W: AsyncWrite>(w: &mut WriteHalf<W>, buf: &[u8]) -> std::io::Result<Step> {
    if buf.is_empty() {
        w.flush().await.map(|()| Step::Flushed)
    } else {
        match w.write(buf).await? {
            0 => Err(std::io::ErrorKind::WriteZero.into()),
            n => Ok(Step::Wrote(n)),
        }
    }
}

impl Conn {
    pub fn new(s: Setup) -> Conn {
        let window = match s.info.version {
            Version::V4 => V4_WINDOW,
            // 0 is a protocol violation; treat it as "no limit given" rather than stall.
            Version::V5 => usize::from(
                s.info
                    .receive_maximum
                    .filter(|r| *r > 0)
                    .unwrap_or(u16::MAX),
            ),
        };
        Conn {
            version: s.info.version,
            client_id: s.info.client_id,
            window,
            max_out_packet: s.info.max_packet_size.map_or(usize::MAX, |m| m as usize),
            keep_alive: (s.info.keep_alive > 0)
                .then(|| Duration::from_millis(u64::from(s.info.keep_alive) * 1500)),
            last_rx: Instant::now(),
            will: s.info.will,
            shared: s.shared,
            link: s.link,
            identity: s.identity,
            acl: s.acl,
            session: s.session,
            conn_id: s.conn_id,
            wake: s.wake,
            inbuf: s.inbuf,
            outbuf: s.outbuf,
            needs_flush: false,
            aliases: HashMap::new(),
        }
    }

    fn flow(&self, kind: FlowKind) -> NewFlow {
        let mut f = self.link.flow(kind);
        f.client_id = Some(self.client_id.clone());
        f.identity = self.identity.clone();
        f.actor = crate::actor_of(self.identity.as_deref());
        f
    }

    fn send(&mut self, out: Outbound<'_>) {
        let r = match self.version {
            Version::V4 => v4::encode(&out, &mut self.outbuf),
            Version::V5 => v5::encode(&out, &mut self.outbuf),
        };
        if let Err(e) = r {
            tracing::error!(client_id = self.client_id, "cannot encode a packet: {e}");
        }
    }

    pub async fn run<S>(
        mut self,
        mut reader: ReadHalf<S>,
        mut writer: WriteHalf<S>,
        mut stop: watch::Receiver<bool>,
        resumed: bool,
    ) where
        S: AsyncRead + AsyncWrite + Send,
    {
        let mut faults = self.shared.faults.subscribe();
        faults.borrow_and_update();
        if resumed {
            self.resend_inflight();
        }
        let mut end = if self.pump() {
            self.process(&mut stop).await.err()
        } else {
            Some(End::TakenOver)
        };
        let ka = self
            .keep_alive
            .unwrap_or(Duration::from_secs(365 * 24 * 3600));
        let ka_timer = tokio::time::sleep(ka);
        tokio::pin!(ka_timer);
        while end.is_none() {
            if self.inbuf.capacity() - self.inbuf.len() < 4096 {
                self.inbuf.reserve(16 * 1024);
            }
            let can_read = self.outbuf.len() < OUT_STOP_READING;
            let want_write = !self.outbuf.is_empty() || self.needs_flush;
            tokio::select! {
                _ = stop.changed() => end = Some(End::Shutdown),
                changed = faults.changed() => match changed {
                    Ok(()) => end = self.fault_closes(&faults.borrow_and_update()).map(End::Fault),
                    // The broker owns a sender; this only happens if it is being torn down.
                    Err(_) => end = Some(End::Shutdown),
                },
                r = reader.read_buf(&mut self.inbuf), if can_read => match r {
                    Ok(0) => end = Some(End::Closed("connection closed by the client".into())),
                    Ok(_) => end = self.process(&mut stop).await.err(),
                    Err(e) => end = Some(End::Closed(format!("read error: {e}"))),
                },
                w = write_step(&mut writer, &self.outbuf), if want_write => match w {
                    Ok(Step::Wrote(n)) => {
                        self.outbuf.advance(n);
                        self.needs_flush = true;
                        if !self.pump() {
                            end = Some(End::TakenOver);
                        }
                    }
                    Ok(Step::Flushed) => self.needs_flush = false,
                    Err(e) => end = Some(End::Closed(format!("write error: {e}"))),
                },
                _ = self.wake.notified() => if !self.pump() { end = Some(End::TakenOver) },
                () = &mut ka_timer, if self.keep_alive.is_some() => {
                    let due = self.last_rx + ka;
                    if Instant::now() >= due {
                        end = Some(End::KeepAlive);
                    } else {
                        ka_timer.as_mut().reset(due.into());
                    }
                }
            }
        }
        self.finish(end.unwrap_or(End::Shutdown), writer).await;
    }

    fn fault_closes(&self, f: &FaultState) -> Option<&'static str> {
        if f.outage_now().is_some() {
            return Some("outage");
        }
        let presented_untrusted = self.link.server_cert == Some(ServerCert::Untrusted);
        (self.link.tls && f.untrusted_cert != presented_untrusted)
            .then_some("server certificate switched")
    }

    /// Decode and handle every complete packet in the input buffer.
    async fn process(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(), End> {
        loop {
            let decoded = match self.version {
                Version::V4 => v4::decode(&mut self.inbuf),
                Version::V5 => v5::decode(&mut self.inbuf),
            };
            let packet = match decoded {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(()),
                Err(e @ WireError::TooLarge(_)) => {
                    return Err(protocol(reason::PACKET_TOO_LARGE, e.to_string()));
                }
                Err(e) => return Err(protocol(reason::MALFORMED, e.to_string())),
            };
            self.last_rx = Instant::now();
            self.handle(packet, stop).await?;
        }
    }

    async fn finish<S: AsyncWrite>(mut self, end: End, mut writer: WriteHalf<S>) {
        if self.version == Version::V5
            && let Some(code) = end.v5_code()
        {
            self.send(Outbound::Disconnect(code));
        }
        close(&mut writer, &self.outbuf).await;
        self.shared.router.detach(&self.session, self.conn_id);
        if end.publishes_will()
            && let Some(will) = self.will.take()
        {
            let allowed = self.acl.may_publish(&will.topic);
            let mut f = self.flow(if allowed {
                FlowKind::Publish
            } else {
                FlowKind::Denied
            });
            f.topic = Some(will.topic.clone());
            f.detail = Some(format!(
                "will message (qos={} retain={}){}",
                will.qos,
                will.retain,
                if allowed { "" } else { " not allowed" }
            ));
            self.shared.log.record(f, &will.payload);
            if allowed {
                self.shared.router.publish(will, &self.client_id);
            }
        }
        let detail = end.detail();
        tracing::info!(
            client_id = self.client_id,
            "MQTT client disconnected: {detail}"
        );
        let mut f = self.flow(FlowKind::Disconnect);
        f.detail = Some(detail);
        self.shared.log.record(f, &[]);
    }
}
