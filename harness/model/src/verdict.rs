//! Verdicts. PASS/FAIL judge the device; INCONCLUSIVE means evidence could not be obtained (a project
//! extension to TS 103 701); NOT_APPLICABLE comes only from the ICS; NOT_TESTED and ERROR are the
//! harness's or the bench's trouble and never count against the device.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[schemars(
    description = "PASS/FAIL judge the device; INCONCLUSIVE: evidence could not be obtained; NOT_APPLICABLE: \
                   excluded by the ICS, with a rationale; NOT_TESTED/ERROR: the harness's or bench's trouble, \
                   never the device's FAIL."
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
    NotApplicable,
    NotTested,
    Error,
}

impl Verdict {
    pub const ALL: [Verdict; 6] = [
        Verdict::Pass,
        Verdict::Fail,
        Verdict::Inconclusive,
        Verdict::NotApplicable,
        Verdict::NotTested,
        Verdict::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Inconclusive => "INCONCLUSIVE",
            Verdict::NotApplicable => "NOT_APPLICABLE",
            Verdict::NotTested => "NOT_TESTED",
            Verdict::Error => "ERROR",
        }
    }

    /// True when the verdict leaves the question open (the gate must not call it conformant).
    pub fn is_undecided(self) -> bool {
        matches!(
            self,
            Verdict::Inconclusive | Verdict::NotTested | Verdict::Error
        )
    }

    /// Combine verdicts of several cases evidencing one provision: any FAIL fails it, then anything
    /// undecided leaves it undecided (ERROR before INCONCLUSIVE before NOT_TESTED), PASS needs every
    /// applicable case to pass, and NOT_APPLICABLE only if every case is.
    pub fn combine(verdicts: impl IntoIterator<Item = Verdict>) -> Option<Verdict> {
        let mut seen = [false; 6];
        let mut any = false;
        for v in verdicts {
            seen[v as usize] = true;
            any = true;
        }
        if !any {
            return None;
        }
        let order = [
            Verdict::Fail,
            Verdict::Error,
            Verdict::Inconclusive,
            Verdict::NotTested,
            Verdict::Pass,
            Verdict::NotApplicable,
        ];
        order.into_iter().find(|v| seen[*v as usize])
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Verdict::*;
    use super::*;

    #[test]
    fn combine_is_fail_first_and_never_passes_undecided() {
        assert_eq!(Verdict::combine([Pass, Fail, Error]), Some(Fail));
        assert_eq!(Verdict::combine([Pass, NotTested]), Some(NotTested));
        assert_eq!(
            Verdict::combine([Pass, Inconclusive, NotTested]),
            Some(Inconclusive)
        );
        assert_eq!(Verdict::combine([Pass, NotApplicable]), Some(Pass));
        assert_eq!(Verdict::combine([NotApplicable]), Some(NotApplicable));
        assert_eq!(Verdict::combine([]), None);
    }

    #[test]
    fn serialises_in_screaming_case() {
        assert_eq!(
            serde_json::to_string(&NotApplicable).unwrap(),
            "\"NOT_APPLICABLE\""
        );
        for v in Verdict::ALL {
            assert_eq!(
                serde_json::to_string(&v).unwrap(),
                format!("\"{}\"", v.as_str())
            );
        }
    }
}
