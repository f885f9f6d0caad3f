//! Where attempt ids come from: random UUID v4 in production, a seeded sequence for reproducible runs.
//!
//! The Redis scripts cannot make good random ids (Lua's random is deterministic inside Redis), so the Rust side
//! draws the ids and passes them in. A seeded source lets the property test give both backends the same ids.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::sync::Mutex;
use uuid::{Builder, Uuid};

/// A source of attempt ids (UUID v4).
#[derive(Debug, Default)]
pub enum AttemptIds {
    #[default]
    Random,
    Seeded(Box<Mutex<StdRng>>),
}

impl AttemptIds {
    /// A reproducible sequence: two sources with the same seed give the same ids.
    pub fn seeded(seed: u64) -> AttemptIds {
        AttemptIds::Seeded(Box::new(Mutex::new(StdRng::seed_from_u64(seed))))
    }

    /// `n` fresh ids.
    pub fn take(&self, n: usize) -> Vec<Uuid> {
        match self {
            AttemptIds::Random => (0..n).map(|_| Uuid::new_v4()).collect(),
            AttemptIds::Seeded(rng) => {
                let mut rng = rng.lock().unwrap_or_else(|p| p.into_inner());
                (0..n)
                    .map(|_| Builder::from_random_bytes(rng.random()).into_uuid())
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_sources_repeat_and_make_v4_ids() {
        let a = AttemptIds::seeded(7).take(3);
        let b = AttemptIds::seeded(7).take(3);
        assert_eq!(a, b);
        assert_eq!(a[0].get_version_num(), 4);
        assert_ne!(a[0], a[1]);
    }
}
