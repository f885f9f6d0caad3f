//! Do-not-call lists (issue 21): which lists exist, how numbers are written into them, and the streamed CSV
//! reading of an import.
//!
//! There is one global list and one list per campaign; each holds exact numbers and prefixes, both in
//! international digits ([`normalize`]). The lists live in the store (`store::dnc`, shared by every node); the
//! API (`api::routes::dnc`) adds, removes, checks, counts, imports and exports them. Claim-time enforcement uses
//! [`crate::store::Store::dnc_check`].

pub mod import;
pub mod load;
pub mod normalize;

pub use normalize::{E164Rule, NormalizeError, NormalizedNumber};

/// One do-not-call list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DncList {
    Global,
    Campaign(String),
}

impl DncList {
    /// Its name in answers: `global` or `campaign:<id>`.
    pub fn name(&self) -> String {
        match self {
            DncList::Global => "global".into(),
            DncList::Campaign(id) => format!("campaign:{id}"),
        }
    }
}

/// Which part of a list an entry is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DncKind {
    Number,
    Prefix,
}

impl DncKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DncKind::Number => "number",
            DncKind::Prefix => "prefix",
        }
    }
}

/// Why a number is on a list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DncHit {
    /// `global` or `campaign:<id>`.
    pub list: String,
    /// The entry that holds it: the number itself or the longest matching prefix (international digits).
    pub entry: String,
    /// `number` or `prefix`.
    pub kind: &'static str,
}

/// The prefixes of a number's digits that a prefix entry may be, shortest first (every one from 1 digit to the
/// whole number).
pub fn prefixes_of(number: &NormalizedNumber) -> impl DoubleEndedIterator<Item = &str> {
    let d = number.digits();
    (1..=d.len()).map(move |n| &d[..n])
}
