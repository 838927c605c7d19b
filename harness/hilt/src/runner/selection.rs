//! Which cases run, chosen the way `cargo test` chooses tests (a substring filter, `--skip`,
//! `--exact`), and the deterministic slice of them one CI shard runs (`--shard K/N`).

use std::sync::Arc;

use crate::suite::Case;

/// Which cases run, as on `cargo test`'s command line.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Keep cases whose id contains this (equals it with `exact`).
    pub filter: Option<String>,
    /// Drop cases whose id contains any of these (equals, with `exact`).
    pub skip: Vec<String>,
    pub exact: bool,
    /// Keep only this shard's slice of what the rest selects.
    pub shard: Option<Shard>,
}

impl Selection {
    pub fn matches(&self, id: &str) -> bool {
        let hit = |pat: &str| {
            if self.exact {
                id == pat
            } else {
                id.contains(pat)
            }
        };
        self.filter.as_deref().is_none_or(hit) && !self.skip.iter().any(|s| hit(s))
    }

    /// The selection in command-line form, so a reader can repeat it; empty = every case.
    pub fn args(&self) -> Vec<String> {
        let mut out: Vec<String> = self.filter.iter().cloned().collect();
        for s in &self.skip {
            out.extend(["--skip".to_string(), s.clone()]);
        }
        if self.exact {
            out.push("--exact".into());
        }
        if let Some(shard) = self.shard {
            out.extend(["--shard".to_string(), shard.to_string()]);
        }
        out
    }

    /// The selected cases, in suite order.
    pub fn select(&self, scenarios: &[Arc<Case>]) -> Vec<Arc<Case>> {
        let matching = scenarios.iter().filter(|s| self.matches(&s.id));
        match self.shard {
            None => matching.cloned().collect(),
            Some(shard) => matching
                .enumerate()
                .filter(|(i, _)| shard.holds(*i))
                .map(|(_, s)| s.clone())
                .collect(),
        }
    }
}

/// Shard `index` of `count` (both from 1, as CI matrices count): every `count`-th selected case,
/// starting at the `index`-th. Round robin over the suite's order spreads the long families
/// (updates, consent) across shards, and every machine computes the same slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    fn holds(&self, position: usize) -> bool {
        position % self.count == self.index - 1
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("shard {s:?}: expected K/N with 1 <= K <= N, e.g. 2/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = k.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_works_like_cargo_test() {
        let all = Selection::default();
        assert!(all.matches("bf.console.lockout"));
        let f = Selection {
            filter: Some("console".into()),
            skip: vec!["lockout".into()],
            ..Selection::default()
        };
        assert!(f.matches("pw.console.x") && !f.matches("bf.console.lockout"));
        assert!(!f.matches("sc.cloud.tls-only"));
        let exact = Selection {
            filter: Some("pw".into()),
            exact: true,
            ..Selection::default()
        };
        assert!(!exact.matches("pw.console.x") && exact.matches("pw"));
        assert_eq!(f.args(), ["console", "--skip", "lockout"]);
    }

    #[test]
    fn shards_split_the_selection_without_overlap_or_gap() {
        let shards: Vec<Shard> = (1..=3).map(|k| format!("{k}/3").parse().unwrap()).collect();
        let positions: Vec<usize> = (0..10).collect();
        let mut seen = Vec::new();
        for s in &shards {
            let mine: Vec<usize> = positions.iter().copied().filter(|p| s.holds(*p)).collect();
            assert!(mine.len() >= 3, "{s}: {mine:?}");
            seen.extend(mine);
        }
        seen.sort();
        assert_eq!(seen, positions);
        assert_eq!(shards[1].to_string(), "2/3");
    }

    #[test]
    fn bad_shards_are_refused_saying_the_form() {
        for bad in ["0/2", "3/2", "1", "a/b", "1/0", ""] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("K/N"), "{bad}: {e}");
        }
        assert_eq!(
            " 2 / 4".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 4 }
        );
    }
}
