//! The report as JUnit XML, for CI systems that show test results: one test case per scenario,
//! FAIL as a failure, ERROR and INCONCLUSIVE as errors, NOT_APPLICABLE and NOT_TESTED as skipped
//! (with the reason). A rendering of the signed report, not evidence in itself. Every string is made
//! [`printable`] first: quick-junit would silently drop terminal escapes and other characters XML
//! cannot hold, and keep C1 controls and bidirectional overrides; shown escaped, nothing is lost.

use hilt_model::Verdict;
use quick_junit::{NonSuccessKind, Property, Report as Junit, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

use crate::model::Report;
use crate::printable::printable;

/// `s` made [`printable`], owned, for quick-junit's string types.
fn p(s: &str) -> String {
    printable(s).into_owned()
}

pub fn render(r: &Report) -> Result<String, quick_junit::SerializeError> {
    render_campaign(&[("", r)])
}

/// Several boards' reports as one JUnit file: a test suite per board, named with its label.
pub fn render_campaign(reports: &[(&str, &Report)]) -> Result<String, quick_junit::SerializeError> {
    let mut junit = Junit::new("hilt");
    for (label, r) in reports {
        junit.add_test_suite(suite(label, r));
    }
    junit.to_string()
}

fn suite(label: &str, r: &Report) -> TestSuite {
    let on = if label.is_empty() {
        r.board.name.clone()
    } else {
        format!("{label} ({})", r.board.name)
    };
    let mut suite = TestSuite::new(p(&format!("hilt {} on {on}", r.board.identity.model)));
    suite.set_time(Duration::from_millis(r.run.duration_ms));
    let id = &r.board.identity;
    let props = [
        ("run.id", r.run.id.clone()),
        ("suite.version", r.suite.version.clone()),
        (
            "suite.git_commit",
            r.suite.git_commit.clone().unwrap_or_default(),
        ),
        ("dut.manufacturer", id.manufacturer.clone()),
        ("dut.model", id.model.clone()),
        ("dut.firmware_version", id.firmware_version.clone()),
        ("dut.units", r.board.units.join(",")),
        ("board.profile.sha256", r.board.profile.sha256.clone()),
        ("gate", format!("{:?}", r.summary.gate)),
    ];
    suite.add_properties(props.into_iter().map(|(k, v)| Property::new(k, p(&v))));
    for c in &r.cases {
        let mut status = match c.verdict {
            Verdict::Pass => TestCaseStatus::success(),
            Verdict::Fail => TestCaseStatus::non_success(NonSuccessKind::Failure),
            Verdict::Error | Verdict::Inconclusive => {
                TestCaseStatus::non_success(NonSuccessKind::Error)
            }
            Verdict::NotApplicable | Verdict::NotTested => TestCaseStatus::skipped(),
        };
        if c.verdict != Verdict::Pass {
            status.set_message(p(&format!("{}: {}", c.verdict, c.reason)));
            status.set_type(c.verdict.as_str());
        }
        let mut case = TestCase::new(p(&c.id), status);
        case.set_classname(p(&c.family));
        case.set_time(Duration::from_millis(c.duration_ms));
        case.add_property(Property::new(
            "en303645",
            p(&c.provisions.en303645.join(",")),
        ));
        if !c.provisions.psti.is_empty() {
            case.add_property(Property::new("psti", p(&c.provisions.psti.join(","))));
        }
        if !c.provisions.ico.is_empty() {
            case.add_property(Property::new("ico", p(&c.provisions.ico.join(","))));
        }
        suite.add_test_case(case);
    }
    suite
}
