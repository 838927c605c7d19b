//! A campaign file: the boards one `hilt run` tests side by side, each with the label its report and
//! display lines carry, and (for a virtual board) the defects it is launched with.
//!
//! ```toml
//! schema = 1
//! [[board]]
//! label = "reference"
//! profile = "../boards/vboard.toml"      # relative to this file
//! [[board]]
//! label = "no-lockout"
//! profile = "../boards/vboard.toml"
//! defects = ["no-login-rate-limit"]
//! ```

use serde::Deserialize;
use serde_spanned::Spanned;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::LoadError;
use crate::fsread::read_text;

pub const SCHEMA: u32 = 1;

/// One board of a campaign, its profile path resolved against the campaign file's directory.
#[derive(Debug, Clone)]
pub struct CampaignBoard {
    pub label: String,
    pub profile: PathBuf,
    /// Each with its place in the campaign file, so an unknown defect is a located error.
    pub defects: Vec<Spanned<String>>,
}

#[derive(Debug, Clone)]
pub struct Campaign {
    pub path: PathBuf,
    pub text: String,
    pub boards: Vec<CampaignBoard>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    schema: Spanned<u32>,
    #[serde(rename = "board")]
    boards: Spanned<Vec<RawBoard>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoard {
    label: Spanned<String>,
    profile: String,
    #[serde(default)]
    defects: Vec<Spanned<String>>,
}

impl Campaign {
    pub fn load(path: &Path) -> Result<Campaign, LoadError> {
        let text = read_text(path)?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Campaign, LoadError> {
        let raw: Raw = toml::from_str(text).map_err(|e| LoadError::from_toml(path, text, e))?;
        let err = |span: std::ops::Range<usize>, m: String| LoadError::invalid(path, text, span, m);
        if *raw.schema.get_ref() != SCHEMA {
            return Err(err(
                raw.schema.span(),
                format!(
                    "schema {} is not supported (this hilt reads schema {SCHEMA})",
                    raw.schema.get_ref()
                ),
            ));
        }
        if raw.boards.get_ref().is_empty() {
            return Err(err(
                raw.boards.span(),
                "a campaign needs at least one [[board]]".into(),
            ));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut seen = BTreeSet::new();
        let mut boards = Vec::new();
        for b in raw.boards.into_inner() {
            let label = b.label.get_ref();
            if let Err(why) = check_label(label) {
                return Err(err(b.label.span(), why));
            }
            if !seen.insert(label.clone()) {
                return Err(err(
                    b.label.span(),
                    format!(
                        "label {label:?} is used twice: each board's report is written under its label"
                    ),
                ));
            }
            boards.push(CampaignBoard {
                label: label.clone(),
                profile: base.join(&b.profile),
                defects: b.defects,
            });
        }
        Ok(Campaign {
            path: path.to_path_buf(),
            text: text.to_string(),
            boards,
        })
    }

    /// A located error about `span` of this file, e.g. a defect the board's profile does not name.
    pub fn error(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> LoadError {
        LoadError::invalid(&self.path, &self.text, span, message)
    }
}

/// A label names a directory of the campaign's output: letters, digits, `.`, `_`, `-`, not starting
/// with `.`, at most 64 characters.
pub fn check_label(label: &str) -> Result<(), String> {
    let ok_chars = label
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if label.is_empty() || label.len() > 64 || label.starts_with('.') || !ok_chars {
        return Err(format!(
            "label {label:?}: use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.' (it names the board's report directory)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Campaign, String> {
        Campaign::parse(Path::new("lab/c.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn boards_resolve_against_the_campaign_file() {
        let c = parse(
            "schema = 1\n[[board]]\nlabel = \"ref\"\nprofile = \"../boards/vboard.toml\"\n\
             [[board]]\nlabel = \"bad\"\nprofile = \"../boards/vboard.toml\"\ndefects = [\"x\"]\n",
        )
        .unwrap();
        assert_eq!(c.boards.len(), 2);
        assert_eq!(c.boards[0].profile, Path::new("lab/../boards/vboard.toml"));
        assert_eq!(c.boards[1].defects[0].get_ref(), "x");
        let e = c.error(c.boards[1].defects[0].span(), "no defect named \"x\"");
        assert!(e.to_string().starts_with("lab/c.toml:8:"), "{e}");
    }

    #[test]
    fn mistakes_are_located() {
        let dup = parse("schema = 1\n[[board]]\nlabel = \"a\"\nprofile = \"p\"\n[[board]]\nlabel = \"a\"\nprofile = \"q\"\n")
            .unwrap_err();
        assert!(
            dup.starts_with("lab/c.toml:6:") && dup.contains("used twice"),
            "{dup}"
        );
        let bad = parse("schema = 1\n[[board]]\nlabel = \"../x\"\nprofile = \"p\"\n").unwrap_err();
        assert!(
            bad.starts_with("lab/c.toml:3:") && bad.contains("letters, digits"),
            "{bad}"
        );
        let none = parse("schema = 1\nboard = []\n").unwrap_err();
        assert!(none.contains("at least one"), "{none}");
        let typo = parse("schema = 1\n[[board]]\nlabel = \"a\"\nprofil = \"p\"\n").unwrap_err();
        assert!(
            typo.starts_with("lab/c.toml:4:") && typo.contains("profil"),
            "{typo}"
        );
        let schema = parse("schema = 2\n[[board]]\nlabel = \"a\"\nprofile = \"p\"\n").unwrap_err();
        assert!(schema.starts_with("lab/c.toml:1:"), "{schema}");
    }

    #[test]
    fn the_shipped_campaign_loads() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../campaigns/vboard-defects.toml");
        let c = Campaign::load(&path).unwrap();
        assert_eq!(c.boards.len(), 3);
        assert!(
            c.boards.iter().all(|b| b.profile.exists()),
            "{:?}",
            c.boards
        );
    }
}
