//! The `.wasm`'s allocator: while a configuration is built ([`building`]), small allocations
//! go to headerless slots of size-classed blocks; everything else, and every allocation while
//! requests are served, to the system allocator (wasi-libc's dlmalloc).
//!
//! Why (measured, `bench/wasm-core --memory`): every worker's VM holds the whole API, and a
//! VM's linear memory never shrinks. A 2,000-method API keeps ~23,500 allocations, most under
//! 64 bytes; dlmalloc gives each a 4-byte header, rounds it to 8 bytes and to 16 at least, which
//! was 148 KB of a 1.3 MB heap. Here an allocation of at most [`MAX_SMALL`] bytes takes a slot
//! rounded to 4 bytes (8 when 8-aligned), with nothing beside it. `talc` (5.1.1, a tag per
//! allocation) touched as many pages as dlmalloc.
//!
//! Why only while building: a block keeps the slots of one size, so one live slot holds its
//! whole block for that size. Requests, whose sizes and lifetimes a client chooses, could hold
//! a block per slot that way (a review measured 48 MB against dlmalloc's 9 MB); a
//! configuration's allocations are few-sized and live together.
//!
//! A block is [`BLOCK`] bytes, aligned to its size (so a slot's block is its address rounded
//! down), and holds slots of one size. Blocks are cut from [`SUPER`]-byte areas taken from
//! dlmalloc (a block of its own would cost dlmalloc an aligned chunk: twice its size, measured);
//! the pages of an area are touched only as its blocks are used. The areas' addresses are kept
//! sorted: a freed small allocation is a slot when it lies in one. A block with free slots is on
//! its class's list; a block whose slots are all free again goes to a pool any class takes from
//! (one is kept per class). Areas are not given back: the slots' memory is at most the peak of
//! what configurations held in them (a swap of live descriptors builds the next in the last's).
//!
//! Not thread-safe: a proxy-wasm VM runs one thread (wasm32 without the atomics feature).
use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr;

/// A block's size and alignment. Small, so a class used little keeps little: a class's last
/// block is partly empty, and there are [`CLASSES`] of them.
pub const BLOCK: usize = 1024;
/// The areas blocks are cut from.
pub const SUPER: usize = 12 * BLOCK;
/// The largest allocation in a slot; larger ones (or aligned to more than 8) go to dlmalloc,
/// whose overhead is small beside them.
pub const MAX_SMALL: usize = 128;
const GRAIN: usize = 4;
const CLASSES: usize = MAX_SMALL / GRAIN;
/// The block's header (16 bytes on wasm32), rounded to 8 so that slots of a multiple of 8 are
/// 8-aligned.
const HEADER: usize = std::mem::size_of::<Block>().div_ceil(8) * 8;
/// The end of a free list (slot offsets are at least `HEADER`).
const NONE: u16 = 0;

/// At the start of each block. Offsets (not pointers): a slot of 4 bytes holds the next free
/// slot's, on any target.
#[repr(C)]
struct Block {
    /// The class's list of blocks with free slots (the pool's: `next` only).
    prev: *mut Block,
    next: *mut Block,
    /// The first free slot, `NONE` when none; each free slot holds the next's offset.
    free: u16,
    /// Slots from here on were never used.
    bump: u16,
    /// Slots in use.
    live: u16,
    /// On the class's list.
    listed: bool,
}

struct State {
    /// Each class's blocks with free slots (the first is used first).
    lists: [*mut Block; CLASSES],
    /// Empty blocks, for any class.
    pool: *mut Block,
    /// The rest of the current area, never used yet.
    carve: usize,
    carve_end: usize,
    /// Blocks holding slots of a class (for tests and measurements).
    in_use: usize,
    /// Small allocations go to slots (a configuration is being built).
    building: bool,
    /// The areas' first addresses, sorted: `areas_len` of room for `areas_cap`, from the inner
    /// allocator.
    areas: *mut usize,
    areas_len: usize,
    areas_cap: usize,
    /// The first area's first address and the last one's end (both 0 before any).
    areas_low: usize,
    areas_high: usize,
}

/// Size classes with an inner allocator for blocks and large allocations.
pub struct SmallSlots<A> {
    inner: A,
    state: UnsafeCell<State>,
}

// SAFETY: only on wasm32 without threads (the filter's VM): there is one thread, so the state
// is never touched from two at once.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl<A: Sync> Sync for SmallSlots<A> {}

