//! From the first byte to CONNACK: read CONNECT (either protocol level), authenticate, attach the
//! session, then hand over to the session loop. Every refusal gets its CONNACK and a flow-log record.

use crate::auth::{Auth, authenticate};
use crate::router::Owner;
use crate::session::{Conn, pause};
use crate::stats::bump;
use crate::wire::{ConnCode, ConnectInfo, Outbound, Version, WireError, peek_connect_level};
use crate::{Link, Shared, topic, v4, v5};
use bytes::BytesMut;
use hilt_cloud::FlowKind;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{Notify, watch};

/// A connection must send CONNECT within this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest we try to deliver a last packet (a refusal CONNACK, a DISCONNECT) before closing.
pub const FINAL_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

enum FirstPacket {
    Connect(Box<ConnectInfo>),
    UnsupportedLevel(u8),
}

async fn read_connect<S: AsyncRead>(
    reader: &mut ReadHalf<S>,
    buf: &mut BytesMut,
) -> Result<FirstPacket, String> {
    loop {
        match peek_connect_level(buf) {
            Ok(Some(4)) => return decoded(v4::decode_connect(buf)),
            Ok(Some(5)) => return decoded(v5::decode_connect(buf)),
            Ok(Some(level)) => return Ok(FirstPacket::UnsupportedLevel(level)),
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
        match reader.read_buf(buf).await {
            Ok(0) => return Err("closed before CONNECT".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("read error before CONNECT: {e}")),
        }
    }
}

fn decoded(r: Result<Option<ConnectInfo>, WireError>) -> Result<FirstPacket, String> {
    match r {
        Ok(Some(c)) => Ok(FirstPacket::Connect(Box::new(c))),
        Ok(None) => Err("incomplete CONNECT".into()),
        Err(e) => Err(format!("bad CONNECT: {e}")),
    }
}

fn encode(version: Version, out: &Outbound<'_>, buf: &mut BytesMut) {
    let r = match version {
        Version::V4 => v4::encode(out, buf),
        Version::V5 => v5::encode(out, buf),
    };
    if let Err(e) = r {
        tracing::error!("cannot encode {out:?}: {e}");
    }
}

/// Write `buf` (if any) and close, bounded in time so a client that does not read cannot hold us.
pub async fn close<S: AsyncWrite>(writer: &mut WriteHalf<S>, buf: &[u8]) {
    let _ = tokio::time::timeout(FINAL_WRITE_TIMEOUT, async {
        if !buf.is_empty() {
            writer.write_all(buf).await?;
        }
        writer.shutdown().await
    })
    .await;
}

struct Refusal<'a> {
    version: Option<Version>,
    code: Option<ConnCode>,
    client_id: Option<&'a str>,
    detail: String,
}

async fn refuse<S: AsyncWrite>(
    shared: &Shared,
    link: &Link,
    writer: &mut WriteHalf<S>,
    r: Refusal<'_>,
) {
    let mut buf = BytesMut::new();
    if let (Some(v), Some(code)) = (r.version, r.code) {
        encode(
            v,
            &Outbound::ConnAck {
                session_present: false,
                code,
                assigned_id: None,
            },
            &mut buf,
        );
    }
    close(writer, &buf).await;
    bump(&shared.counters.refused);
    tracing::info!(peer = %link.peer, "MQTT connect refused: {}", r.detail);
    let mut f = link.flow(FlowKind::ConnectRefused);
    f.client_id = r.client_id.map(str::to_string);
    f.detail = Some(r.detail);
    shared.log.record(f, &[]);
}

