//! The report as one static, self-contained HTML page for a certifier: no script, no external
//! resource, printable. A rendering of the signed report, not evidence in itself. Templates live in
//! `templates/`; askama escapes every interpolated value, since device output can carry markup, and
//! every string of the report is made [`printable`] first, since it can carry terminal escapes and
//! bidirectional overrides too.

use askama::Template;
use hilt_model::Verdict;
use hilt_model::catalogue::Catalogue;
use hilt_model::scenario::CaseKind;
use serde_json::Value;

use crate::model::{Attempt, CaseResult, EnRollup, Evidence, Gate, IcoRollup, Report};
use crate::printable::{printable, printable_json};

/// Attempts of a step shown before eliding the conforming rest.
const FIRST_ATTEMPTS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    #[error("rendering the HTML report")]
    Template(#[from] askama::Error),
    #[error("JSON conversion of {what}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// Render `report` as an HTML5 document. Every string in it is shown [`printable`].
pub fn render(report: &Report) -> Result<String, HtmlError> {
    // The raw JSON views come from the original: serde_json escapes C0 controls as `\u001b`, and
    // `printable` the rest.
    let json = |what, v: &Value| {
        serde_json::to_string_pretty(v)
            .map(|text| printable(&text).into_owned())
            .map_err(|source| HtmlError::Json { what, source })
    };
    let ics_json = json("the report's ICS", &report.ics)?;
    let ixit_json = json("the report's IXIT", &report.ixit)?;
    let report = &printable_report(report)?;
    let (en_in, en_out) = split(&report.provisions.en303645, |p: &EnRollup| p.in_scope);
    let (ico_in, ico_out) = split(&report.provisions.ico, |p: &IcoRollup| p.in_scope);
    let page = Page {
        r: report,
        gate: GateView::new(report),
        legend: LEGEND,
        counts: Verdict::ALL
            .iter()
            .filter_map(|v| report.summary.cases.get(v).map(|n| (v.as_str(), *n)))
            .collect(),
        en_in,
        en_out,
        ico_in,
        ico_out,
        cases: report.cases.iter().map(CaseView::new).collect(),
        ics: IcsView::new(&report.ics),
        ics_json,
        ixit_json,
    };
    let html = page.render()?;
    tracing::debug!(
        cases = report.cases.len(),
        bytes = html.len(),
        "rendered HTML report"
    );
    Ok(html)
}

/// A copy of `report` with [`printable_json`] applied to every string, so no template field can miss it.
fn printable_report(report: &Report) -> Result<Report, HtmlError> {
    let error = |source| HtmlError::Json {
        what: "the report, to make its strings printable",
        source,
    };
    let mut value = serde_json::to_value(report).map_err(error)?;
    printable_json(&mut value);
    serde_json::from_value(value).map_err(error)
}

fn split<T>(items: &[T], in_scope: impl Fn(&T) -> bool) -> (Vec<&T>, Vec<&T>) {
    items.iter().partition(|p| in_scope(p))
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    r: &'a Report,
    gate: GateView,
    legend: &'static [(&'static str, &'static str)],
    counts: Vec<(&'static str, usize)>,
    en_in: Vec<&'a EnRollup>,
    en_out: Vec<&'a EnRollup>,
    ico_in: Vec<&'a IcoRollup>,
    ico_out: Vec<&'a IcoRollup>,
    cases: Vec<CaseView<'a>>,
    ics: IcsView,
    ics_json: String,
    ixit_json: String,
}

/// One line per verdict, as in `reports/README.md`.
const LEGEND: &[(&str, &str)] = &[
    ("PASS", "the device met the case's pass criteria"),
    (
        "FAIL",
        "the device did not; the reason names the first failing attempt or check",
    ),
    (
        "INCONCLUSIVE",
        "the evidence could not be obtained (e.g. still locked out after the declared time)",
    ),
    (
        "NOT_APPLICABLE",
        "only from the ICS: a feature the case needs is absent, or the provision is declared N/A",
    ),
    (
        "NOT_TESTED",
        "the harness could not decide or carry out the case (ICS entry, binding or IXIT value missing)",
    ),
    (
        "ERROR",
        "harness or bench trouble (board would not start, device never answered); not the device's FAIL",
    ),
];

struct GateView {
    label: &'static str,
    exit_code: u8,
    meaning: String,
}

impl GateView {
    fn new(r: &Report) -> Self {
        let s = &r.summary;
        let (label, meaning) = match s.gate {
            Gate::Conformant => (
                "CONFORMANT",
                "no mandatory in-scope EN 303 645 provision failed or is undecided, and every case \
                 was decided"
                    .to_owned(),
            ),
            Gate::NonConformant => (
                "NON_CONFORMANT",
                format!(
                    "mandatory in-scope EN 303 645 provision(s) failed: {}",
                    list(&s.mandatory_failed)
                ),
            ),
            Gate::Undecided => (
                "UNDECIDED",
                format!(
                    "none failed, but mandatory provision(s) are undecided ({}) or some case is \
                     INCONCLUSIVE, NOT_TESTED or ERROR",
                    list(&s.mandatory_undecided)
                ),
            ),
        };
        GateView {
            label,
            exit_code: s.gate.exit_code(),
            meaning,
        }
    }
}

fn list(ids: &[String]) -> String {
    if ids.is_empty() {
        "none".to_owned()
    } else {
        ids.join(", ")
    }
}

struct CaseView<'a> {
    c: &'a CaseResult,
    kind: &'static str,
    steps: Vec<StepView<'a>>,
    evidence: Vec<EvidenceView<'a>>,
}

impl<'a> CaseView<'a> {
    fn new(c: &'a CaseResult) -> Self {
        CaseView {
            c,
            kind: match c.kind {
                CaseKind::Conceptual => "conceptual",
                CaseKind::Functional => "functional",
            },
            steps: c
                .steps
                .iter()
                .map(|s| StepView::new(&s.id, &s.attempts))
                .collect(),
            evidence: c
                .evidence
                .iter()
                .map(|e| EvidenceView {
                    e,
                    link: is_relative(&e.path),
                })
                .collect(),
        }
    }
}

/// Only plain relative paths become links: nothing absolute, no scheme, no way out of the report
/// directory (the href is also percent-encoded, so a `:` cannot start a scheme).
fn is_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains(['\\', ':'])
        && path.split('/').all(|seg| !seg.is_empty() && seg != "..")
}

