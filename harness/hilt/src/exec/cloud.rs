//! Scenario steps and checks that act on the mock cloud: injecting faults, waiting for the device's
//! flows, and judging the flow log (TLS everywhere, MITM refused, every flow declared).

use hilt_cloud::{Flow, OutageMode};
use hilt_link::Cancel;
use hilt_model::Verdict;
use hilt_model::flows::DeclaredFlow;
use hilt_model::scenario::CloudFault;
use hilt_report::model::CheckRecord;
use std::time::Duration;

use crate::cloud::CloudSession;

/// A fault as it was applied, in flow-log time.
#[derive(Debug, Clone)]
pub struct FaultWindow {
    pub fault: CloudFault,
    pub from_us: u64,
    pub to_us: u64,
}

/// Apply `fault` for `length` (cut short if the run is cancelled), then clear it.
pub fn apply_fault(
    cloud: &CloudSession,
    fault: CloudFault,
    length: Duration,
    cancel: &Cancel,
) -> FaultWindow {
    let from_us = cloud.log.now_us();
    match fault {
        CloudFault::UntrustedCert => cloud.faults.present_untrusted_cert(true),
        CloudFault::Outage => cloud.faults.outage(OutageMode::Refuse, length),
    }
    cancel.sleep(length);
    cloud.faults.clear();
    FaultWindow {
        fault,
        from_us,
        to_us: cloud.log.now_us(),
    }
}

/// Wait up to `timeout` for a flow from `from` on that satisfies `pred`, in slices so that a
/// cancelled run stops waiting promptly.
pub fn wait_flow(
    cloud: &CloudSession,
    from: u64,
    timeout: Duration,
    cancel: &Cancel,
    pred: impl Fn(&Flow) -> bool,
) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let slice = left.min(hilt_link::cancel_poll());
        if cloud.log.wait_for(from, slice, &pred).is_some() {
            return true;
        }
        if left.is_zero() || cancel.is_cancelled() {
            return false;
        }
    }
}

/// Who the device under test is in the mock cloud: its login identity and its MQTT client id.
pub struct Dut<'a> {
    pub identity: &'a str,
    pub client_id: &'a str,
}

impl Dut<'_> {
    pub fn of(cloud: &CloudSession) -> Dut<'_> {
        Dut {
            identity: &cloud.dut_username,
            client_id: &cloud.dut_client_id,
        }
    }

    /// Whether a flow is the device's own.
    pub fn owns(&self, f: &Flow) -> bool {
        f.identity.as_deref() == Some(self.identity)
            || f.client_id.as_deref() == Some(self.client_id)
    }
}

fn record(kind: &str, verdict: Verdict, detail: String) -> CheckRecord {
    CheckRecord {
        kind: kind.into(),
        verdict,
        detail,
    }
}

fn describe(f: &Flow) -> String {
    let what = f.topic.as_deref().or(f.path.as_deref()).unwrap_or("-");
    format!(
        "#{} {} {} ({})",
        f.seq,
        f.kind,
        what,
        if f.tls { "TLS" } else { "plaintext" }
    )
}

fn list(flows: &[&Flow]) -> String {
    let mut s: Vec<String> = flows.iter().take(5).map(|f| describe(f)).collect();
    if flows.len() > 5 {
        s.push(format!("and {} more", flows.len() - 5));
    }
    s.join("; ")
}

/// Every flow of the device used TLS.
pub fn tls_only(dut: &Dut, flows: &[Flow]) -> CheckRecord {
    let dut: Vec<&Flow> = flows.iter().filter(|f| dut.owns(f)).collect();
    if dut.is_empty() {
        return record(
            "tls-only",
            Verdict::Inconclusive,
            "the device made no flow in the mock cloud during the case".into(),
        );
    }
    let plain: Vec<&Flow> = dut.iter().copied().filter(|f| !f.tls).collect();
    if plain.is_empty() {
        record(
            "tls-only",
            Verdict::Pass,
            format!("all {} flow(s) of the device used TLS", dut.len()),
        )
    } else {
        record(
            "tls-only",
            Verdict::Fail,
            format!(
                "{} of {} flow(s) of the device were plaintext: {}",
                plain.len(),
                dut.len(),
                list(&plain)
            ),
        )
    }
}

