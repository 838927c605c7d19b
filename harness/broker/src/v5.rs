//! MQTT 5 through rumqttc's `v5::mqttbytes::v5` codec.

use crate::wire::{
    ConnCode, ConnectInfo, Inbound, MAX_PACKET, Message, Outbound, SubCode, SubRequest, Version,
    WireError,
};
use bytes::{Bytes, BytesMut};
use rumqttc::v5::mqttbytes::v5::RetainForwardRule;
use rumqttc::v5::mqttbytes::v5::{
    ConnAck, ConnAckProperties, ConnectReturnCode, Disconnect, DisconnectProperties,
    DisconnectReasonCode, Packet, PubAck, PubAckReason, PubComp, PubRec, PubRecReason, PubRel,
    Publish, PublishProperties, SubAck, SubscribeReasonCode, UnsubAck, UnsubAckReason,
};
use rumqttc::v5::mqttbytes::{Error, QoS};

/// Topic aliases a client may use towards the broker.
pub const TOPIC_ALIAS_MAX: u16 = 32;

fn read(buf: &mut BytesMut) -> Result<Option<Packet>, WireError> {
    // rumqttc rejects a DISCONNECT with remaining length 0, which MQTT 5 allows (reason 0x00, no
    // properties) and mosquitto's clients send: recognise it here.
    if buf.len() >= 2 && buf[0] == 0xE0 && buf[1] == 0 {
        let _ = buf.split_to(2);
        return Ok(Some(Packet::Disconnect(Disconnect::new(
            DisconnectReasonCode::NormalDisconnection,
        ))));
    }
    match Packet::read(buf, Some(MAX_PACKET as u32)) {
        Ok(p) => Ok(Some(p)),
        Err(Error::InsufficientBytes(_)) => Ok(None),
        Err(Error::PayloadSizeLimitExceeded { pkt_size, .. }) => Err(WireError::TooLarge(pkt_size)),
        Err(e) => Err(WireError::Malformed(e.to_string())),
    }
}

fn qos_from(q: u8) -> QoS {
    rumqttc::v5::mqttbytes::qos(q).unwrap_or(QoS::AtMostOnce)
}

fn utf8(b: Bytes) -> Result<String, WireError> {
    String::from_utf8(b.to_vec()).map_err(|_| WireError::Malformed("topic is not UTF-8".into()))
}

pub fn decode_connect(buf: &mut BytesMut) -> Result<Option<ConnectInfo>, WireError> {
    let Some(packet) = read(buf)? else {
        return Ok(None);
    };
    let Packet::Connect(c, will, login) = packet else {
        return Err(WireError::Malformed(
            "the first packet is not CONNECT".into(),
        ));
    };
    let props = c.properties.unwrap_or_default();
    let (username, password) = match login {
        Some(l) => (
            (!l.username.is_empty()).then_some(l.username),
            (!l.password.is_empty()).then_some(l.password),
        ),
        None => (None, None),
    };
    let will = match will {
        Some(w) => {
            let wp = w.properties.map(|p| PublishProperties {
                payload_format_indicator: p.payload_format_indicator,
                message_expiry_interval: p.message_expiry_interval,
                response_topic: p.response_topic,
                correlation_data: p.correlation_data,
                user_properties: p.user_properties,
                content_type: p.content_type,
                ..Default::default()
            });
            Some(Message {
                topic: utf8(w.topic)?,
                payload: w.message,
                qos: w.qos as u8,
                retain: w.retain,
                props: wp,
            })
        }
        None => None,
    };
    Ok(Some(ConnectInfo {
        version: Version::V5,
        client_id: c.client_id,
        clean: c.clean_start,
        keep_alive: c.keep_alive,
        username,
        password,
        will,
        receive_maximum: props.receive_maximum,
        max_packet_size: props.max_packet_size,
        session_expiry: props.session_expiry_interval.unwrap_or(0),
        auth_method: props.authentication_method,
    }))
}

pub fn decode(buf: &mut BytesMut) -> Result<Option<Inbound>, WireError> {
    let Some(packet) = read(buf)? else {
        return Ok(None);
    };
    Ok(Some(match packet {
        Packet::Publish(p) => {
            let mut props = p.properties;
            let topic_alias = props.as_mut().and_then(|pp| {
                pp.subscription_identifiers.clear();
                pp.topic_alias.take()
            });
            Inbound::Publish {
                msg: Message {
                    topic: utf8(p.topic)?,
                    payload: p.payload,
                    qos: p.qos as u8,
                    retain: p.retain,
                    props,
                },
                pkid: p.pkid,
                topic_alias,
            }
        }
        Packet::PubAck(a) => Inbound::PubAck(a.pkid),
        Packet::PubRec(r) => Inbound::PubRec {
            pkid: r.pkid,
            ok: matches!(
                r.reason,
                PubRecReason::Success | PubRecReason::NoMatchingSubscribers
            ),
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
                    no_local: f.nolocal,
                    retain_as_published: f.preserve_retain,
                    retain_handling: match f.retain_forward_rule {
                        RetainForwardRule::OnEverySubscribe => 0,
                        RetainForwardRule::OnNewSubscribe => 1,
                        RetainForwardRule::Never => 2,
                    },
                })
                .collect(),
        },
        Packet::Unsubscribe(u) => Inbound::Unsubscribe {
            pkid: u.pkid,
            filters: u.filters,
        },
        Packet::PingReq(_) => Inbound::PingReq,
        Packet::Disconnect(d) => Inbound::Disconnect {
            will: d.reason_code == DisconnectReasonCode::DisconnectWithWillMessage,
        },
        Packet::Connect(..) => Inbound::Unexpected("CONNECT"),
        Packet::ConnAck(_) => Inbound::Unexpected("CONNACK"),
        Packet::SubAck(_) => Inbound::Unexpected("SUBACK"),
        Packet::UnsubAck(_) => Inbound::Unexpected("UNSUBACK"),
        Packet::PingResp(_) => Inbound::Unexpected("PINGRESP"),
        Packet::Auth(_) => Inbound::Unexpected("AUTH"),
    }))
}

