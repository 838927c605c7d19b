//! Packets from the client: publishes (ACL, flow log, routing, acknowledgements), acknowledgements of
//! our deliveries, subscriptions, pings and DISCONNECT.

use super::{Conn, End, pause, protocol};
use crate::router::Stage;
use crate::stats::bump;
use crate::wire::{Inbound, Message, Outbound, SubCode, SubRequest, Version, reason};
use crate::{topic, v5};
use hilt_cloud::FlowKind;
use tokio::sync::watch;

impl Conn {
    pub(super) async fn handle(
        &mut self,
        packet: Inbound,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), End> {
        match packet {
            Inbound::Publish {
                msg,
                pkid,
                topic_alias,
            } => self.on_publish(msg, pkid, topic_alias, stop).await?,
            Inbound::PubAck(pkid) => {
                let mut st = self.session.lock();
                if st
                    .inflight
                    .get(&pkid)
                    .is_some_and(|i| i.stage == Stage::Puback)
                {
                    st.inflight.remove(&pkid);
                }
            }
            Inbound::PubRec { pkid, ok } => {
                let session = self.session.clone();
                let mut st = session.lock();
                match st.inflight.get_mut(&pkid) {
                    Some(i) if ok => {
                        i.stage = Stage::Pubcomp;
                        self.send(Outbound::PubRel(pkid));
                    }
                    // MQTT 5 PUBREC >= 0x80: the subscriber refused; the delivery is over.
                    Some(i) if i.stage == Stage::Pubrec => {
                        st.inflight.remove(&pkid);
                    }
                    Some(_) => {}
                    None if ok => self.send(Outbound::PubRel(pkid)),
                    None => {}
                }
            }
            Inbound::PubRel(pkid) => {
                self.session.lock().incoming_qos2.remove(&pkid);
                self.send(Outbound::PubComp(pkid));
            }
            Inbound::PubComp(pkid) => {
                let mut st = self.session.lock();
                if st
                    .inflight
                    .get(&pkid)
                    .is_some_and(|i| i.stage == Stage::Pubcomp)
                {
                    st.inflight.remove(&pkid);
                }
            }
            Inbound::Subscribe { pkid, filters } => self.on_subscribe(pkid, filters),
            Inbound::Unsubscribe { pkid, filters } => {
                let existed = self.shared.router.unsubscribe(&self.session, &filters);
                for f in &filters {
                    let mut flow = self.flow(FlowKind::Unsubscribe);
                    flow.topic = Some(f.clone());
                    self.shared.log.record(flow, &[]);
                }
                self.send(Outbound::UnsubAck { pkid, existed });
            }
            Inbound::PingReq => self.send(Outbound::PingResp),
            Inbound::Disconnect { will } => return Err(End::Client { will }),
            Inbound::Unexpected(name) => {
                return Err(protocol(
                    reason::PROTOCOL_ERROR,
                    format!("unexpected {name} from a client"),
                ));
            }
        }
        if self.pump() {
            Ok(())
        } else {
            Err(End::TakenOver)
        }
    }

    /// Send an acknowledgement after the `delay` fault's pause.
    async fn ack(
        &mut self,
        out: Outbound<'_>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), End> {
        let delay = self.shared.faults.current().delay;
        if !delay.is_zero() && !pause(delay, stop).await {
            return Err(End::Shutdown);
        }
        self.send(out);
        Ok(())
    }

    async fn on_publish(
        &mut self,
        mut msg: Message,
        pkid: u16,
        alias: Option<u16>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), End> {
        if let Some(a) = alias {
            if a == 0 || a > v5::TOPIC_ALIAS_MAX {
                return Err(protocol(
                    reason::TOPIC_ALIAS_INVALID,
                    format!("topic alias {a} out of range"),
                ));
            }
            if msg.topic.is_empty() {
                msg.topic = self.aliases.get(&a).cloned().ok_or_else(|| {
                    protocol(
                        reason::TOPIC_ALIAS_INVALID,
                        format!("unknown topic alias {a}"),
                    )
                })?;
            } else {
                self.aliases.insert(a, msg.topic.clone());
            }
        }
        if !topic::valid_topic(&msg.topic) {
            return Err(protocol(
                reason::TOPIC_NAME_INVALID,
                format!("invalid topic name {:?}", msg.topic),
            ));
        }
        let qos = msg.qos;
        if qos == 2 && self.session.lock().incoming_qos2.contains(&pkid) {
            // A retransmission of a message already routed: acknowledge only.
            return self
                .ack(
                    Outbound::PubRec {
                        pkid,
                        denied: false,
                    },
                    stop,
                )
                .await;
        }
        bump(&self.shared.counters.messages_in);
        let allowed = self.acl.may_publish(&msg.topic);
        let mut f = self.flow(if allowed {
            FlowKind::Publish
        } else {
            FlowKind::Denied
        });
        f.topic = Some(msg.topic.clone());
        f.detail = Some(match allowed {
            true => format!("qos={qos} retain={}", msg.retain),
            false => format!("publish not allowed (qos={qos})"),
        });
        self.shared.log.record(f, &msg.payload);
        if allowed {
            self.shared.router.publish(msg, &self.client_id);
        } else {
            bump(&self.shared.counters.denied);
            tracing::info!(client_id = self.client_id, "publish denied by ACL");
        }
        match qos {
            1 => {
                self.ack(
                    Outbound::PubAck {
                        pkid,
                        denied: !allowed,
                    },
                    stop,
                )
                .await
            }
            2 => {
                // An MQTT 5 refusal (PUBREC >= 0x80) ends the exchange; 3.1.1 still expects PUBREL.
                if allowed || self.version == Version::V4 {
                    self.session.lock().incoming_qos2.insert(pkid);
                }
                self.ack(
                    Outbound::PubRec {
                        pkid,
                        denied: !allowed,
                    },
                    stop,
                )
                .await
            }
            _ => Ok(()),
        }
    }

    fn on_subscribe(&mut self, pkid: u16, filters: Vec<SubRequest>) {
        let mut codes = Vec::with_capacity(filters.len());
        let mut granted = Vec::new();
        let mut flows = Vec::new();
        for r in filters {
            let (code, kind, detail) = if !topic::valid_filter(&r.filter) {
                (
                    SubCode::InvalidFilter,
                    FlowKind::Subscribe,
                    "refused: invalid topic filter".to_string(),
                )
            } else if r.filter.starts_with("$share/") {
                (
                    SubCode::SharedNotSupported,
                    FlowKind::Subscribe,
                    "refused: shared subscriptions are not supported".to_string(),
                )
            } else if !self.acl.may_subscribe(&r.filter) {
                bump(&self.shared.counters.denied);
                (
                    SubCode::NotAuthorized,
                    FlowKind::Denied,
                    format!("subscribe not allowed (qos={})", r.qos),
                )
            } else {
                (
                    SubCode::Granted(r.qos),
                    FlowKind::Subscribe,
                    format!("qos={}", r.qos),
                )
            };
            let mut f = self.flow(kind);
            f.topic = Some(r.filter.clone());
            f.detail = Some(detail);
            flows.push(f);
            if matches!(code, SubCode::Granted(_)) {
                granted.push(r);
            }
            codes.push(code);
        }
        // SUBACK goes out before any retained message the subscription brings.
        self.send(Outbound::SubAck { pkid, codes });
        if !granted.is_empty() {
            self.shared.router.subscribe(&self.session, &granted);
        }
        // Recorded once in force, so a check that waits for the record can publish straight after.
        for f in flows {
            self.shared.log.record(f, &[]);
        }
    }
}
