//! What the privacy agent needs, resolved before the board boots: it talks to the update service's
//! origin with the update agent's TLS configuration (the run's CA, the device's client certificate).

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use super::state::Decision;
use crate::defects::{Defect, DefectSet};
use crate::update::UpdateOptions;
use crate::update::http::Limits;
use crate::update::url::HttpUrl;

/// Default interval between usage-analytics events (`--analytics-ms`).
pub const DEFAULT_ANALYTICS_MS: u64 = 60_000;
/// Shortest interval `--analytics-ms` accepts.
pub const MIN_ANALYTICS_MS: u64 = 100;

/// Bounds of every privacy exchange: short, so an erase hears back well within the console's wait.
pub const LIMITS: Limits = Limits {
    connect: Duration::from_secs(5),
    request: Duration::from_secs(5),
    // The answers carry nothing the device reads.
    max_body: 64 * 1024,
};

/// Bounds of each read of the owner's consent history: shorter, so a request the console waits for
/// is held up little behind one; the answer is a user's whole history (thousands of decisions fit).
pub const POLL_LIMITS: Limits = Limits {
    connect: Duration::from_secs(2),
    request: Duration::from_secs(2),
    max_body: 256 * 1024,
};

/// When usage analytics may be sent for the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConsentPolicy {
    /// The `sends-before-consent` defect: an owner who never decided is treated as consenting.
    pub before_consent: bool,
    /// The `ignores-consent-withdrawal` defect: a withdrawal after a grant is not honoured.
    pub after_withdrawal: bool,
}

impl ConsentPolicy {
    pub fn from_defects(defects: &DefectSet) -> Self {
        Self {
            before_consent: defects.has(Defect::SendsBeforeConsent),
            after_withdrawal: defects.has(Defect::IgnoresConsentWithdrawal),
        }
    }

    /// Whether analytics may go out under `decision`; `granted_before` says the owner granted once.
    pub fn allows(self, decision: Decision, granted_before: bool) -> bool {
        match decision {
            Decision::Granted => true,
            Decision::Never => self.before_consent,
            Decision::Withdrawn => self.after_withdrawal && granted_before,
        }
    }
}

/// Everything the privacy agent needs, validated.
#[derive(Debug, Clone)]
pub struct PrivacyOptions {
    /// The update service's URL: only its origin is used.
    pub url: HttpUrl,
    pub tls: Arc<ClientConfig>,
    pub analytics_every: Duration,
    pub consent: ConsentPolicy,
    pub limits: Limits,
    /// The bounds of the consent-history poll.
    pub poll_limits: Limits,
}

impl PrivacyOptions {
    pub fn new(update: &UpdateOptions, analytics_every: Duration, defects: &DefectSet) -> Self {
        Self {
            url: update.url.clone(),
            tls: update.tls.clone(),
            analytics_every,
            consent: ConsentPolicy::from_defects(defects),
            limits: LIMITS,
            poll_limits: POLL_LIMITS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analytics_need_a_grant_unless_a_defect_says_otherwise() {
        let conformant = ConsentPolicy::default();
        assert!(conformant.allows(Decision::Granted, true));
        assert!(!conformant.allows(Decision::Never, false));
        assert!(!conformant.allows(Decision::Withdrawn, true));

        let before =
            ConsentPolicy::from_defects(&DefectSet::parse(&["sends-before-consent"]).unwrap());
        assert!(before.allows(Decision::Never, false));
        assert!(
            !before.allows(Decision::Withdrawn, true),
            "a withdrawal still counts"
        );

        let after = ConsentPolicy::from_defects(
            &DefectSet::parse(&["ignores-consent-withdrawal"]).unwrap(),
        );
        assert!(
            !after.allows(Decision::Never, false),
            "opt-in still required"
        );
        assert!(after.allows(Decision::Withdrawn, true));
        assert!(
            !after.allows(Decision::Withdrawn, false),
            "never granted: off"
        );
    }
}
