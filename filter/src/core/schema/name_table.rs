//! Full name → definition, for the schema: a list of definitions, sorted by name once every
//! type is declared ([`NameTable::seal`]), then searched (every type reference of the set is
//! resolved through it while linking; after, lookups are few: an `Any`'s type, a plan by name).
//! Every worker's VM keeps one, and builds it while the whole descriptor set is in memory: for
//! a 4,000-type API a hash map of names held 8,192 buckets (140 KB on wasm32) at the link's
//! peak, a sorted list of names 65 KB, this list of definitions 17 KB (the names are the
//! messages' and enums' own).
use std::sync::Arc;

use crate::core::schema::{Enum, Message};

/// What a full name defines: indices into the schema's messages and enums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Def {
    Message(usize),
    Enum(usize),
    Service,
}

/// A definition in 32 bits: its kind in the top two, its index below (services: into
/// `NameTable::services`).
#[derive(Debug, Clone, Copy)]
struct Entry(u32);

const INDEX: u32 = (1 << 30) - 1;
const MESSAGE: u32 = 0;
const ENUM: u32 = 1 << 30;
const SERVICE: u32 = 2 << 30;

/// The schema's types, whose names the table's entries are.
#[derive(Clone, Copy)]
pub(super) struct Types<'s> {
    pub messages: &'s [Message],
    pub enums: &'s [Enum],
}

#[derive(Debug, Clone, Default)]
pub(super) struct NameTable {
    /// Sorted by name once sealed; in declaration order before.
    list: Vec<Entry>,
    /// The services' names (a service is only a name here).
    services: Vec<Arc<str>>,
    sealed: bool,
}

impl NameTable {
    fn def(entry: Entry) -> Def {
        let index = usize::try_from(entry.0 & INDEX).unwrap_or(usize::MAX);
        match entry.0 & !INDEX {
            MESSAGE => Def::Message(index),
            ENUM => Def::Enum(index),
            _ => Def::Service,
        }
    }

    /// The name of an entry ("" for an index with no type: never, once the types are added).
    fn name<'t>(&'t self, entry: Entry, types: Types<'t>) -> &'t str {
        let index = usize::try_from(entry.0 & INDEX).unwrap_or(usize::MAX);
        match entry.0 & !INDEX {
            MESSAGE => types.messages.get(index).map_or("", |m| &m.full_name),
            ENUM => types.enums.get(index).map_or("", |e| &e.full_name),
            _ => self.services.get(index).map_or("", |s| s),
        }
    }

    pub fn get(&self, name: &str, types: Types<'_>) -> Option<Def> {
        let found = if self.sealed {
            let at = self.list.binary_search_by(|&e| self.name(e, types).cmp(name)).ok()?;
            self.list.get(at)
        } else {
            // Not before `seal` in practice; kept correct anyway.
            self.list.iter().find(|&&e| self.name(e, types) == name)
        };
        found.map(|&e| Self::def(e))
    }

    /// Room for `n` more definitions.
    pub fn reserve(&mut self, n: usize) {
        self.list.reserve_exact(n);
    }

