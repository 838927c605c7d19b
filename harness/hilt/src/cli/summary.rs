//! The end-of-run summary: cases, then every in-scope provision, then the gate.

use hilt_report::model::{Gate, Report};

pub fn print(r: &Report) {
    println!();
    println!("{:<36} {:<15} reason", "case", "verdict");
    for c in &r.cases {
        println!(
            "{:<36} {:<15} {}",
            c.id,
            c.verdict.as_str(),
            one_line(&c.reason, 90)
        );
    }
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

fn one_line(s: &str, max: usize) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() <= max {
        s
    } else {
        s.chars().take(max - 1).collect::<String>() + "…"
    }
}
