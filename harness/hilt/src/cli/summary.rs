//! The end-of-run summary: cases, then every in-scope provision, then the gate.

use hilt_report::model::{Gate, Report};

pub fn print(r: &Report) {
    // The cases were shown one per line as they finished; here: how many, and what chose them.
    println!();
    let selection = if r.run.selection.is_empty() {
        "all".to_string()
    } else {
        r.run.selection.join(" ")
    };
    println!(
        "cases: {} of {} in the suite ran (selection: {selection}){}",
        r.summary.cases_run,
        r.summary.cases_in_suite,
        if r.run.interrupted {
            "; INTERRUPTED"
        } else {
            ""
        }
    );
    println!();
    println!(
        "{:<10} {:<14} {:<15} cases",
        "EN 303 645", "status", "verdict"
    );
    for p in r.provisions.en303645.iter().filter(|p| p.in_scope) {
        println!(
            "{:<10} {:<14} {:<15} {}",
            p.id,
            p.status,
            p.verdict.as_str(),
            p.cases.join(", ")
        );
    }
    let psti: Vec<String> = r
        .provisions
        .psti
        .iter()
        .filter(|p| p.in_scope)
        .map(|p| format!("{} {}", p.id, p.verdict))
        .collect();
    if !psti.is_empty() {
        println!("PSTI: {}", psti.join(", "));
    }
    let ico: Vec<String> = r
        .provisions
        .ico
        .iter()
        .filter(|p| p.in_scope)
        .map(|p| format!("{} {}", p.id, p.verdict))
        .collect();
    if !ico.is_empty() {
        println!("ICO:  {}", ico.join(", "));
    }
    println!();
    let gate = match r.summary.gate {
        Gate::Conformant => "CONFORMANT: every in-scope mandatory provision passed".to_string(),
        Gate::NonConformant => format!(
            "NON-CONFORMANT: mandatory provision(s) failed: {}",
            r.summary.mandatory_failed.join(", ")
        ),
        Gate::Undecided => format!(
            "UNDECIDED: not every case could be decided{}",
            if r.summary.mandatory_undecided.is_empty() {
                String::new()
            } else {
                format!(" (mandatory: {})", r.summary.mandatory_undecided.join(", "))
            }
        ),
    };
    println!("{gate}");
    let recommendations: Vec<&str> = r
        .provisions
        .en303645
        .iter()
        .filter(|p| p.in_scope && !p.mandatory && p.verdict == hilt_model::Verdict::Fail)
        .map(|p| p.id.as_str())
        .collect();
    if !recommendations.is_empty() {
        println!(
            "recommendations not met (they do not gate): {}",
            recommendations.join(", ")
        );
    }
}