    /// Adds a message or enum (its name is its type's: add the type before any lookup), or a
    /// service named `service`. Duplicates are found by [`NameTable::seal`]; `Err` past 2^30
    /// types of a kind.
    pub fn insert(&mut self, def: Def, service: Option<Arc<str>>) -> Result<(), &'static str> {
        let (kind, index) = match def {
            Def::Message(i) => (MESSAGE, i),
            Def::Enum(i) => (ENUM, i),
            Def::Service => (SERVICE, self.services.len()),
        };
        let index = u32::try_from(index).ok().filter(|&i| i <= INDEX).ok_or("too many types")?;
        if let (Def::Service, Some(name)) = (def, service) {
            self.services.push(name);
        }
        self.list.push(Entry(kind | index));
        // Not after `seal` in practice: kept sorted anyway.
        self.sealed = false;
        Ok(())
    }

    /// Sorts the table for lookups; `Err` with the first name (in the order they were added)
    /// added a second time (n log n, where a check per insert would cost a map).
    pub fn seal(&mut self, types: Types<'_>) -> Result<(), String> {
        let mut list = std::mem::take(&mut self.list);
        list.shrink_to_fit();
        let declared = list.clone();
        // Unstable: a stable sort allocates a copy of the list (as large as `declared`).
        list.sort_unstable_by(|&a, &b| self.name(a, types).cmp(self.name(b, types)));
        let any_twice = list.windows(2).any(|w| matches!(w, [a, b] if self.name(*a, types) == self.name(*b, types)));
        self.list = list;
        self.sealed = true;
        if !any_twice {
            return Ok(());
        }
        // Rare: found again in declaration order, to name the duplicate protoc would.
        let mut seen = std::collections::HashSet::with_capacity(declared.len());
        let twice = declared.iter().map(|&e| self.name(e, types)).find(|name| !seen.insert(*name));
        Err(twice.unwrap_or_default().to_string())
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn message(name: &str) -> Message {
        Message { full_name: name.into(), fields: Box::default(), map_entry: false }
    }

    fn enumeration(name: &str) -> Enum {
        Enum { full_name: name.into(), values: Vec::new(), closed: false }
    }

    #[test]
    fn sealed_lookups_find_every_name_and_no_other() {
        let names: Vec<String> = (0..300).map(|i| format!("pkg.v{}.Type{}", i % 7, i * 7919 % 300)).collect();
        let messages: Vec<Message> = names[..200].iter().map(|n| message(n)).collect();
        let enums: Vec<Enum> = names[200..].iter().map(|n| enumeration(n)).collect();
        let types = Types { messages: &messages, enums: &enums };
        let mut table = NameTable::default();
        (0..200).for_each(|i| table.insert(Def::Message(i), None).unwrap());
        (0..100).for_each(|i| table.insert(Def::Enum(i), None).unwrap());
        table.insert(Def::Service, Some("pkg.Service".into())).unwrap();
        let expected: Vec<Option<Def>> =
            (0..200).map(|i| Some(Def::Message(i))).chain((0..100).map(|i| Some(Def::Enum(i)))).collect();
        assert_eq!(names.iter().map(|n| table.get(n, types)).collect::<Vec<_>>(), expected);
        table.seal(types).unwrap();
        assert_eq!(names.iter().map(|n| table.get(n, types)).collect::<Vec<_>>(), expected);
        assert_eq!(table.get("pkg.Service", types), Some(Def::Service));
        for missing in ["", "pkg", "pkg.v0.Type", "pkg.v0.Type0x", "zzz"] {
            assert_eq!(table.get(missing, types), None, "{missing}");
        }
    }

    #[test]
    fn sealing_names_a_duplicate_of_any_kinds() {
        let messages = [message("b.B"), message("a.A"), message("c.C")];
        let enums = [enumeration("a.A")];
        let types = Types { messages: &messages, enums: &enums };
        let mut table = NameTable::default();
        (0..3).for_each(|i| table.insert(Def::Message(i), None).unwrap());
        table.insert(Def::Enum(0), None).unwrap();
        assert_eq!(table.seal(types).unwrap_err(), "a.A");
        let mut table = NameTable::default();
        table.insert(Def::Message(2), None).unwrap();
        table.insert(Def::Service, Some("c.C".into())).unwrap();
        assert_eq!(table.seal(types).unwrap_err(), "c.C");
        // The first added a second time, not the first in name order.
        let messages = [message("p.M"), message("p.Z"), message("p.Z"), message("p.M")];
        let mut table = NameTable::default();
        (0..4).for_each(|i| table.insert(Def::Message(i), None).unwrap());
        assert_eq!(table.seal(Types { messages: &messages, enums: &[] }).unwrap_err(), "p.Z");
    }

    #[test]
    fn an_index_past_30_bits_is_refused() {
        let mut table = NameTable::default();
        assert!(table.insert(Def::Message(1 << 30), None).is_err());
        assert!(table.insert(Def::Enum((1 << 30) - 1), None).is_ok());
    }
}