/// During every untrusted-certificate window the device tried to connect and refused the certificate.
pub fn refuses_untrusted_cert(dut: &Dut, flows: &[Flow], windows: &[FaultWindow]) -> CheckRecord {
    const KIND: &str = "refuses-untrusted-cert";
    let windows: Vec<&FaultWindow> = windows
        .iter()
        .filter(|w| w.fault == CloudFault::UntrustedCert)
        .collect();
    if windows.is_empty() {
        return record(
            KIND,
            Verdict::Error,
            "the scenario applied no untrusted-cert fault".into(),
        );
    }
    let inside = |f: &Flow| {
        windows
            .iter()
            .any(|w| f.t_us >= w.from_us && f.t_us <= w.to_us)
    };
    let accepted: Vec<&Flow> = flows
        .iter()
        .filter(|f| {
            inside(f) && f.server_cert.as_deref() == Some("untrusted") && f.kind != "tls-failed"
        })
        .collect();
    if !accepted.is_empty() {
        return record(
            KIND,
            Verdict::Fail,
            format!(
                "the device talked over the man-in-the-middle's certificate: {}",
                list(&accepted)
            ),
        );
    }
    let plain: Vec<&Flow> = flows
        .iter()
        .filter(|f| inside(f) && dut.owns(f) && !f.tls)
        .collect();
    if !plain.is_empty() {
        return record(
            KIND,
            Verdict::Fail,
            format!(
                "the device sidestepped TLS during the fault: {}",
                list(&plain)
            ),
        );
    }
    let refused = flows
        .iter()
        .filter(|f| {
            inside(f) && f.kind == "tls-failed" && f.server_cert.as_deref() == Some("untrusted")
        })
        .count();
    if refused == 0 {
        record(
            KIND,
            Verdict::Inconclusive,
            "the device made no connection attempt while the untrusted certificate was presented"
                .into(),
        )
    } else {
        record(
            KIND,
            Verdict::Pass,
            format!(
                "the device refused the untrusted certificate {refused} time(s) and set up no session over it"
            ),
        )
    }
}

/// The declaration a flow falls under: MQTT topics by filter, HTTP paths by prefix.
fn declaration<'a>(declared: &'a [DeclaredFlow], f: &Flow) -> Option<&'a DeclaredFlow> {
    declared
        .iter()
        .find(|d| match (d.protocol.as_str(), &f.topic, &f.path) {
            ("mqtt", Some(topic), _) => hilt_broker::topic::matches(topic, &d.pattern),
            ("http", None, Some(path)) => path.starts_with(&d.pattern),
            _ => false,
        })
}

/// Every publish or request of the device matches a declared data flow.
pub fn flows_declared(dut: &Dut, flows: &[Flow], declared: &[DeclaredFlow]) -> CheckRecord {
    const KIND: &str = "flows-declared";
    let data: Vec<&Flow> = flows
        .iter()
        .filter(|f| dut.owns(f) && (f.kind == "publish" || f.kind == "request"))
        .collect();
    if data.is_empty() {
        return record(
            KIND,
            Verdict::Inconclusive,
            "the device sent no data to the mock cloud during the case".into(),
        );
    }
    let undeclared: Vec<&Flow> = data
        .iter()
        .copied()
        .filter(|f| declaration(declared, f).is_none())
        .collect();
    if undeclared.is_empty() {
        let used: std::collections::BTreeSet<&str> = data
            .iter()
            .filter_map(|f| declaration(declared, f))
            .map(|d| d.name.as_str())
            .collect();
        record(
            KIND,
            Verdict::Pass,
            format!(
                "all {} data flow(s) match declarations ({})",
                data.len(),
                used.into_iter().collect::<Vec<_>>().join(", ")
            ),
        )
    } else {
        let mut topics: Vec<String> = undeclared
            .iter()
            .map(|f| f.topic.clone().or(f.path.clone()).unwrap_or_default())
            .collect();
        topics.sort();
        topics.dedup();
        record(
            KIND,
            Verdict::Fail,
            format!(
                "{} flow(s) match no IXIT declaration (undeclared processing): {}",
                undeclared.len(),
                topics.join(", ")
            ),
        )
    }
}

