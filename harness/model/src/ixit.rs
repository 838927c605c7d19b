//! The IXIT (TS 103 701 Implementation eXtra Information for Testing): the manufacturer's declarations,
//! keyed by sheet (`1-AuthMech`), entry (a mechanism or interface the manufacturer names) and the
//! TS 103 701 field name (`Brute Force Prevention`). A field is text, or a table that adds
//! machine-readable values beside a `description`.

use serde::Deserialize;
use std::collections::BTreeMap;

use crate::error::{LoadError, Source};

/// The 29 IXIT sheets of TS 103 701 V1.1.1.
pub const SHEETS: &[&str] = &[
    "1-AuthMech",
    "2-UserInfo",
    "3-VulnTypes",
    "4-Conf",
    "5-VulnMon",
    "6-SoftComp",
    "7-UpdMech",
    "8-UpdProc",
    "9-ReplSup",
    "10-SecParam",
    "11-ComMech",
    "12-NetSecImpl",
    "13-SoftServ",
    "14-SecMgmt",
    "15-Intf",
    "16-CodeMin",
    "17-PrivlCtrl",
    "18-AccCtrl",
    "19-SecDev",
    "20-SecBoot",
    "21-PersData",
    "22-ExtSens",
    "23-ResMech",
    "24-TelData",
    "25-DelFunc",
    "26-UserDec",
    "27-UserIntf",
    "28-ExtAPI",
    "29-InpVal",
];

/// Field names used by TS 103 701 V1.1.1 test cases.
pub const FIELDS: &[&str] = &[
    "Description",
    "Authentication Factor",
    "Password Generation Mechanism",
    "Brute Force Prevention",
    "Documentation of Change Mechanisms",
    "Protection Scheme",
    "Provisioning Mechanism",
    "Security Guarantees",
    "Cryptographic Details",
    "Cryptographic Usage",
    "Update Mechanism",
    "Update Checking",
    "User Notification",
    "Configuration",
    "Status",
    "Disclosed Information",
    "Debug Interface",
    "Initiation and Interaction",
    "Target Type",
    "Obtaining Consent",
    "Withdrawing Consent",
    "Personal Data",
    "Sensitive",
    "Purpose",
    "Processing Activities",
    "Resilience Measures",
    "Detection Mechanisms",
    "Time Frame",
    "Action",
    "Review/Evaluation Method",
    "Report",
    "Options",
    "Triggered By",
    "Publication of Support Period",
    "Model Designation",
    "Documentation of Secure Setup",
    "Documentation of Setup Check",
    "Documentation of Deletion",
    "Documentation of Sensors",
    "Documentation of Telemetry Data",
    "Documentation of Replacement",
    "Isolation",
    "Hardware Replacement",
    "Justification",
];

pub type Entry = BTreeMap<String, toml::Value>;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Ixit {
    pub sheets: BTreeMap<String, BTreeMap<String, serde_spanned::Spanned<Entry>>>,
}

impl Ixit {
    /// Look up `sheet/entry/field[/key]`, e.g. `1-AuthMech/console/Brute Force Prevention/max_failures`.
    pub fn lookup(&self, path: &str) -> Option<&toml::Value> {
        let mut it = path.splitn(4, '/');
        let (sheet, entry, field) = (it.next()?, it.next()?, it.next()?);
        let value = self.sheets.get(sheet)?.get(entry)?.get_ref().get(field)?;
        match it.next() {
            None => Some(value),
            Some(key) => value.as_table()?.get(key),
        }
    }

    pub(crate) fn validate(&self, src: &Source) -> Result<(), LoadError> {
        for (sheet, entries) in &self.sheets {
            for (name, entry) in entries {
                if !SHEETS.contains(&sheet.as_str()) {
                    return Err(src.err(
                        entry.span(),
                        format!(
                            "ixit: unknown sheet {sheet:?}; TS 103 701 sheets are {}",
                            SHEETS.join(", ")
                        ),
                    ));
                }
                for (field, value) in entry.get_ref() {
                    let known =
                        FIELDS.contains(&field.as_str()) || field.starts_with("Confirmation of ");
                    if !known {
                        return Err(src.err(entry.span(), format!("ixit.\"{sheet}\".{name}: unknown field {field:?} (TS 103 701 field names, e.g. \"Brute Force Prevention\")")));
                    }
                    let ok = value.is_str()
                        || value
                            .as_table()
                            .is_some_and(|t| t.get("description").is_some_and(toml::Value::is_str));
                    if !ok {
                        return Err(src.err(entry.span(), format!("ixit.\"{sheet}\".{name}.\"{field}\": a field is text, or a table with a `description` text and machine-readable values")));
                    }
                }
            }
        }
        Ok(())
    }
}
