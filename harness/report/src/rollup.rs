//! Roll-up of case verdicts per EN 303 645 provision, PSTI requirement and ICO item, and the CI gate.

use hilt_model::Verdict;
use hilt_model::catalogue::Catalogue;
use hilt_model::ics::{Ics, Support};
use std::collections::BTreeMap;

use crate::model::{CaseResult, EnRollup, Gate, IcoRollup, Provisions, PstiRollup, Summary};

fn cases_citing<'a>(
    cases: &'a [CaseResult],
    cites: impl Fn(&CaseResult) -> bool + 'a,
) -> Vec<&'a CaseResult> {
    cases.iter().filter(|c| cites(c)).collect()
}

fn combine(cases: &[&CaseResult]) -> Option<Verdict> {
    Verdict::combine(cases.iter().map(|c| c.verdict))
}

pub fn rollup(cases: &[CaseResult], ics: &Ics, cat: &Catalogue) -> Provisions {
    let mut out = Provisions::default();
    for p in &cat.en {
        let citing = cases_citing(cases, |c| c.provisions.en303645.contains(&p.id));
        let entry = ics.provision(&p.id);
        let ics_na = entry.filter(|e| e.support == Support::NotApplicable);
        let (verdict, reason) = match (ics_na, combine(&citing)) {
            // N/A comes only from the ICS, with its rationale.
            (Some(e), _) => (Verdict::NotApplicable, format!("ICS: N/A, {}", e.detail)),
            (None, Some(v)) => (v, reason_for(v, &citing)),
            (None, None) => (
                Verdict::NotTested,
                "no scenario in this run evidences it".to_string(),
            ),
        };
        out.en303645.push(EnRollup {
            id: p.id.clone(),
            summary: p.summary.clone(),
            status: p.status_code(),
            mandatory: p.is_mandatory(),
            v2: p.v2.clone(),
            ics_support: entry.map(|e| e.support.as_str().to_string()),
            ics_detail: entry.map(|e| e.detail.clone()),
            verdict,
            reason,
            cases: citing.iter().map(|c| c.id.clone()).collect(),
            in_scope: !citing.is_empty(),
        });
    }
    for r in &cat.psti {
        let citing = cases_citing(cases, |c| c.provisions.psti.contains(&r.id));
        let deemed: Vec<&CaseResult> = cases_citing(cases, |c| {
            c.provisions
                .en303645_v2
                .iter()
                .any(|v| r.deemed_by_en_v2.contains(v))
        });
        out.psti.push(PstiRollup {
            id: r.id.clone(),
            paragraph: r.paragraph,
            summary: r.summary.clone(),
            verdict: combine(&citing).unwrap_or(Verdict::NotTested),
            cases: citing.iter().map(|c| c.id.clone()).collect(),
            deemed_by_en_v2: r.deemed_by_en_v2.clone(),
            deemed_verdict: combine(&deemed),
            in_scope: !citing.is_empty(),
        });
    }
    for i in &cat.ico {
        let citing = cases_citing(cases, |c| c.provisions.ico.contains(&i.id));
        out.ico.push(IcoRollup {
            id: i.id.clone(),
            level: i.level.clone(),
            summary: i.summary.clone(),
            verdict: combine(&citing).unwrap_or(Verdict::NotTested),
            cases: citing.iter().map(|c| c.id.clone()).collect(),
            in_scope: !citing.is_empty(),
        });
    }
    out
}

fn reason_for(v: Verdict, citing: &[&CaseResult]) -> String {
    let ids: Vec<&str> = citing
        .iter()
        .filter(|c| c.verdict == v)
        .map(|c| c.id.as_str())
        .collect();
    format!(
        "{} of {} case(s) {}: {}",
        ids.len(),
        citing.len(),
        v,
        ids.join(", ")
    )
}

