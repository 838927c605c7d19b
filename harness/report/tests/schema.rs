//! The committed JSON Schema matches the model, and the committed example report conforms to it.
//! `HILT_BLESS=1 cargo test -p hilt-report --test schema` rewrites the committed schema.

use std::fs;
use std::path::PathBuf;

use hilt_report::model::{Report, SCHEMA};
use hilt_report::schema::report_schema;
use jsonschema::Validator;
use serde_json::{Value, json};

const SCHEMA_FILE: &str = "reports/schema/report.schema.json";
const EXAMPLE: &str = "reports/example/report.json";
const BLESS: &str = "HILT_BLESS=1 cargo test -p hilt-report --test schema";

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("a Value always serialises") + "\n"
}

fn validator() -> Validator {
    jsonschema::validator_for(&report_schema()).expect("the generated schema is a valid schema")
}

fn example() -> Value {
    let path = repo(EXAMPLE);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The error messages for `instance`, each with the JSON pointer of the offending value.
fn errors(instance: &Value) -> Vec<String> {
    validator()
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn committed_schema_is_current() {
    let path = repo(SCHEMA_FILE);
    let fresh = report_schema();
    if std::env::var("HILT_BLESS").is_ok_and(|v| v == "1") {
        fs::create_dir_all(path.parent().expect("a file path has a parent")).unwrap();
        fs::write(&path, pretty(&fresh)).unwrap();
        eprintln!("blessed: wrote {}", path.display());
        return;
    }
    let committed = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{SCHEMA_FILE}: {e}\nregenerate it with: {BLESS}"));
    // Compared as values: key order may differ if serde_json's preserve_order is unified in.
    let parsed: Value = serde_json::from_str(&committed)
        .unwrap_or_else(|e| panic!("{SCHEMA_FILE}: {e}\nregenerate it with: {BLESS}"));
    assert!(
        parsed == fresh && committed.ends_with('\n'),
        "{SCHEMA_FILE} is stale (the report model changed); regenerate it with: {BLESS}"
    );
}

#[test]
fn schema_is_draft_2020_12_with_the_reports_id() {
    let s = report_schema();
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(s["$id"], SCHEMA);
    assert!(s["title"].is_string() && s["description"].is_string());
    assert_eq!(s["additionalProperties"], false);
    // Verdict keys of summary.cases are spelt out; any other key is refused.
    let cases = &s["$defs"]["Summary"]["properties"]["cases"];
    assert_eq!(cases["additionalProperties"], false, "{cases}");
    assert!(cases["properties"]["NOT_APPLICABLE"].is_object(), "{cases}");
}

#[test]
fn example_report_conforms_and_deserialises() {
    let report = example();
    assert_eq!(errors(&report), Vec::<String>::new());
    let typed: Report = serde_json::from_value(report).expect("example parses as a Report");
    assert!(!typed.cases.is_empty(), "the example should have cases");
}

#[test]
fn broken_reports_are_rejected() {
    let good = example();
    let broken = |what: &str, edit: &dyn Fn(&mut Value)| {
        let mut bad = good.clone();
        edit(&mut bad);
        let errs = errors(&bad);
        assert!(!errs.is_empty(), "{what}: accepted");
        errs
    };
    let errs = broken("verdict MAYBE", &|r| {
        r["cases"][0]["verdict"] = json!("MAYBE")
    });
    assert!(
        errs.iter().any(|e| e.starts_with("/cases/0/verdict")),
        "{errs:?}"
    );
    let errs = broken("summary key MAYBE", &|r| {
        r["summary"]["cases"]["MAYBE"] = json!(1)
    });
    assert!(errs.iter().any(|e| e.contains("MAYBE")), "{errs:?}");
    broken("unknown top-level key", &|r| r["extra"] = json!(true));
    broken("missing run id", &|r| {
        r["run"].as_object_mut().unwrap().remove("id");
    });
    broken("null git_commit dropped", &|r| {
        r["suite"].as_object_mut().unwrap().remove("git_commit");
    });
    broken("other schema id", &|r| {
        r["$schema"] = json!("https://hilt.dev/schemas/report/v2")
    });
    broken("gate MAYBE", &|r| r["summary"]["gate"] = json!("MAYBE"));
    broken("negative duration", &|r| {
        r["run"]["duration_ms"] = json!(-1)
    });
}
