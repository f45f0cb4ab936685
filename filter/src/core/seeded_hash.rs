//! The hash of every map keyed by what a descriptor set or a configuration names: message,
//! field and enum value names, field numbers, custom HTTP methods.
//!
//! The set chooses those keys. With an unseeded hash (FNV-1a, here before) it could choose
//! tens of thousands of names whose hashes share their low bits, so one bucket of a table:
//! a message's plan then cost names² to build, and every JSON key a client sends a walk along
//! that chain. foldhash (hashbrown's own default) keyed once per VM from the host's random
//! source: the set's author cannot know the seed, and it hashes short names as fast as FNV did.
//! Nothing iterates these maps where the order would show (outputs follow declaration order).
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::OnceLock;

use foldhash::fast::FoldHasher;
use foldhash::SharedSeed;

/// Builds hashers keyed by the VM's seed; a unit value, so a map costs no more than with FNV.
#[derive(Clone, Copy, Debug, Default)]
pub struct Seeded;

pub type SeededMap<K, V> = HashMap<K, V, Seeded>;
pub type SeededSet<K> = HashSet<K, Seeded>;

/// Drawn on first use: std's `RandomState` reads WASI `random_get` (Envoy answers it from its
/// random generator) and the OS's source natively.
fn seed() -> &'static (u64, SharedSeed) {
    static SEED: OnceLock<(u64, SharedSeed)> = OnceLock::new();
    SEED.get_or_init(|| {
        let random = std::collections::hash_map::RandomState::new();
        (random.hash_one(0u8), SharedSeed::from_u64(random.hash_one(1u8)))
    })
}

impl BuildHasher for Seeded {
    type Hasher = FoldHasher<'static>;

    fn build_hasher(&self) -> FoldHasher<'static> {
        let (per_hasher, shared) = seed();
        FoldHasher::with_seed(*per_hasher, shared)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn equal_keys_hash_alike_and_the_seed_is_drawn_once() {
        assert_eq!(Seeded.hash_one("name"), Seeded.hash_one("name"));
        assert_ne!(Seeded.hash_one("name"), Seeded.hash_one("nama"));
        assert!(std::ptr::eq(seed(), seed()));
        let map: SeededMap<&str, u32> = [("a", 1), ("b", 2)].into_iter().collect();
        assert_eq!((map.get("a"), map.get("b"), map.get("c")), (Some(&1), Some(&2), None));
    }
}
