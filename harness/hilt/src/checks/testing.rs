//! Test helpers for check kinds: step records, flows and evidence without a bench.

use hilt_cloud::{Flow, FlowKind, Protocol, ServerCert};
use hilt_model::flows::DeclaredFlow;
use hilt_report::model::{Attempt, StepRecord};

use crate::exec::Dut;

pub const DUT: Dut<'static> = Dut {
    identity: "VRB-1",
    client_id: "VRB-1",
};

/// A step whose attempts had these outcomes, each answered in the given milliseconds.
pub fn step(outcomes: &[(&str, f64)]) -> StepRecord {
    StepRecord {
        id: "guesses".into(),
        started_ms: 0.0,
        ended_ms: None,
        flow_from_us: None,
        flow_to_us: None,
        attempts: outcomes
            .iter()
            .enumerate()
            .map(|(i, (o, ms))| Attempt {
                iteration: i,
                args: Default::default(),
                outcome: Some(o.to_string()),
                captures: Default::default(),
                at_ms: 0.0,
                elapsed_ms: *ms,
                retries: 0,
                conforms: None,
                error: None,
                sends: None,
            })
            .collect(),
    }
}

pub fn flow(seq: u64, t_us: u64, kind: FlowKind, tls: bool, topic: &str) -> Flow {
    let anonymous = matches!(kind, FlowKind::TlsFailed | FlowKind::ConnectRefused);
    Flow {
        seq,
        time: String::new(),
        t_us,
        protocol: Protocol::Mqtt,
        kind,
        client_id: (!anonymous).then(|| "VRB-1".to_string()),
        identity: (!anonymous).then(|| "VRB-1".to_string()),
        tls,
        server_cert: tls.then_some(ServerCert::Trusted),
        topic: (!topic.is_empty()).then(|| topic.to_string()),
        path: None,
        method: None,
        status: None,
        peer: None,
        payload_len: 0,
        payload_sha256: String::new(),
        detail: None,
        actor: (!anonymous).then_some(hilt_cloud::Actor::Device),
    }
}

pub fn declared(pattern: &str) -> DeclaredFlow {
    DeclaredFlow {
        name: format!("21-PersData/{pattern}"),
        protocol: Protocol::Mqtt,
        pattern: pattern.into(),
        purpose: String::new(),
        recipient: "manufacturer".into(),
        lawful_basis: "contract".into(),
        consent: false,
        consent_purpose: None,
        categories: vec![],
    }
}
