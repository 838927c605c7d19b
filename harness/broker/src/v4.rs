//! MQTT 3.1.1 through rumqttc's `mqttbytes::v4` codec.

use crate::wire::{
    ConnCode, ConnectInfo, Inbound, MAX_PACKET, Message, Outbound, SubCode, SubRequest, Version,
    WireError,
};
use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Packet, PubAck, PubComp, PubRec, PubRel, Publish, SubAck,
    SubscribeReasonCode, UnsubAck,
};
use rumqttc::mqttbytes::{Error, QoS};

fn read(buf: &mut BytesMut) -> Result<Option<Packet>, WireError> {
    match Packet::read(buf, MAX_PACKET) {
        Ok(p) => Ok(Some(p)),
        Err(Error::InsufficientBytes(_)) => Ok(None),
        Err(Error::PayloadSizeLimitExceeded(n)) => Err(WireError::TooLarge(n)),
        Err(e) => Err(WireError::Malformed(e.to_string())),
    }
}

fn qos_from(q: u8) -> QoS {
    rumqttc::mqttbytes::qos(q).unwrap_or(QoS::AtMostOnce)
}

pub fn decode_connect(buf: &mut BytesMut) -> Result<Option<ConnectInfo>, WireError> {
    let Some(packet) = read(buf)? else {
        return Ok(None);
    };
    let Packet::Connect(c) = packet else {
        return Err(WireError::Malformed(
            "the first packet is not CONNECT".into(),
        ));
    };
    let (username, password) = match c.login {
        Some(l) => (
            (!l.username.is_empty()).then_some(l.username),
            (!l.password.is_empty()).then_some(l.password),
        ),
        None => (None, None),
    };
    let will = c.last_will.map(|w| Message {
        topic: w.topic,
        payload: w.message,
        qos: w.qos as u8,
        retain: w.retain,
        props: None,
    });
    Ok(Some(ConnectInfo {
        version: Version::V4,
        client_id: c.client_id,
        clean: c.clean_session,
        keep_alive: c.keep_alive,
        username,
        password,
        will,
        receive_maximum: None,
        max_packet_size: None,
        session_expiry: if c.clean_session { 0 } else { u32::MAX },
        auth_method: None,
    }))
}

pub fn decode(buf: &mut BytesMut) -> Result<Option<Inbound>, WireError> {
    let Some(packet) = read(buf)? else {
        return Ok(None);
    };
    Ok(Some(match packet {
        Packet::Publish(p) => Inbound::Publish {
            msg: Message {
                topic: p.topic,
                payload: p.payload,
                qos: p.qos as u8,
                retain: p.retain,
                props: None,
            },
            pkid: p.pkid,
            topic_alias: None,
        },
        Packet::PubAck(a) => Inbound::PubAck(a.pkid),
        Packet::PubRec(r) => Inbound::PubRec {
            pkid: r.pkid,
            ok: true,
        },
        Packet::PubRel(r) => Inbound::PubRel(r.pkid),
        Packet::PubComp(c) => Inbound::PubComp(c.pkid),
        Packet::Subscribe(s) => Inbound::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| SubRequest {
                    filter: f.path,
                    qos: f.qos as u8,
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: 0,
                })
                .collect(),
        },
        Packet::Unsubscribe(u) => Inbound::Unsubscribe {
            pkid: u.pkid,
            filters: u.topics,
        },
        Packet::PingReq => Inbound::PingReq,
        Packet::Disconnect => Inbound::Disconnect { will: false },
        Packet::Connect(_) => Inbound::Unexpected("CONNECT"),
        Packet::ConnAck(_) => Inbound::Unexpected("CONNACK"),
        Packet::SubAck(_) => Inbound::Unexpected("SUBACK"),
        Packet::UnsubAck(_) => Inbound::Unexpected("UNSUBACK"),
        Packet::PingResp => Inbound::Unexpected("PINGRESP"),
    }))
}

pub fn encode(out: &Outbound<'_>, buf: &mut BytesMut) -> Result<(), WireError> {
    let packet = match out {
        Outbound::ConnAck {
            session_present,
            code,
            ..
        } => {
            let code = match code {
                ConnCode::Accepted => ConnectReturnCode::Success,
                ConnCode::UnsupportedVersion => ConnectReturnCode::RefusedProtocolVersion,
                ConnCode::BadClientId => ConnectReturnCode::BadClientId,
                ConnCode::BadCredentials => ConnectReturnCode::BadUserNamePassword,
                ConnCode::NotAuthorized | ConnCode::BadAuthMethod => {
                    ConnectReturnCode::NotAuthorized
                }
            };
            Packet::ConnAck(ConnAck::new(code, *session_present))
        }
        // 3.1.1 has no negative acknowledgements: a denied publish is acknowledged and dropped.
        Outbound::PubAck { pkid, .. } => Packet::PubAck(PubAck::new(*pkid)),
        Outbound::PubRec { pkid, .. } => Packet::PubRec(PubRec::new(*pkid)),
        Outbound::PubRel(pkid) => Packet::PubRel(PubRel::new(*pkid)),
        Outbound::PubComp(pkid) => Packet::PubComp(PubComp::new(*pkid)),
        Outbound::SubAck { pkid, codes } => Packet::SubAck(SubAck::new(
            *pkid,
            codes
                .iter()
                .map(|c| match c {
                    SubCode::Granted(q) => SubscribeReasonCode::Success(qos_from(*q)),
                    _ => SubscribeReasonCode::Failure,
                })
                .collect(),
        )),
        Outbound::UnsubAck { pkid, .. } => Packet::UnsubAck(UnsubAck::new(*pkid)),
        Outbound::PingResp => Packet::PingResp,
        Outbound::Publish {
            msg,
            qos,
            pkid,
            dup,
            retain,
        } => Packet::Publish(Publish {
            dup: *dup,
            qos: qos_from(*qos),
            retain: *retain,
            topic: msg.topic.clone(),
            pkid: *pkid,
            payload: msg.payload.clone(),
        }),
        Outbound::Disconnect(_) => return Ok(()),
    };
    packet
        .write(buf, usize::MAX)
        .map(|_| ())
        .map_err(|e| WireError::Malformed(e.to_string()))
}
