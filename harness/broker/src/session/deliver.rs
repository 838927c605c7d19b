//! Deliveries to the client: queued messages move into the output buffer while the client's in-flight
//! window (MQTT 5 Receive Maximum, or 100 for 3.1.1) has room.

use super::{Conn, OUT_HIGH_WATER};
use crate::router::{Inflight, Stage};
use crate::stats::bump;
use crate::wire::Outbound;

impl Conn {
    /// Move queued messages into the output buffer while the client's window allows. False if another
    /// connection has taken the session over.
    pub(super) fn pump(&mut self) -> bool {
        let session = self.session.clone();
        let mut st = session.lock();
        if !st.owned_by(self.conn_id) {
            return false;
        }
        while self.outbuf.len() < OUT_HIGH_WATER {
            match st.queue.front() {
                None => break,
                Some(q) if q.qos > 0 && st.inflight.len() >= self.window => break,
                Some(_) => {}
            }
            let Some(q) = st.queue.pop_front() else { break };
            let pkid = if q.qos > 0 { st.alloc_pkid() } else { 0 };
            let before = self.outbuf.len();
            self.send(Outbound::Publish {
                msg: &q.msg,
                qos: q.qos,
                pkid,
                dup: false,
                retain: q.retain,
            });
            if self.outbuf.len() - before > self.max_out_packet {
                // Larger than the client accepts (MQTT 5 Maximum Packet Size): the spec says discard.
                self.outbuf.truncate(before);
                bump(&self.shared.counters.dropped);
                continue;
            }
            bump(&self.shared.counters.messages_out);
            if q.qos > 0 {
                let stage = if q.qos == 1 {
                    Stage::Puback
                } else {
                    Stage::Pubrec
                };
                st.inflight.insert(pkid, Inflight { item: q, stage });
            }
        }
        true
    }

    /// A resumed session first repeats what was in flight when the last connection ended.
    pub(super) fn resend_inflight(&mut self) {
        let session = self.session.clone();
        let st = session.lock();
        for (pkid, i) in &st.inflight {
            match i.stage {
                Stage::Pubcomp => self.send(Outbound::PubRel(*pkid)),
                _ => self.send(Outbound::Publish {
                    msg: &i.item.msg,
                    qos: i.item.qos,
                    pkid: *pkid,
                    dup: true,
                    retain: i.item.retain,
                }),
            }
        }
    }
}
