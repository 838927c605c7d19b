//! Canary scan of memory snapshots.
//!
//! A lab plants secret values ("canaries": a Wi-Fi passphrase, an account token, an owner's name,
//! a PIN) through the device's UI, dumps its flash, and must show that none of them is stored in
//! the clear. [`Scanner`] searches a dump for every canary in every common encoding
//! ([`Encoding`]) in one pass; [`entropy::map`] says which regions look encrypted or compressed,
//! i.e. where a clean scan proves little; [`mask`] hides planted values in anything the harness
//! puts in evidence.
//!
//! Nothing here ever prints a canary's value: [`Canary`]'s `Debug`, [`Hit`] and the errors carry
//! labels only.

mod canary;
mod encoding;
pub mod entropy;
mod mask;
mod scan;

pub use canary::{Canary, MIN_VALUE_LEN, Secret};
pub use encoding::Encoding;
pub use mask::mask;
pub use scan::{Hit, Scanner};

/// Why a canary or a scanner could not be built. Never carries a value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("canary {label:?} has an empty value")]
    EmptyValue { label: String },
    #[error("canary {label:?} is {len} bytes long; at least {min} are needed to avoid chance hits")]
    TooShort {
        label: String,
        len: usize,
        min: usize,
    },
    // The label goes into evidence; saying which label would print the value.
    #[error("a canary's label contains its own value")]
    LabelContainsValue,
    #[error("no canaries to scan for")]
    NoCanaries,
    #[error("building the multi-pattern searcher: {0}")]
    Build(#[from] aho_corasick::BuildError),
}