struct EvidenceView<'a> {
    e: &'a Evidence,
    link: bool,
}

struct StepView<'a> {
    id: &'a str,
    total: usize,
    omitted: usize,
    has_captures: bool,
    rows: Vec<Row<'a>>,
}

enum Row<'a> {
    Attempt(&'a Attempt),
    /// `count` consecutive conforming attempts left out, iterations `from..=to`.
    Gap {
        count: usize,
        from: usize,
        to: usize,
    },
}

impl<'a> StepView<'a> {
    /// Keeps the first attempts, every non-conforming one, every one whose outcome differs from the
    /// previous (e.g. the first `locked`) and the last; runs of the rest become gap rows.
    fn new(id: &'a str, attempts: &'a [Attempt]) -> Self {
        let keep = |i: usize, a: &Attempt| {
            i < FIRST_ATTEMPTS
                || i + 1 == attempts.len()
                || a.conforms == Some(false)
                || i.checked_sub(1)
                    .and_then(|j| attempts.get(j))
                    .is_some_and(|prev| prev.outcome != a.outcome)
        };
        let mut rows = Vec::new();
        let mut gap: Option<(usize, usize, usize)> = None;
        for (i, a) in attempts.iter().enumerate() {
            if keep(i, a) {
                if let Some((count, from, to)) = gap.take() {
                    rows.push(Row::Gap { count, from, to });
                }
                rows.push(Row::Attempt(a));
            } else {
                let g = gap.get_or_insert((0, a.iteration, a.iteration));
                g.0 += 1;
                g.2 = a.iteration;
            }
        }
        StepView {
            id,
            total: attempts.len(),
            omitted: attempts.len() - rows.iter().filter(|r| matches!(r, Row::Attempt(_))).count(),
            has_captures: attempts.iter().any(|a| !a.captures.is_empty()),
            rows,
        }
    }
}

/// The ICS as tables; the raw JSON is shown as well, so nothing of an unusual shape is lost.
struct IcsView {
    features: Vec<Flag>,
    conditions: Vec<Flag>,
    provisions: Vec<[String; 4]>,
}

struct Flag {
    id: String,
    value: String,
    text: String,
}

impl IcsView {
    fn new(ics: &Value) -> Self {
        let cat = Catalogue::embedded();
        let flags = |key: &str, text: &dyn Fn(&str) -> Option<String>| -> Vec<Flag> {
            entries(ics, key)
                .map(|(id, v)| Flag {
                    id: id.clone(),
                    value: match v {
                        Value::Bool(true) => "yes".to_owned(),
                        Value::Bool(false) => "no".to_owned(),
                        other => other.to_string(),
                    },
                    text: text(id).unwrap_or_default(),
                })
                .collect()
        };
        let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        IcsView {
            features: flags("features", &|id| cat.feature(id).map(|f| f.text.clone())),
            conditions: flags("conditions", &|id| {
                let n = id.parse().ok()?;
                cat.condition(n).map(|c| c.text.clone())
            }),
            provisions: entries(ics, "provisions")
                .map(|(id, v)| {
                    [
                        id.clone(),
                        field(v, "status"),
                        field(v, "support"),
                        field(v, "detail"),
                    ]
                })
                .collect(),
        }
    }
}

fn entries<'v>(ics: &'v Value, key: &str) -> impl Iterator<Item = (&'v String, &'v Value)> {
    ics.get(key)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
}