pub async fn serve<S>(stream: S, link: Link, shared: Arc<Shared>, mut stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut inbuf = BytesMut::with_capacity(8 * 1024);
    let first = tokio::select! {
        r = tokio::time::timeout(CONNECT_TIMEOUT, read_connect(&mut reader, &mut inbuf)) => match r {
            Ok(r) => r,
            Err(_) => Err("no CONNECT within 10 s".into()),
        },
        _ = stop.changed() => Err("broker shutting down".into()),
    };
    let mut info = match first {
        Ok(FirstPacket::Connect(c)) => *c,
        Ok(FirstPacket::UnsupportedLevel(level)) => {
            let detail = format!("unsupported MQTT protocol level {level}");
            let r = Refusal {
                version: Some(Version::V4),
                code: Some(ConnCode::UnsupportedVersion),
                client_id: None,
                detail,
            };
            return refuse(&shared, &link, &mut writer, r).await;
        }
        Err(detail) => {
            return refuse(
                &shared,
                &link,
                &mut writer,
                Refusal {
                    version: None,
                    code: None,
                    client_id: None,
                    detail,
                },
            )
            .await;
        }
    };
    let version = info.version;
    let conn_id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let mut assigned = None;
    if info.client_id.is_empty() {
        if version == Version::V4 && !info.clean {
            let r = Refusal {
                version: Some(version),
                code: Some(ConnCode::BadClientId),
                client_id: None,
                detail: "empty client id with a persistent session".into(),
            };
            return refuse(&shared, &link, &mut writer, r).await;
        }
        info.client_id = format!("hilt-auto-{conn_id}");
        assigned = Some(info.client_id.clone());
    }
    let client_id = info.client_id.clone();
    let refusal = |code, detail: String| Refusal {
        version: Some(version),
        code: Some(code),
        client_id: Some(&client_id),
        detail,
    };
    if let Some(m) = &info.auth_method {
        let r = refusal(
            ConnCode::BadAuthMethod,
            format!("enhanced authentication {m:?} is not supported"),
        );
        return refuse(&shared, &link, &mut writer, r).await;
    }
    if info
        .will
        .as_ref()
        .is_some_and(|w| !topic::valid_topic(&w.topic))
    {
        let r = refusal(ConnCode::NotAuthorized, "invalid will topic".into());
        return refuse(&shared, &link, &mut writer, r).await;
    }
    let auth = authenticate(
        &shared.cfg,
        info.username.as_deref(),
        info.password.as_deref(),
        link.cert_cn.as_deref(),
        &client_id,
    );
    let (identity, acl, method) = match auth {
        Auth::Accepted {
            identity,
            acl,
            method,
        } => (identity, acl, method),
        Auth::Refused(code, detail) => {
            return refuse(&shared, &link, &mut writer, refusal(code, detail)).await;
        }
    };
    // The delay fault slows CONNACK down.
    let delay = shared.faults.current().delay;
    if !delay.is_zero() && !pause(delay, &mut stop).await {
        return close(&mut writer, &[]).await;
    }
    let wake = Arc::new(Notify::new());
    let (session, present) = shared.router.attach(
        &client_id,
        info.clean,
        info.session_expiry,
        Owner {
            id: conn_id,
            wake: wake.clone(),
        },
    );
    let mut outbuf = BytesMut::with_capacity(8 * 1024);
    let ack = Outbound::ConnAck {
        session_present: present,
        code: ConnCode::Accepted,
        assigned_id: assigned.as_deref(),
    };
    encode(version, &ack, &mut outbuf);
    bump(&shared.counters.connections);
    shared.counters.active.fetch_add(1, Ordering::Relaxed);
    let mut f = link.flow(FlowKind::Connect);
    f.client_id = Some(client_id.clone());
    f.identity = identity.clone();
    f.actor = crate::actor_of(identity.as_deref());
    f.detail = Some(format!(
        "mqtt={} auth={method} keepalive={} clean={} session_present={present}",
        version.label(),
        info.keep_alive,
        info.clean
    ));
    shared.log.record(f, &[]);
    tracing::info!(peer = %link.peer, client_id, ?identity, "MQTT {} client connected", version.label());
    let conn = Conn::new(crate::session::Setup {
        shared: shared.clone(),
        link,
        info,
        identity,
        acl,
        session,
        conn_id,
        wake,
        inbuf,
        outbuf,
    });
    conn.run(reader, writer, stop, present).await;
    shared.counters.active.fetch_sub(1, Ordering::Relaxed);
}
