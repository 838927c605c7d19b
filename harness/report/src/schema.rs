//! The report's JSON Schema (draft 2020-12), generated from the model so that the two cannot drift.
//! The committed copy, `reports/schema/report.schema.json`, is checked against it by `tests/schema.rs`.

use schemars::generate::SchemaSettings;

use crate::model::{Report, SCHEMA};

pub const TITLE: &str = "hilt conformance report";

const DESCRIPTION: &str = "One hilt run against one device: suite and run metadata, the board and its \
    ICS/IXIT, a verdict per test case with its steps, checks and evidence digests, and the roll-up per \
    EN 303 645, PSTI and ICO provision with the CI gate. Signed as the predicate of an in-toto \
    Statement inside a DSSE envelope (report.dsse.json).";

/// The schema of `report.json`, with `$id` equal to the `$schema` every report carries.
pub fn report_schema() -> serde_json::Value {
    // The serialize contract describes what hilt writes: optional fields are present (as null), so a
    // consumer can rely on every key being there.
    let generator = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let mut schema = generator.into_root_schema_for::<Report>();
    schema.insert("$id".to_owned(), SCHEMA.into());
    schema.insert("title".to_owned(), TITLE.into());
    schema.insert("description".to_owned(), DESCRIPTION.into());
    schema.to_value()
}
