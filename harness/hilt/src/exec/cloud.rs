//! Scenario steps and checks that act on the mock cloud: injecting faults, waiting for the device's
//! flows, and judging the flow log (TLS everywhere, MITM refused, every flow declared).

use hilt_cloud::{Flow, OutageMode};
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

pub fn apply_fault(cloud: &CloudSession, fault: CloudFault, length: Duration) -> FaultWindow {
    let from_us = cloud.log.now_us();
    match fault {
        CloudFault::UntrustedCert => cloud.faults.present_untrusted_cert(true),
        CloudFault::Outage => cloud.faults.outage(OutageMode::Refuse, length),
    }
    std::thread::sleep(length);
    cloud.faults.clear();
    FaultWindow {
        fault,
        from_us,
        to_us: cloud.log.now_us(),
    }
}

/// Whether a flow is the device's own (its cloud identity or its client id).
pub fn is_dut(cloud: &CloudSession, f: &Flow) -> bool {
    f.identity.as_deref() == Some(cloud.dut_username.as_str())
        || f.client_id.as_deref() == Some(cloud.dut_client_id.as_str())
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
pub fn tls_only(cloud: &CloudSession, flows: &[Flow]) -> CheckRecord {
    let dut: Vec<&Flow> = flows.iter().filter(|f| is_dut(cloud, f)).collect();
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
pub fn refuses_untrusted_cert(
    cloud: &CloudSession,
    flows: &[Flow],
    windows: &[FaultWindow],
) -> CheckRecord {
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
        .filter(|f| inside(f) && is_dut(cloud, f) && !f.tls)
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

/// Every publish or request of the device matches a declared data flow.
pub fn flows_declared(
    cloud: &CloudSession,
    flows: &[Flow],
    declared: &[DeclaredFlow],
) -> CheckRecord {
    const KIND: &str = "flows-declared";
    let data: Vec<&Flow> = flows
        .iter()
        .filter(|f| is_dut(cloud, f) && (f.kind == "publish" || f.kind == "request"))
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
        .filter(|f| {
            let (proto, what) = match (&f.topic, &f.path) {
                (Some(t), _) => ("mqtt", t.as_str()),
                (None, Some(p)) => ("http", p.as_str()),
                (None, None) => ("mqtt", ""),
            };
            !declared.iter().any(|d| d.matches(proto, what))
        })
        .collect();
    if undeclared.is_empty() {
        let used: std::collections::BTreeSet<&str> = data
            .iter()
            .filter_map(|f| {
                declared.iter().find(|d| {
                    d.matches(
                        if f.topic.is_some() { "mqtt" } else { "http" },
                        f.topic.as_deref().or(f.path.as_deref()).unwrap_or(""),
                    )
                })
            })
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