/// The slot size and class of a layout, `None` for the inner allocator. A pure function of the
/// layout, so `dealloc` finds the class `alloc` chose.
fn class_of(layout: Layout) -> Option<(usize, usize)> {
    let size = layout.size().max(1);
    if size > MAX_SMALL || layout.align() > 8 {
        return None;
    }
    let grain = if layout.align() > GRAIN { 8 } else { GRAIN };
    let slot = size.div_ceil(grain) * grain;
    Some((slot, slot / GRAIN - 1))
}

/// The block holding `slot`.
fn block_of(slot: *mut u8) -> *mut Block {
    slot.wrapping_sub(slot as usize % BLOCK).cast()
}

impl<A: GlobalAlloc> SmallSlots<A> {
    pub const fn new(inner: A) -> Self {
        SmallSlots {
            inner,
            state: UnsafeCell::new(State {
                lists: [ptr::null_mut(); CLASSES],
                pool: ptr::null_mut(),
                carve: 0,
                carve_end: 0,
                in_use: 0,
                building: false,
                areas: ptr::null_mut(),
                areas_len: 0,
                areas_cap: 0,
                areas_low: 0,
                areas_high: 0,
            }),
        }
    }

    /// Runs `f` with small allocations in slots (a configuration's build), then as before (also
    /// if `f` unwinds; nested builds restore the outer one's setting).
    pub fn building<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore<'a>(&'a UnsafeCell<State>, bool);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                // SAFETY: one thread; a flag read by later calls.
                unsafe { (*self.0.get()).building = self.1 };
            }
        }
        // SAFETY: as above.
        let was = unsafe { std::mem::replace(&mut (*self.state.get()).building, true) };
        let _restore = Restore(&self.state, was);
        f()
    }

    /// Whether `ptr` lies in an area (is a slot).
    fn in_area(&self, ptr: *mut u8) -> bool {
        let at = ptr as usize;
        // SAFETY: one thread; `areas` holds `areas_len` initialized entries.
        unsafe {
            let state = &*self.state.get();
            // Most of what requests free lies outside every area (above them, mostly).
            if at < state.areas_low || at >= state.areas_high {
                return false;
            }
            let areas = std::slice::from_raw_parts(state.areas, state.areas_len);
            // The last area starting at or before `at`.
            let after = areas.partition_point(|&start| start <= at);
            after.checked_sub(1).and_then(|i| areas.get(i)).is_some_and(|&start| at - start < SUPER)
        }
    }

    /// Notes a new area's address in `state`; false when there is no memory for the list.
    ///
    /// # Safety
    /// `state` is this allocator's.
    unsafe fn add_area(&self, state: &mut State, start: usize) -> bool {
        let Some(end) = start.checked_add(SUPER) else { return false };
        // SAFETY: the caller's; the list is the inner allocator's, sized `areas_cap`.
        unsafe {
            if state.areas_len == state.areas_cap {
                let cap = (state.areas_cap * 2).max(16);
                let (Ok(old), Ok(new)) = (Layout::array::<usize>(state.areas_cap), Layout::array::<usize>(cap)) else {
                    return false;
                };
                let grown = if state.areas.is_null() {
                    self.inner.alloc(new)
                } else {
                    self.inner.realloc(state.areas.cast(), old, new.size())
                };
                if grown.is_null() {
                    return false;
                }
                state.areas = grown.cast();
                state.areas_cap = cap;
            }
            let areas = std::slice::from_raw_parts(state.areas, state.areas_len);
            let at = areas.partition_point(|&a| a < start);
            let place = state.areas.add(at);
            ptr::copy(place, place.add(1), state.areas_len - at);
            place.write(start);
            state.areas_len += 1;
            state.areas_low = if state.areas_len == 1 { start } else { state.areas_low.min(start) };
            state.areas_high = state.areas_high.max(end);
            true
        }
    }

    /// Blocks in the pool (empty, for any class).
    pub fn blocks_pooled(&self) -> usize {
        let mut n = 0;
        // SAFETY: one thread; pooled blocks are live, linked by `next`.
        unsafe {
            let mut b = (*self.state.get()).pool;
            while !b.is_null() {
                n += 1;
                b = (*b).next;
            }
        }
        n
    }

    /// Blocks holding slots now.
    pub fn blocks_in_use(&self) -> usize {
        // SAFETY: one thread; a read between calls.
        unsafe { (*self.state.get()).in_use }
    }

    /// The class's list head (null for no class).
    fn head(&self, class: usize) -> *mut *mut Block {
        // SAFETY: a place in the state, not a reference to it.
        let lists = unsafe { ptr::addr_of_mut!((*self.state.get()).lists) };
        if class < CLASSES {
            lists.cast::<*mut Block>().wrapping_add(class)
        } else {
            ptr::null_mut()
        }
    }

    /// # Safety
    /// `block` is a block of `class`, not listed.
    unsafe fn link(&self, class: usize, block: *mut Block) {
        // SAFETY: the caller's; `block` and the head are live blocks.
        unsafe {
            let head = self.head(class);
            if head.is_null() {
                return;
            }
            (*block).prev = ptr::null_mut();
            (*block).next = *head;
            if let Some(first) = (*head).as_mut() {
                first.prev = block;
            }
            *head = block;
            (*block).listed = true;
        }
    }

    /// # Safety
    /// `block` is a listed block of `class`.
    unsafe fn unlink(&self, class: usize, block: *mut Block) {
        // SAFETY: the caller's; its neighbours are live blocks of the same list.
        unsafe {
            let (prev, next) = ((*block).prev, (*block).next);
            if let Some(next) = next.as_mut() {
                next.prev = prev;
            }
            match prev.as_mut() {
                Some(prev) => prev.next = next,
                None => {
                    let head = self.head(class);
                    if !head.is_null() {
                        *head = next;
                    }
                }
            }
            (*block).listed = false;
        }
    }

    /// An empty block: from the pool, else cut from the area, else from a new area; null when
    /// the inner allocator has no memory.
    unsafe fn take_block(&self) -> *mut Block {
        // SAFETY: one thread; pooled blocks are live and empty.
        unsafe {
            let state = &mut *self.state.get();
            if !state.pool.is_null() {
                let block = state.pool;
                state.pool = (*block).next;
                return block;
            }
            if state.carve_end.saturating_sub(state.carve) < BLOCK {
                let Ok(layout) = Layout::from_size_align(SUPER, BLOCK) else { return ptr::null_mut() };
                let area = self.inner.alloc(layout);
                if area.is_null() {
                    return ptr::null_mut();
                }
                if !self.add_area(state, area as usize) {
                    self.inner.dealloc(area, layout);
                    return ptr::null_mut();
                }
                state.carve = area as usize;
                state.carve_end = state.carve + SUPER;
            }
            let block = state.carve as *mut Block;
            state.carve += BLOCK;
            block
        }
    }

    /// A new, listed block for `class`, or null when there is no memory.
    unsafe fn new_block(&self, class: usize) -> *mut Block {
        // SAFETY: one thread; an empty block of BLOCK bytes, aligned for a Block.
        unsafe {
            let block = self.take_block();
            if block.is_null() {
                return block;
            }
            block.write(Block {
                prev: ptr::null_mut(),
                next: ptr::null_mut(),
                free: NONE,
                bump: HEADER as u16,
                live: 0,
                listed: false,
            });
            (*self.state.get()).in_use += 1;
            self.link(class, block);
            block
        }
    }

    unsafe fn alloc_small(&self, slot: usize, class: usize) -> *mut u8 {
        // SAFETY: one thread; the list holds live blocks of this class.
        unsafe {
            let head = self.head(class);
            if head.is_null() {
                return ptr::null_mut();
            }
            let mut block = *head;
            if block.is_null() {
                block = self.new_block(class);
                if block.is_null() {
                    return ptr::null_mut();
                }
            }
            let base: *mut u8 = block.cast();
            let at = if (*block).free != NONE {
                let at = (*block).free;
                (*block).free = base.add(usize::from(at)).cast::<u16>().read();
                at
            } else {
                let at = (*block).bump;
                (*block).bump = at + slot as u16;
                at
            };
            (*block).live += 1;
            if (*block).free == NONE && usize::from((*block).bump) + slot > BLOCK {
                self.unlink(class, block);
            }
            base.add(usize::from(at))
        }
    }

    unsafe fn dealloc_small(&self, ptr: *mut u8, class: usize) {
        // SAFETY: `ptr` is a slot `alloc_small` gave for this class, in a live block.
        unsafe {
            let block = block_of(ptr);
            let at = (ptr as usize % BLOCK) as u16;
            ptr.cast::<u16>().write((*block).free);
            (*block).free = at;
            (*block).live -= 1;
            if !(*block).listed {
                self.link(class, block);
            }
            let only = (*block).prev.is_null() && (*block).next.is_null();
            if (*block).live == 0 && !only {
                self.unlink(class, block);
                let state = &mut *self.state.get();
                (*block).next = state.pool;
                state.pool = block;
                state.in_use -= 1;
            }
        }
    }
}