/// During each outage the device kept retrying, but no faster than `max_per_s`.
pub fn orderly_reconnect(flows: &[Flow], windows: &[FaultWindow], max_per_s: u64) -> CheckRecord {
    const KIND: &str = "orderly-reconnect";
    let windows: Vec<&FaultWindow> = windows
        .iter()
        .filter(|w| w.fault == CloudFault::Outage)
        .collect();
    if windows.is_empty() {
        return record(
            KIND,
            Verdict::Error,
            "the scenario applied no outage".into(),
        );
    }
    let mut attempts = 0usize;
    let mut seconds = 0.0;
    for w in &windows {
        // Refused connections carry no identity yet: during a bench outage every attempt is the device's.
        attempts += flows
            .iter()
            .filter(|f| f.kind == "connect-refused" && f.t_us >= w.from_us && f.t_us <= w.to_us)
            .count();
        seconds += (w.to_us - w.from_us) as f64 / 1e6;
    }
    let rate = attempts as f64 / seconds.max(1e-3);
    if attempts == 0 {
        record(
            KIND,
            Verdict::Inconclusive,
            format!("the device made no connection attempt during {seconds:.1} s of outage"),
        )
    } else if rate > max_per_s as f64 {
        record(
            KIND,
            Verdict::Fail,
            format!(
                "{attempts} connection attempts in {seconds:.1} s of outage ({rate:.1}/s, more than {max_per_s}/s): a reconnection storm"
            ),
        )
    } else {
        record(
            KIND,
            Verdict::Pass,
            format!(
                "{attempts} connection attempts in {seconds:.1} s of outage ({rate:.1}/s, at most {max_per_s}/s allowed)"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hilt_cloud::Protocol;

    const DUT: Dut<'static> = Dut {
        identity: "VRB-1",
        client_id: "VRB-1",
    };

    fn flow(seq: u64, t_us: u64, kind: &str, tls: bool, topic: &str) -> Flow {
        Flow {
            seq,
            time: String::new(),
            t_us,
            protocol: Protocol::Mqtt,
            kind: kind.into(),
            client_id: (kind != "tls-failed" && kind != "connect-refused")
                .then(|| "VRB-1".to_string()),
            identity: (kind != "tls-failed" && kind != "connect-refused")
                .then(|| "VRB-1".to_string()),
            tls,
            server_cert: tls.then(|| "trusted".to_string()),
            topic: (!topic.is_empty()).then(|| topic.to_string()),
            path: None,
            method: None,
            status: None,
            peer: None,
            payload_len: 0,
            payload_sha256: String::new(),
            detail: None,
        }
    }

    fn declared(pattern: &str) -> DeclaredFlow {
        DeclaredFlow {
            name: format!("21-PersData/{pattern}"),
            protocol: "mqtt".into(),
            pattern: pattern.into(),
            purpose: String::new(),
            recipient: "manufacturer".into(),
            lawful_basis: "contract".into(),
            consent: false,
            categories: vec![],
        }
    }

    #[test]
    fn tls_only_fails_on_one_plaintext_flow_and_needs_some_traffic() {
        let ok = [flow(0, 0, "publish", true, "vrb/VRB-1/telemetry")];
        assert_eq!(tls_only(&DUT, &ok).verdict, Verdict::Pass);
        let mixed = [
            ok[0].clone(),
            flow(1, 1, "publish", false, "vrb/VRB-1/presence"),
        ];
        assert_eq!(tls_only(&DUT, &mixed).verdict, Verdict::Fail);
        assert_eq!(tls_only(&DUT, &[]).verdict, Verdict::Inconclusive);
        let other = Dut {
            identity: "someone-else",
            client_id: "x",
        };
        assert_eq!(tls_only(&other, &mixed).verdict, Verdict::Inconclusive);
    }

    #[test]
    fn untrusted_cert_must_be_refused_and_tried() {
        let window = [FaultWindow {
            fault: CloudFault::UntrustedCert,
            from_us: 100,
            to_us: 200,
        }];
        let mut refused = flow(0, 150, "tls-failed", true, "");
        refused.server_cert = Some("untrusted".into());
        assert_eq!(
            refuses_untrusted_cert(&DUT, std::slice::from_ref(&refused), &window).verdict,
            Verdict::Pass
        );
        let mut accepted = flow(1, 160, "connect", true, "");
        accepted.server_cert = Some("untrusted".into());
        assert_eq!(
            refuses_untrusted_cert(&DUT, &[refused.clone(), accepted], &window).verdict,
            Verdict::Fail
        );
        let plain = flow(2, 170, "publish", false, "vrb/VRB-1/telemetry");
        assert_eq!(
            refuses_untrusted_cert(&DUT, &[refused, plain], &window).verdict,
            Verdict::Fail
        );
        assert_eq!(
            refuses_untrusted_cert(&DUT, &[], &window).verdict,
            Verdict::Inconclusive
        );
        assert_eq!(
            refuses_untrusted_cert(&DUT, &[], &[]).verdict,
            Verdict::Error
        );
    }

    #[test]
    fn undeclared_topics_fail_and_are_named() {
        let decl = [declared("vrb/+/telemetry"), declared("vrb/+/presence")];
        let flows = [
            flow(0, 0, "publish", true, "vrb/VRB-1/telemetry"),
            flow(1, 0, "publish", true, "vrb/VRB-1/presence"),
        ];
        assert_eq!(flows_declared(&DUT, &flows, &decl).verdict, Verdict::Pass);
        let extra = [
            flows[0].clone(),
            flow(2, 0, "publish", true, "vrb/VRB-1/diag/wifi-scan"),
        ];
        let c = flows_declared(&DUT, &extra, &decl);
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(
            c.detail.contains("vrb/VRB-1/diag/wifi-scan"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn reconnect_rate_is_judged_within_outages() {
        let window = [FaultWindow {
            fault: CloudFault::Outage,
            from_us: 0,
            to_us: 2_000_000,
        }];
        let calm: Vec<Flow> = (0..4)
            .map(|i| flow(i, i * 400_000, "connect-refused", false, ""))
            .collect();
        assert_eq!(orderly_reconnect(&calm, &window, 5).verdict, Verdict::Pass);
        let storm: Vec<Flow> = (0..200)
            .map(|i| flow(i, i * 10_000, "connect-refused", false, ""))
            .collect();
        assert_eq!(orderly_reconnect(&storm, &window, 5).verdict, Verdict::Fail);
        assert_eq!(
            orderly_reconnect(&[], &window, 5).verdict,
            Verdict::Inconclusive
        );
    }
}