/// The gate: any mandatory in-scope provision FAIL → non-conformant; else any undecided case or
/// provision, a run that tested nothing, or an interrupted run → undecided.
pub fn summarise(
    cases: &[CaseResult],
    provisions: &Provisions,
    cases_in_suite: usize,
    interrupted: bool,
) -> Summary {
    let mut counts = BTreeMap::new();
    for c in cases {
        *counts.entry(c.verdict).or_insert(0) += 1;
    }
    let mandatory = provisions
        .en303645
        .iter()
        .filter(|p| p.mandatory && p.in_scope);
    let mut failed = Vec::new();
    let mut undecided = Vec::new();
    for p in mandatory {
        if p.verdict == Verdict::Fail {
            failed.push(p.id.clone());
        } else if p.verdict.is_undecided() {
            undecided.push(p.id.clone());
        }
    }
    // A case that errored on a recommendation still means the run was not clean.
    let any_case_undecided = cases.iter().any(|c| c.verdict.is_undecided());
    let gate = if !failed.is_empty() {
        Gate::NonConformant
    } else if !undecided.is_empty() || any_case_undecided || cases.is_empty() || interrupted {
        Gate::Undecided
    } else {
        Gate::Conformant
    };
    Summary {
        cases: counts,
        cases_run: cases.len(),
        cases_in_suite,
        gate,
        mandatory_failed: failed,
        mandatory_undecided: undecided,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hilt_model::scenario::{CaseKind, Provisions as P};

    #[test]
    fn a_run_that_tested_nothing_or_was_interrupted_is_never_conformant() {
        let p = Provisions::default();
        assert_eq!(summarise(&[], &p, 8, false).gate, Gate::Undecided);
        let pass = case("a", "5.1-1", Verdict::Pass);
        let cases = [pass];
        let (p, _) = rolled(&cases);
        assert_eq!(summarise(&cases, &p, 8, false).gate, Gate::Conformant);
        assert_eq!(summarise(&cases, &p, 8, true).gate, Gate::Undecided);
        let s = summarise(&cases, &p, 8, false);
        assert_eq!((s.cases_run, s.cases_in_suite), (1, 8));
    }

    fn case(id: &str, en: &str, v: Verdict) -> CaseResult {
        CaseResult {
            id: id.into(),
            title: String::new(),
            family: String::new(),
            kind: CaseKind::Functional,
            verdict: v,
            reason: String::new(),
            notes: Vec::new(),
            started: String::new(),
            duration_ms: 0,
            budget_ms: None,
            provisions: P {
                en303645: vec![en.into()],
                en303645_v2: vec![en.into()],
                psti: vec!["PSTI-PW-1".into()],
                ico: vec![],
                ts103701: vec![],
            },
            steps: vec![],
            checks: vec![],
            evidence: vec![],
        }
    }

    fn rolled(cases: &[CaseResult]) -> (Provisions, Summary) {
        let p = rollup(cases, &Ics::default(), Catalogue::embedded());
        let s = summarise(cases, &p, cases.len(), false);
        (p, s)
    }

    #[test]
    fn a_failing_case_fails_its_mandatory_provision_and_the_gate() {
        let (p, s) = rolled(&[
            case("a", "5.1-1", Verdict::Pass),
            case("b", "5.1-1", Verdict::Fail),
        ]);
        let e = p.en303645.iter().find(|e| e.id == "5.1-1").unwrap();
        assert_eq!(e.verdict, Verdict::Fail);
        assert_eq!(s.gate, Gate::NonConformant);
        assert_eq!(s.gate.exit_code(), 1);
        let psti = p.psti.iter().find(|r| r.id == "PSTI-PW-1").unwrap();
        assert_eq!(psti.verdict, Verdict::Fail);
        assert_eq!(psti.deemed_verdict, Some(Verdict::Fail));
    }

    #[test]
    fn errors_are_undecided_never_pass_and_uncovered_provisions_do_not_gate() {
        let (p, s) = rolled(&[
            case("a", "5.1-1", Verdict::Pass),
            case("b", "5.1-1", Verdict::Error),
        ]);
        assert_eq!(
            p.en303645.iter().find(|e| e.id == "5.1-1").unwrap().verdict,
            Verdict::Error
        );
        assert_eq!(s.gate, Gate::Undecided);
        assert_eq!(s.gate.exit_code(), 3);
        let (p, s) = rolled(&[case("a", "5.1-1", Verdict::Pass)]);
        let other = p.en303645.iter().find(|e| e.id == "5.1-5").unwrap();
        assert_eq!((other.verdict, other.in_scope), (Verdict::NotTested, false));
        assert_eq!(s.gate, Gate::Conformant);
    }
}
