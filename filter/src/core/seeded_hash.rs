//! The hash of every map keyed by what a descriptor set or a configuration names: message,
//! field and enum value names, field numbers, custom HTTP methods.
//!
//! The set chooses those keys. With an unseeded hash (FNV-1a, here before) it could choose
//! tens of thousands of names whose hashes share their low bits, so one bucket of a table:
//! a message's plan then cost names² to build, and every JSON key a client sends a walk along
//! that chain. foldhash (hashbrown's own default) keyed once per VM from the host's random
//! source: the set's author cannot know the seed, and it hashes short names as fast as FNV did.
//! Each map has a seed of its own, as foldhash asks: filling a table by iterating another of
//! the same seed walks the second's buckets in the first's order and can go quadratic.
//! Nothing iterates these maps where the order would show (outputs follow declaration order).
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use foldhash::fast::FoldHasher;
use foldhash::SharedSeed;

/// Builds hashers keyed by the VM's seed and this map's own (8 bytes a map).
#[derive(Clone, Copy, Debug)]
pub struct Seeded(u64);

impl Default for Seeded {
    fn default() -> Seeded {
        // A Weyl sequence from the VM's first seed: distinct for 2^64 maps.
        static MAPS: AtomicU64 = AtomicU64::new(0);
        let n = MAPS.fetch_add(1, Ordering::Relaxed);
        Seeded(seed().0.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
    }
}

pub type SeededMap<K, V> = HashMap<K, V, Seeded>;
pub type SeededSet<K> = HashSet<K, Seeded>;

/// Drawn on first use: std's `RandomState` keys come from WASI `random_get` in each VM
/// (Envoy answers it from its random generator) and from the OS natively. On
/// wasm32-unknown-unknown (the unit tests' target, no host) std has no random source: the
/// seed is the same in every instance there.
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
        FoldHasher::with_seed(self.0, &seed().1)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn equal_keys_hash_alike_in_a_map_and_each_map_has_its_own_seed() {
        let (one, other) = (Seeded::default(), Seeded::default());
        assert_eq!(one.hash_one("name"), one.hash_one("name"));
        assert_ne!(one.hash_one("name"), one.hash_one("nama"));
        assert_ne!(one.hash_one("name"), other.hash_one("name"), "each map has its own seed");
        assert!(std::ptr::eq(seed(), seed()));
        let map: SeededMap<&str, u32> = [("a", 1), ("b", 2)].into_iter().collect();
        assert_eq!((map.get("a"), map.get("b"), map.get("c")), (Some(&1), Some(&2), None));
    }
}
