//! Mock-cloud fault kinds that scenario steps inject (`cloud = "NAME"`, `for_ms = …`): each kind is one
//! file saying what it does to the cloud, registered in [`FAULTS`]. The fault is cleared when its time
//! is up; checks find when it was in force in the case's [`crate::exec::FaultWindow`]s.

pub mod outage;
pub mod untrusted_cert;

use std::time::Duration;

use crate::cloud::CloudSession;

/// Every fault kind, by the name scenarios use.
pub const FAULTS: &[FaultKind] = &[untrusted_cert::KIND, outage::KIND];

/// A registered fault kind.
#[derive(Debug)]
pub struct FaultKind {
    pub name: &'static str,
    pub summary: &'static str,
    /// Put the fault in force on the cloud, for `length` (it is cleared afterwards either way).
    pub start: fn(&CloudSession, Duration),
}

impl PartialEq for FaultKind {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

pub fn lookup(name: &str) -> Result<&'static FaultKind, String> {
    FAULTS.iter().find(|f| f.name == name).ok_or_else(|| {
        let names: Vec<&str> = FAULTS.iter().map(|f| f.name).collect();
        format!("unknown cloud fault {name:?} (known: {})", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique_and_found() {
        for (i, f) in super::FAULTS.iter().enumerate() {
            assert!(super::FAULTS[i + 1..].iter().all(|o| o.name != f.name));
            assert_eq!(super::lookup(f.name).unwrap().name, f.name);
        }
        assert!(super::lookup("earthquake").unwrap_err().contains("outage"));
    }
}
