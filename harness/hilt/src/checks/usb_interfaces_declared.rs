//! `usb-interfaces-declared`: every interface the device shows on its USB port (as step `step` listed
//! it) is of a kind the manufacturer declares it needs (IXIT `declared`, e.g.
//! `15-Intf/usb/Description/interfaces = ["serial"]`): nothing needlessly exposed (EN 303 645 5.6-3).
//! A debug, firmware-loading or shell interface (CMSIS-DAP, J-Link, ESP USB-JTAG, DFU, ADB) is
//! allowed only when also declared as protected (IXIT `protected`, e.g.
//! `15-Intf/usb/Debug Interface/protected`), whose protection other cases test (5.6-4A).

use hilt_model::Verdict;
use serde::Deserialize;

use super::{Check, Evidence, Judgement, Kind, Params};
use crate::usb::kind_name;
use hilt_model::vocabulary::ActionKind;

pub const KIND: Kind = Kind {
    name: "usb-interfaces-declared",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsbInterfacesDeclared {
    step: String,
    /// IXIT path to the list of interface kinds the device needs.
    declared: String,
    /// IXIT path to the list of debug or loader kinds declared protected; none when absent.
    #[serde(default)]
    protected: Option<String>,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c: UsbInterfacesDeclared = p.get()?;
    p.step_of_kind(&c.step, ActionKind::ListUsb)?;
    Ok(Box::new(c))
}

impl Check for UsbInterfacesDeclared {
    fn ixit_lists(&self) -> Vec<&str> {
        std::iter::once(self.declared.as_str())
            .chain(self.protected.as_deref())
            .collect()
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        if let Err(j) = ev.step(&self.step) {
            return j;
        }
        let Some(listing) = ev.usb.get(&self.step) else {
            return (
                Verdict::Inconclusive,
                format!(
                    "missing evidence: step {:?} listed no USB device",
                    self.step
                ),
            );
        };
        let profile = ev.scope.bench.profile();
        let declared = match super::ixit_list(profile, &self.declared) {
            Ok(l) => l,
            Err(e) => return (Verdict::NotTested, e),
        };
        let protected = match self
            .protected
            .as_deref()
            .map(|p| super::ixit_list(profile, p))
        {
            Some(Err(e)) => return (Verdict::NotTested, e),
            Some(Ok(l)) => l,
            None => Vec::new(),
        };
        let mut undeclared = Vec::new();
        let mut unprotected = Vec::new();
        for (n, kind) in &listing.kinds {
            let name = kind_name(*kind);
            let shown = describe(listing, *n, &name);
            if !declared.contains(&name) {
                undeclared.push(shown);
            } else if kind.is_debug_or_loader() && !protected.contains(&name) {
                unprotected.push(shown);
            }
        }
        if !undeclared.is_empty() || !unprotected.is_empty() {
            let mut why = Vec::new();
            if !undeclared.is_empty() {
                why.push(format!(
                    "exposed but not declared in IXIT {}: {}",
                    self.declared,
                    undeclared.join("; ")
                ));
            }
            if !unprotected.is_empty() {
                why.push(format!(
                    "a debug or loader interface not declared protected: {}",
                    unprotected.join("; ")
                ));
            }
            return (Verdict::Fail, why.join("; "));
        }
        let all: Vec<String> = listing
            .kinds
            .iter()
            .map(|(n, k)| format!("{n}:{}", kind_name(*k)))
            .collect();
        (
            Verdict::Pass,
            format!(
                "{} shows {} interface(s) ({}), each of a declared kind",
                listing.device.id(),
                all.len(),
                all.join(" ")
            ),
        )
    }
}

/// `interface 2 (dfu, class fe/01/01 "VRB-1 DFU")`.
fn describe(listing: &crate::usb::UsbListing, n: u8, kind: &str) -> String {
    let i = listing.device.interfaces.iter().find(|i| i.number == n);
    match i {
        Some(i) => {
            let name = i
                .name
                .as_deref()
                .map(|s| format!(" {s:?}"))
                .unwrap_or_default();
            format!(
                "interface {n} ({kind}, class {:02x}/{:02x}/{:02x}{name})",
                i.class, i.subclass, i.protocol
            )
        }
        None => format!("interface {n} ({kind})"),
    }
}
