//! Full name → definition, for the schema. A hash map while the set is linked (every type
//! reference is resolved through it), then a sorted list ([`NameTable::compact`]): the filter
//! compacts it once the schema is built, as every worker's VM keeps a copy, and lookups after
//! the link are few (an `Any`'s type, a plan by name). For a 4,000-type API the map holds 8,192
//! buckets (140 KB on wasm32), the list 4,000 entries (65 KB).
use std::sync::Arc;

use crate::core::fnv::FnvMap;

#[derive(Debug, Clone)]
pub(super) enum NameTable<D> {
    Linking(FnvMap<Arc<str>, D>),
    /// Sorted by name.
    Sorted(Box<[(Arc<str>, D)]>),
}

impl<D> Default for NameTable<D> {
    fn default() -> Self {
        NameTable::Linking(FnvMap::default())
    }
}

impl<D: Copy> NameTable<D> {
    pub fn get(&self, name: &str) -> Option<D> {
        match self {
            NameTable::Linking(map) => map.get(name).copied(),
            NameTable::Sorted(list) => {
                let found = list.binary_search_by(|(n, _)| (**n).cmp(name)).ok()?;
                list.get(found).map(|&(_, def)| def)
            }
        }
    }

    /// Adds `name`; false (and unchanged) if it is there already.
    pub fn insert(&mut self, name: Arc<str>, def: D) -> bool {
        if let NameTable::Sorted(list) = self {
            // Not after compact() in practice; kept correct anyway.
            *self = NameTable::Linking(std::mem::take(list).into_vec().into_iter().collect());
        }
        match self {
            NameTable::Linking(map) => match map.entry(name) {
                std::collections::hash_map::Entry::Occupied(_) => false,
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(def);
                    true
                }
            },
            NameTable::Sorted(_) => false,
        }
    }

    pub fn compact(&mut self) {
        if let NameTable::Linking(map) = self {
            let mut list: Vec<(Arc<str>, D)> = std::mem::take(map).into_iter().collect();
            list.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
            *self = NameTable::Sorted(list.into_boxed_slice());
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn lookups_are_the_same_before_and_after_compacting() {
        let mut table = NameTable::default();
        let names: Vec<String> = (0..300).map(|i| format!("pkg.v{}.Type{}", i % 7, i * 7919 % 300)).collect();
        for (i, name) in names.iter().enumerate() {
            assert_eq!(table.insert(name.as_str().into(), i), !names[..i].contains(name), "{name}");
        }
        let before: Vec<Option<usize>> = names.iter().map(|n| table.get(n)).collect();
        table.compact();
        assert!(matches!(table, NameTable::Sorted(_)));
        assert_eq!(names.iter().map(|n| table.get(n)).collect::<Vec<_>>(), before);
        for missing in ["", "pkg", "pkg.v0.Type", "pkg.v0.Type0x", "zzz"] {
            assert_eq!(table.get(missing), None, "{missing}");
        }
        // Still a table after compacting: a new name, an old one refused.
        assert!(table.insert("a.New".into(), 1000));
        assert!(!table.insert(names[0].as_str().into(), 1));
        assert_eq!((table.get("a.New"), table.get(&names[0])), (Some(1000), before[0]));
    }
}
