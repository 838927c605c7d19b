//! `refuses-untrusted-cert`: while the cloud presented a certificate from a CA the device must not
//! trust (a man in the middle), the device tried to connect and refused it: no session over it, no
//! plaintext fallback (EN 303 645 5.5-1). `protocol = "http"` judges one channel only (the update
//! channel, say, whatever the device's MQTT link does meanwhile).

use hilt_cloud::{Flow, FlowKind, Protocol, ServerCert};
use hilt_model::Verdict;
use serde::Deserialize;

use crate::faults::untrusted_cert;

use super::{Check, Evidence, Judgement, Kind, Needs, Params, channel, list_flows};
use crate::exec::{Dut, FaultWindow};

pub const KIND: Kind = Kind {
    name: "refuses-untrusted-cert",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefusesUntrustedCert {
    /// Only connections over this protocol are judged (all when absent).
    protocol: Option<Protocol>,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c = p.get::<RefusesUntrustedCert>()?;
    p.require_fault(&untrusted_cert::KIND)?;
    Ok(Box::new(c))
}

impl Check for RefusesUntrustedCert {
    fn needs(&self) -> Needs {
        Needs { cloud: true }
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        match ev.cloud() {
            Ok(c) => judge(&c.dut, &channel(c.flows, self.protocol), c.windows),
            Err(j) => j,
        }
    }
}

fn judge(dut: &Dut, flows: &[Flow], windows: &[FaultWindow]) -> Judgement {
    let windows: Vec<&FaultWindow> = windows
        .iter()
        .filter(|w| w.fault == untrusted_cert::KIND.name)
        .collect();
    if windows.is_empty() {
        return (
            Verdict::Inconclusive,
            "missing evidence: no untrusted-cert fault was applied (the case stopped before it)"
                .into(),
        );
    }
    let inside = |f: &Flow| {
        windows
            .iter()
            .any(|w| f.t_us >= w.from_us && f.t_us <= w.to_us)
    };
    // A flow tagged with the untrusted certificate was made while it was presented, whenever the
    // server got round to recording it (a handshake the device aborts is logged a moment later, maybe
    // after the fault was cleared): the tag, not the window, says which certificate it met.
    let first = windows.iter().map(|w| w.from_us).min().unwrap_or(0);
    let tagged = |f: &Flow| f.t_us >= first && f.server_cert == Some(ServerCert::Untrusted);
    // A flow tagged with the untrusted certificate that is not a handshake failure means the handshake
    // succeeded. Refusals made before any handshake (outage, connection limit) carry no tag.
    let accepted: Vec<&Flow> = flows
        .iter()
        .filter(|f| tagged(f) && f.kind != FlowKind::TlsFailed)
        .collect();
    if !accepted.is_empty() {
        return (
            Verdict::Fail,
            format!(
                "the device talked over the man-in-the-middle's certificate: {}",
                list_flows(&accepted)
            ),
        );
    }
    let plain: Vec<&Flow> = flows
        .iter()
        .filter(|f| inside(f) && dut.owns(f) && !f.tls)
        .collect();
    if !plain.is_empty() {
        return (
            Verdict::Fail,
            format!(
                "the device sidestepped TLS during the fault: {}",
                list_flows(&plain)
            ),
        );
    }
    let refused = flows
        .iter()
        .filter(|f| tagged(f) && f.kind == FlowKind::TlsFailed)
        .count();
    if refused == 0 {
        (
            Verdict::Inconclusive,
            "missing evidence: the device made no connection attempt while the untrusted certificate was presented".into(),
        )
    } else {
        (
            Verdict::Pass,
            format!(
                "the device refused the untrusted certificate {refused} time(s) and set up no session over it"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{DUT, flow};

    #[test]
    fn the_untrusted_cert_must_be_refused_and_tried() {
        let window = [FaultWindow {
            fault: untrusted_cert::KIND.name,
            from_us: 100,
            to_us: 200,
        }];
        let mut refused = flow(0, 150, FlowKind::TlsFailed, true, "");
        refused.server_cert = Some(ServerCert::Untrusted);
        assert_eq!(
            judge(&DUT, std::slice::from_ref(&refused), &window).0,
            Verdict::Pass
        );
        let mut accepted = flow(1, 160, FlowKind::Connect, true, "");
        accepted.server_cert = Some(ServerCert::Untrusted);
        assert_eq!(
            judge(&DUT, &[refused.clone(), accepted], &window).0,
            Verdict::Fail
        );
        let plain = flow(2, 170, FlowKind::Publish, false, "vrb/VRB-1/telemetry");
        assert_eq!(judge(&DUT, &[refused, plain], &window).0, Verdict::Fail);
        assert_eq!(judge(&DUT, &[], &window).0, Verdict::Inconclusive);
        assert_eq!(judge(&DUT, &[], &[]).0, Verdict::Inconclusive);
    }

    #[test]
    fn a_protocol_filter_judges_that_channel_only() {
        let p = |t: &str| {
            let table: toml::Table = toml::from_str(t).unwrap();
            table
        };
        let c: RefusesUntrustedCert = toml::Value::Table(p("protocol = \"http\""))
            .try_into()
            .unwrap();
        assert_eq!(c.protocol, Some(Protocol::Http));
        let c: Result<RefusesUntrustedCert, _> =
            toml::Value::Table(p("protocol = \"gopher\"")).try_into();
        assert!(c.is_err());
        // The MQTT link talks over the MITM's certificate; the update channel refuses it.
        let window = [FaultWindow {
            fault: untrusted_cert::KIND.name,
            from_us: 100,
            to_us: 200,
        }];
        let mut mqtt = flow(0, 150, FlowKind::Connect, true, "");
        mqtt.server_cert = Some(ServerCert::Untrusted);
        let mut https = flow(1, 160, FlowKind::TlsFailed, true, "");
        https.protocol = Protocol::Http;
        https.server_cert = Some(ServerCert::Untrusted);
        let all = [mqtt, https];
        assert_eq!(judge(&DUT, &channel(&all, None), &window).0, Verdict::Fail);
        let http = channel(&all, Some(Protocol::Http));
        assert_eq!(judge(&DUT, &http, &window).0, Verdict::Pass);
        let mqtt_only = channel(&all, Some(Protocol::Mqtt));
        assert_eq!(judge(&DUT, &mqtt_only, &window).0, Verdict::Fail);
    }

    #[test]
    fn a_refusal_recorded_just_after_the_fault_still_counts() {
        let window = [FaultWindow {
            fault: untrusted_cert::KIND.name,
            from_us: 100,
            to_us: 200,
        }];
        let mut late = flow(0, 250, FlowKind::TlsFailed, true, "");
        late.server_cert = Some(ServerCert::Untrusted);
        assert_eq!(
            judge(&DUT, std::slice::from_ref(&late), &window).0,
            Verdict::Pass
        );
        // Before the fault, the untrusted certificate was never presented: nothing to count.
        let mut early = late.clone();
        early.t_us = 50;
        assert_eq!(judge(&DUT, &[early], &window).0, Verdict::Inconclusive);
    }

    /// Issue 7: a connection-limit refusal before the handshake is no acceptance of the MITM.
    #[test]
    fn a_refusal_before_the_handshake_is_no_fail() {
        let window = [FaultWindow {
            fault: untrusted_cert::KIND.name,
            from_us: 100,
            to_us: 200,
        }];
        let mut limit = flow(0, 120, FlowKind::ConnectRefused, true, "");
        limit.server_cert = None;
        limit.detail = Some("connection limit reached".into());
        let (v, why) = judge(&DUT, std::slice::from_ref(&limit), &window);
        assert_eq!(v, Verdict::Inconclusive, "{why}");
        let mut refused = flow(1, 150, FlowKind::TlsFailed, true, "");
        refused.server_cert = Some(ServerCert::Untrusted);
        assert_eq!(judge(&DUT, &[limit, refused], &window).0, Verdict::Pass);
    }
}
