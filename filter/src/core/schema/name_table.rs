//! Full name → definition, for the schema: a list, sorted once every type is declared
//! ([`NameTable::seal`]), then searched (every type reference of the set is resolved through
//! it while linking; after, lookups are few: an `Any`'s type, a plan by name). Every worker's
//! VM keeps one, and builds it while the whole descriptor set is in memory: for a 4,000-type
//! API a hash map held 8,192 buckets (140 KB on wasm32) at the link's peak, the list 65 KB.
use std::sync::Arc;

#[derive(Debug, Clone)]
pub(super) struct NameTable<D> {
    /// Sorted by name once sealed; in declaration order before.
    list: Vec<(Arc<str>, D)>,
    sealed: bool,
}

impl<D> Default for NameTable<D> {
    fn default() -> Self {
        NameTable { list: Vec::new(), sealed: false }
    }
}

impl<D: Copy> NameTable<D> {
    pub fn get(&self, name: &str) -> Option<D> {
        if !self.sealed {
            // Not before `seal` in practice; kept correct anyway.
            return self.list.iter().find(|(n, _)| **n == *name).map(|&(_, def)| def);
        }
        let found = self.list.binary_search_by(|(n, _)| (**n).cmp(name)).ok()?;
        self.list.get(found).map(|&(_, def)| def)
    }

    /// Adds `name`. Names are checked for duplicates by [`NameTable::seal`].
    pub fn insert(&mut self, name: Arc<str>, def: D) {
        if self.sealed {
            // Not after `seal` in practice; kept correct anyway.
            let at = self.list.partition_point(|(n, _)| *n < name);
            self.list.insert(at, (name, def));
        } else {
            // Grown by a quarter, not doubled: the table is built at the link's peak (with the
            // whole set), where doubling left up to half of it unused (62 KB of 131 KB).
            if self.list.len() == self.list.capacity() {
                self.list.reserve_exact(self.list.len() / 4 + 16);
            }
            self.list.push((name, def));
        }
    }

    /// Sorts the table for lookups; `Err` with a name added more than once (n log n, where a
    /// check per insert would cost a map).
    pub fn seal(&mut self) -> Result<(), Arc<str>> {
        // Unstable: a stable sort allocates a copy of the list, at the link's peak; of two
        // equal names, either may stay (sealing then fails).
        self.list.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        self.list.shrink_to_fit();
        self.sealed = true;
        let duplicate = self.list.windows(2).find_map(|w| match w {
            [(a, _), (b, _)] if a == b => Some(a.clone()),
            _ => None,
        });
        duplicate.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn sealed_lookups_find_every_name_and_no_other() {
        let mut table = NameTable::default();
        let names: Vec<String> = (0..300).map(|i| format!("pkg.v{}.Type{}", i % 7, i * 7919 % 300)).collect();
        for (i, name) in names.iter().enumerate() {
            table.insert(name.as_str().into(), i);
        }
        let before: Vec<Option<usize>> = names.iter().map(|n| table.get(n)).collect();
        assert_eq!(before, (0..300).map(Some).collect::<Vec<_>>());
        table.seal().unwrap();
        assert_eq!(names.iter().map(|n| table.get(n)).collect::<Vec<_>>(), before);
        for missing in ["", "pkg", "pkg.v0.Type", "pkg.v0.Type0x", "zzz"] {
            assert_eq!(table.get(missing), None, "{missing}");
        }
        // Still a table after sealing: a name added later is found.
        table.insert("a.New".into(), 1000);
        assert_eq!((table.get("a.New"), table.get(&names[0])), (Some(1000), before[0]));
    }

    #[test]
    fn sealing_names_a_duplicate() {
        let mut table = NameTable::default();
        for (i, name) in ["b.B", "a.A", "c.C", "a.A", "b.B"].into_iter().enumerate() {
            table.insert(name.into(), i);
        }
        assert_eq!(table.seal().unwrap_err().as_ref(), "a.A");
    }
}