// Not inlined: Rust inlines the global allocator's calls where it allocates, and these bodies
// in each place cost the .wasm 8 KB more (after wasm-opt).
// SAFETY: small layouts allocated while building get distinct slots of at least their size and
// alignment (slot sizes are multiples of 4, or of 8 for 8-aligned layouts, in BLOCK-aligned
// blocks after an 8-aligned header) until freed, and are found to be slots by their address;
// every other allocation is the inner allocator's.
unsafe impl<A: GlobalAlloc> GlobalAlloc for SmallSlots<A> {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: one thread (see the Sync impl); the caller's layout.
        unsafe {
            match class_of(layout) {
                Some((slot, class)) if (*self.state.get()).building => self.alloc_small(slot, class),
                _ => self.inner.alloc(layout),
            }
        }
    }

    #[inline(never)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`; a slot is zeroed here (it may hold a freed one's bytes).
        unsafe {
            match class_of(layout) {
                Some((slot, class)) if (*self.state.get()).building => {
                    let p = self.alloc_small(slot, class);
                    if !p.is_null() {
                        p.write_bytes(0, layout.size());
                    }
                    p
                }
                _ => self.inner.alloc_zeroed(layout),
            }
        }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match class_of(layout) {
            // SAFETY: a slot of this layout's class (it was allocated with this layout).
            Some((_, class)) if self.in_area(ptr) => unsafe { self.dealloc_small(ptr, class) },
            // SAFETY: the caller's.
            _ => unsafe { self.inner.dealloc(ptr, layout) },
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new) = Layout::from_size_align(new_size, layout.align()) else { return ptr::null_mut() };
        let old = class_of(layout).filter(|_| self.in_area(ptr));
        // SAFETY: one thread.
        let new_class = class_of(new).filter(|_| unsafe { (*self.state.get()).building });
        match (old, new_class) {
            // SAFETY: the caller's.
            (None, None) => unsafe { self.inner.realloc(ptr, layout, new_size) },
            (Some((_, a)), Some((_, b))) if a == b => ptr,
            _ => {
                // SAFETY: a new allocation, then the old one's bytes that fit, then the old
                // one freed with its own layout.
                unsafe {
                    let moved = self.alloc(new);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    moved
                }
            }
        }
    }
}

