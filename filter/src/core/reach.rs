//! Which message types reach a marked one through their fields: the question the REST controls
//! (REQUIRED / OUTPUT_ONLY fields) and the OpenAPI document (request-side schemas, query
//! parameters) ask of the schema. Linear in types and fields, recursion included.

/// `marked[n]` for every type `n` that is marked or holds (along `edges`: holder → held) a
/// type that is: the marked ones first, then their holders through the reversed edges.
pub fn reaching(mut marked: Vec<bool>, edges: impl IntoIterator<Item = (usize, usize)>) -> Vec<bool> {
    let mut holders: Vec<Vec<usize>> = vec![Vec::new(); marked.len()];
    for (holder, held) in edges {
        if let Some(h) = holders.get_mut(held) {
            h.push(holder);
        }
    }
    let mut todo: Vec<usize> = (0..marked.len()).filter(|n| marked.get(*n) == Some(&true)).collect();
    while let Some(n) = todo.pop() {
        for &holder in holders.get(n).map_or(&[][..], |h| &h[..]) {
            if let Some(m) = marked.get_mut(holder).filter(|m| !**m) {
                *m = true;
                todo.push(holder);
            }
        }
    }
    marked
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::reaching;

    #[test]
    fn holders_of_marked_types_are_marked_through_cycles() {
        // 0 → 1 → 2 (marked); 3 ↔ 4 → 0; 5 alone; an edge to a type out of range is ignored.
        let edges = [(0, 1), (1, 2), (3, 4), (4, 3), (4, 0), (5, 9)];
        let marked = reaching(vec![false, false, true, false, false, false], edges);
        assert_eq!(marked, [true, true, true, true, true, false]);
        assert_eq!(reaching(vec![false; 3], [(0, 1), (1, 0)]), [false; 3]);
    }
}
