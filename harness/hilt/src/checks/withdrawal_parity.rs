//! `withdrawal-parity`: withdrawing consent (step `withdraw`) took no more user actions than giving it
//! (step `give`), counted as the sends the board's binding made in each (ICO-CONSENT-02,
//! ICO-WITHDRAW-02: withdrawal as easy as giving). A binding that must answer an extra confirmation, or
//! walk further menus, to withdraw sends more.

use hilt_model::Verdict;
use serde::Deserialize;

use super::{Check, Evidence, Judgement, Kind, Params};

pub const KIND: Kind = Kind {
    name: "withdrawal-parity",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WithdrawalParity {
    give: String,
    withdraw: String,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c: WithdrawalParity = p.get()?;
    p.action_step(&c.give)?;
    p.action_step(&c.withdraw)?;
    p.steps_in_order(&c.give, &c.withdraw)?;
    Ok(Box::new(c))
}

impl Check for WithdrawalParity {
    fn evaluate(&self, ev: &Evidence) -> Judgement {
        let sends = |id: &str| -> Result<Option<u32>, Judgement> {
            Ok(ev.step(id)?.attempts.last().and_then(|a| a.sends))
        };
        match (sends(&self.give), sends(&self.withdraw)) {
            (Ok(g), Ok(w)) => judge(g, w),
            (Err(j), _) | (_, Err(j)) => j,
        }
    }
}

fn judge(give: Option<u32>, withdraw: Option<u32>) -> Judgement {
    let (Some(g), Some(w)) = (give, withdraw) else {
        return (
            Verdict::Inconclusive,
            "missing evidence: giving or withdrawing consent made no attempt to count".into(),
        );
    };
    if w > g {
        return (
            Verdict::Fail,
            format!(
                "withdrawing consent took {w} user action(s), giving it {g}: withdrawal is harder"
            ),
        );
    }
    (
        Verdict::Pass,
        format!("withdrawing consent took {w} user action(s), giving it {g}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withdrawing_may_not_take_more_actions_than_giving() {
        assert_eq!(judge(Some(1), Some(1)).0, Verdict::Pass);
        assert_eq!(judge(Some(3), Some(1)).0, Verdict::Pass);
        let (v, why) = judge(Some(1), Some(2));
        assert!(
            v == Verdict::Fail && why.contains("2 user action(s)"),
            "{why}"
        );
        assert_eq!(judge(None, Some(1)).0, Verdict::Inconclusive);
    }
}