/// The filter's allocator (and the wasm32 unit tests').
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics"), any(feature = "proxy", test)))]
#[global_allocator]
static ALLOCATOR: SmallSlots<std::alloc::System> = SmallSlots::new(std::alloc::System);

/// Runs `f`, a configuration's build, with its small allocations in slots (in the filter;
/// elsewhere `f` alone).
pub fn building<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics"), any(feature = "proxy", test)))]
    return ALLOCATOR.building(f);
    #[cfg(not(all(target_arch = "wasm32", not(target_feature = "atomics"), any(feature = "proxy", test))))]
    f()
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use std::alloc::System;
    use std::cell::Cell;

    use super::*;

    /// Counts the inner allocator's live areas and its other live allocations.
    struct Inner {
        areas: Cell<usize>,
        others: Cell<isize>,
    }

    unsafe impl GlobalAlloc for Inner {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            match layout.size() == SUPER {
                true => self.areas.set(self.areas.get() + 1),
                false => self.others.set(self.others.get() + 1),
            }
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            match layout.size() == SUPER {
                true => self.areas.set(self.areas.get() - 1),
                false => self.others.set(self.others.get() - 1),
            }
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    fn slots() -> SmallSlots<Inner> {
        SmallSlots::new(Inner { areas: Cell::new(0), others: Cell::new(0) })
    }

    #[test]
    fn classes_round_to_four_bytes_or_to_the_alignment_and_stop_at_the_small_limit() {
        let class = |size, align| class_of(Layout::from_size_align(size, align).unwrap());
        assert_eq!(class(0, 1), Some((4, 0)));
        assert_eq!(class(1, 1), Some((4, 0)));
        assert_eq!(class(4, 4), Some((4, 0)));
        assert_eq!(class(5, 1), Some((8, 1)));
        assert_eq!(class(12, 4), Some((12, 2)));
        assert_eq!(class(12, 8), Some((16, 3)));
        assert_eq!(class(128, 4), Some((128, CLASSES - 1)));
        assert_eq!(class(129, 1), None);
        assert_eq!(class(16, 16), None);
    }

    /// A pseudo-random sequence of allocations, frees and reallocations of many sizes and
    /// alignments, part while building and part not: each allocation is aligned, distinct from
    /// every other live one (its bytes are filled and checked before it is freed), and at the
    /// end every block is empty again but the one a class keeps, and every other allocation was
    /// given back to the inner allocator.
    #[test]
    fn random_allocations_keep_their_bytes_and_their_blocks_are_pooled_when_freed() {
        let a = slots();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        let check = |&(p, layout, fill): &(*mut u8, Layout, u8)| {
            assert_eq!(p as usize % layout.align(), 0, "{layout:?}");
            let bytes = unsafe { std::slice::from_raw_parts(p, layout.size()) };
            assert!(bytes.iter().all(|&b| b == fill), "{layout:?} was overwritten");
        };
        let mut most = 0;
        let mut step = |a: &SmallSlots<Inner>, live: &mut Vec<(*mut u8, Layout, u8)>, step: u32| {
            let r = next();
            if live.len() < 3_000 && (r % 3 != 0 || live.is_empty()) {
                let size = (r >> 8) as usize % if r % 16 == 0 { 400 } else { MAX_SMALL + 1 };
                let align = 1 << ((r >> 20) % 4);
                let layout = Layout::from_size_align(size, align).unwrap();
                let p = unsafe { a.alloc(layout) };
                assert!(!p.is_null());
                let fill = step as u8;
                unsafe { p.write_bytes(fill, size) };
                live.push((p, layout, fill));
            } else {
                let i = (r >> 8) as usize % live.len();
                let entry = live.swap_remove(i);
                check(&entry);
                let (p, layout, _) = entry;
                if r % 5 == 0 {
                    let new_size = 1 + (r >> 32) as usize % 300;
                    let q = unsafe { a.realloc(p, layout, new_size) };
                    assert!(!q.is_null());
                    let kept = unsafe { std::slice::from_raw_parts(q, layout.size().min(new_size)) };
                    assert!(kept.iter().all(|&b| b == entry.2), "realloc lost bytes");
                    let layout = Layout::from_size_align(new_size, layout.align()).unwrap();
                    let fill = step as u8;
                    unsafe { q.write_bytes(fill, new_size) };
                    live.push((q, layout, fill));
                } else {
                    unsafe { a.dealloc(p, layout) };
                }
            }
        };
        for round in 0..6u32 {
            let mut steps = (round * 40_000)..((round + 1) * 40_000);
            let mut run = || {
                for i in steps.by_ref() {
                    step(&a, &mut live, i);
                    most = most.max(a.blocks_in_use());
                }
            };
            match round % 2 {
                0 => a.building(run),
                _ => run(),
            }
        }
        assert!(most > 2 * CLASSES, "the sequence filled several blocks per class");
        for entry in live.drain(..) {
            check(&entry);
            unsafe { a.dealloc(entry.0, entry.1) };
        }
        assert!(a.blocks_in_use() <= CLASSES, "{} blocks in use after every slot was freed", a.blocks_in_use());
        assert_eq!(a.inner.others.get(), 1, "only the list of areas is left");
        assert!(a.inner.areas.get() * SUPER / BLOCK < most + SUPER / BLOCK, "areas beyond the peak of blocks");
    }

    #[test]
    fn a_full_block_is_used_again_once_a_slot_of_it_is_freed_and_an_empty_one_serves_any_class() {
        let a = slots();
        let layout = Layout::from_size_align(100, 4).unwrap();
        let per_block = (BLOCK - HEADER) / 100;
        let first: Vec<*mut u8> = a.building(|| (0..per_block).map(|_| unsafe { a.alloc(layout) }).collect());
        assert_eq!(a.blocks_in_use(), 1);
        let other = a.building(|| unsafe { a.alloc(layout) });
        assert_eq!(a.blocks_in_use(), 2);
        unsafe { a.dealloc(first[3], layout) };
        unsafe { a.dealloc(other, layout) };
        assert_eq!(a.blocks_in_use(), 1, "the empty second block was pooled");
        let again = a.building(|| unsafe { a.alloc(layout) });
        assert_eq!(again, first[3], "the freed slot of the first block");
        let small = Layout::from_size_align(4, 4).unwrap();
        let four = a.building(|| unsafe { a.alloc(small) });
        assert_eq!(block_of(four), block_of(other), "the pooled block, for another class");
        assert_eq!(a.blocks_in_use(), 2);
        assert_eq!(a.inner.areas.get(), 1, "one area");
    }

    /// Areas from the top of an arena down, as dlmalloc places one in a hole below the first.
    struct Downwards {
        arena: *mut u8,
        next: Cell<usize>,
    }

    unsafe impl GlobalAlloc for Downwards {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if layout.size() != SUPER {
                return unsafe { System.alloc(layout) };
            }
            self.next.set(self.next.get() - 1);
            unsafe { self.arena.add(self.next.get() * SUPER) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            if layout.size() != SUPER {
                unsafe { System.dealloc(ptr, layout) }
            }
        }
    }

    #[test]
    fn slots_in_areas_below_earlier_ones_are_found_and_freed_as_slots() {
        let n = 40;
        let arena = unsafe { System.alloc(Layout::from_size_align(n * SUPER, BLOCK).unwrap()) };
        let a = SmallSlots::new(Downwards { arena, next: Cell::new(n) });
        let layout = Layout::from_size_align(100, 4).unwrap();
        let per_area = SUPER / BLOCK * ((BLOCK - HEADER) / 100);
        let slots: Vec<*mut u8> = a.building(|| (0..(n - 1) * per_area).map(|_| unsafe { a.alloc(layout) }).collect());
        assert_eq!(a.inner.next.get(), 1, "every area but one used");
        assert!(slots.iter().all(|&p| a.in_area(p)));
        for p in slots {
            unsafe { a.dealloc(p, layout) };
        }
        assert!(a.blocks_in_use() <= 1);
        unsafe { System.dealloc(arena, Layout::from_size_align(n * SUPER, BLOCK).unwrap()) };
    }

    #[test]
    fn a_nested_build_leaves_the_outer_one_building() {
        let a = slots();
        let layout = Layout::from_size_align(8, 4).unwrap();
        let (inner, outer) = a.building(|| {
            let inner = a.building(|| unsafe { a.alloc(layout) });
            (inner, unsafe { a.alloc(layout) })
        });
        let after = unsafe { a.alloc(layout) };
        assert!(a.in_area(inner) && a.in_area(outer) && !a.in_area(after));
        for p in [inner, outer, after] {
            unsafe { a.dealloc(p, layout) };
        }
    }

    /// Outside a build, a client's requests allocate from the inner allocator alone: keeping
    /// one allocation of every few cannot hold a block per allocation.
    #[test]
    fn small_allocations_outside_a_build_go_to_the_inner_allocator_and_slots_still_come_back() {
        let a = slots();
        let layout = Layout::from_size_align(24, 8).unwrap();
        let built: Vec<*mut u8> = a.building(|| (0..100).map(|_| unsafe { a.alloc(layout) }).collect());
        let blocks = a.blocks_in_use();
        let served: Vec<*mut u8> = (0..10_000).map(|_| unsafe { a.alloc(layout) }).collect();
        assert_eq!(a.blocks_in_use(), blocks, "no block for requests");
        assert_eq!(a.inner.others.get(), 1 + 10_000, "each from the inner allocator (and the list of areas)");
        assert!(served.iter().all(|&p| !a.in_area(p)) && built.iter().all(|&p| a.in_area(p)));
        // Grown outside a build, a slot moves to the inner allocator.
        let grown = unsafe { a.realloc(built[0], layout, 40) };
        assert!(!a.in_area(grown));
        unsafe { a.dealloc(grown, Layout::from_size_align(40, 8).unwrap()) };
        for p in served {
            unsafe { a.dealloc(p, layout) };
        }
        for &p in &built[1..] {
            unsafe { a.dealloc(p, layout) };
        }
        assert_eq!(a.inner.others.get(), 1);
        assert!(a.blocks_in_use() <= 1, "the slots went back to their blocks");
    }
}