fn connack_props(assigned_id: Option<&str>) -> ConnAckProperties {
    ConnAckProperties {
        session_expiry_interval: None,
        receive_max: None,
        max_qos: None,
        retain_available: Some(1),
        max_packet_size: Some(MAX_PACKET as u32),
        assigned_client_identifier: assigned_id.map(str::to_string),
        topic_alias_max: Some(TOPIC_ALIAS_MAX),
        reason_string: None,
        user_properties: Vec::new(),
        wildcard_subscription_available: Some(1),
        subscription_identifiers_available: Some(0),
        shared_subscription_available: Some(0),
        server_keep_alive: None,
        response_information: None,
        server_reference: None,
        authentication_method: None,
        authentication_data: None,
    }
}

pub fn encode(out: &Outbound<'_>, buf: &mut BytesMut) -> Result<(), WireError> {
    let packet = match out {
        Outbound::ConnAck {
            session_present,
            code,
            assigned_id,
        } => {
            // Only MQTT 5 codes here: rumqttc panics on encoding the 3.1.1-only variants.
            let (code, properties) = match code {
                ConnCode::Accepted => (
                    ConnectReturnCode::Success,
                    Some(connack_props(*assigned_id)),
                ),
                ConnCode::UnsupportedVersion => {
                    (ConnectReturnCode::UnsupportedProtocolVersion, None)
                }
                ConnCode::BadClientId => (ConnectReturnCode::ClientIdentifierNotValid, None),
                ConnCode::BadCredentials => (ConnectReturnCode::BadUserNamePassword, None),
                ConnCode::NotAuthorized => (ConnectReturnCode::NotAuthorized, None),
                ConnCode::BadAuthMethod => (ConnectReturnCode::BadAuthenticationMethod, None),
            };
            Packet::ConnAck(ConnAck {
                session_present: *session_present,
                code,
                properties,
            })
        }
        Outbound::PubAck { pkid, denied } => {
            let mut a = PubAck::new(*pkid, None);
            if *denied {
                a.reason = PubAckReason::NotAuthorized;
            }
            Packet::PubAck(a)
        }
        Outbound::PubRec { pkid, denied } => {
            let mut r = PubRec::new(*pkid, None);
            if *denied {
                r.reason = PubRecReason::NotAuthorized;
            }
            Packet::PubRec(r)
        }
        Outbound::PubRel(pkid) => Packet::PubRel(PubRel::new(*pkid, None)),
        Outbound::PubComp(pkid) => Packet::PubComp(PubComp::new(*pkid, None)),
        Outbound::SubAck { pkid, codes } => Packet::SubAck(SubAck {
            pkid: *pkid,
            return_codes: codes
                .iter()
                .map(|c| match c {
                    SubCode::Granted(q) => SubscribeReasonCode::Success(qos_from(*q)),
                    SubCode::NotAuthorized => SubscribeReasonCode::NotAuthorized,
                    SubCode::InvalidFilter => SubscribeReasonCode::TopicFilterInvalid,
                    SubCode::SharedNotSupported => {
                        SubscribeReasonCode::SharedSubscriptionsNotSupported
                    }
                })
                .collect(),
            properties: None,
        }),
        Outbound::UnsubAck { pkid, existed } => Packet::UnsubAck(UnsubAck {
            pkid: *pkid,
            reasons: existed
                .iter()
                .map(|e| {
                    if *e {
                        UnsubAckReason::Success
                    } else {
                        UnsubAckReason::NoSubscriptionExisted
                    }
                })
                .collect(),
            properties: None,
        }),
        Outbound::PingResp => Packet::PingResp(rumqttc::v5::mqttbytes::v5::PingResp),
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
            topic: Bytes::copy_from_slice(msg.topic.as_bytes()),
            pkid: *pkid,
            payload: msg.payload.clone(),
            properties: msg.props.clone(),
        }),
        Outbound::Disconnect(code) => {
            let reason_code = DisconnectReasonCode::try_from(*code)
                .unwrap_or(DisconnectReasonCode::UnspecifiedError);
            // Always with a reason string: without properties rumqttc miscounts the remaining length, and
            // with empty ones it writes the two-byte "normal disconnection" form, losing the reason.
            let properties = Some(DisconnectProperties {
                session_expiry_interval: None,
                reason_string: Some(format!("{reason_code:?}")),
                user_properties: Vec::new(),
                server_reference: None,
            });
            Packet::Disconnect(Disconnect {
                reason_code,
                properties,
            })
        }
    };
    packet
        .write(buf, None)
        .map(|_| ())
        .map_err(|e| WireError::Malformed(e.to_string()))
}
