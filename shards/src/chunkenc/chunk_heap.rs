//! Where open chunks' bytes are allocated: a mimalloc heap of each thread that holds nothing
//! else, which the head can renew to give back the pages its chunks left behind.
//!
//! At 1 M series every open chunk grows through the size classes in step with the others
//! (a round of scrapes moves most of them a class up), and a class's 64 KiB page stays
//! resident while any block in it is used: by a chunk that grows slowly, or by whatever
//! small object the allocator put in the gap. Measured at 1 M series, 120 s after start
//! (mimalloc's page visitor): ~73 MB of pages in the classes the chunks pass through
//! (8 to 96 bytes) held no live block. In their own heap only chunks fill those pages, and a
//! renewal (`Renewal`) copies every open chunk into a fresh heap, whose pages are full, and
//! deletes the old heap, whose pages then hold nothing and go back to the arena.
//!
//! Blocks are mimalloc's whatever the process's global allocator is (tests run with the
//! system's), so they are freed only here; `to_global` / `from_global` cross to the global
//! allocator, without a copy when that is mimalloc too. This module keeps no chunk state and
//! never decides when to renew: the head does, from `usage`.

use std::cell::Cell;
use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};

/// mimalloc's `mi_heap_t`, only ever behind a pointer.
#[repr(C)]
struct MiHeap {
    _private: [u8; 0],
}

/// mimalloc's `mi_heap_area_t` (v3 layout, as the visitor receives it).
#[repr(C)]
struct MiHeapArea {
    blocks: *mut c_void,
    reserved: usize,
    committed: usize,
    used: usize,
    block_size: usize,
    full_block_size: usize,
    reserved1: *mut c_void,
}

type AreaVisitor =
    extern "C" fn(*const MiHeap, *const MiHeapArea, *mut c_void, usize, *mut c_void) -> bool;

// The first-class heap API of the mimalloc that `libmimalloc-sys` builds and links (v3,
// where a heap may be used from any thread). Declared here rather than through the crate's
// `extended` feature, which would pull in another crate for its C types.
extern "C" {
    fn mi_heap_new() -> *mut MiHeap;
    fn mi_heap_delete(heap: *mut MiHeap);
    fn mi_collect(force: bool);
    fn mi_heap_malloc(heap: *mut MiHeap, size: usize) -> *mut c_void;
    fn mi_heap_realloc(heap: *mut MiHeap, p: *mut c_void, newsize: usize) -> *mut c_void;
    fn mi_heap_visit_blocks(
        heap: *mut MiHeap,
        visit_blocks: bool,
        visitor: AreaVisitor,
        arg: *mut c_void,
    ) -> bool;
    fn mi_is_in_heap_region(p: *const c_void) -> bool;
}

/// The thread's chunk heap, made on first use; deleted with the thread (mimalloc then moves
/// any block still in it to its main heap, so a chunk outliving the thread stays valid).
struct ThreadHeap {
    heap: Cell<*mut MiHeap>,
    /// Bytes allocated since `usage` was last asked.
    allocated: Cell<usize>,
}

impl Drop for ThreadHeap {
    fn drop(&mut self) {
        let h = self.heap.get();
        if !h.is_null() {
            // SAFETY: a heap made by `mi_heap_new` and deleted once.
            unsafe { mi_heap_delete(h) }
        }
    }
}

thread_local! {
    static HEAP: ThreadHeap = const {
        ThreadHeap { heap: Cell::new(std::ptr::null_mut()), allocated: Cell::new(0) }
    };
}

fn with_heap<R>(f: impl FnOnce(*mut MiHeap, &Cell<usize>) -> R) -> R {
    HEAP.with(|t| {
        let mut h = t.heap.get();
        if h.is_null() {
            h = new_heap();
            t.heap.set(h);
        }
        f(h, &t.allocated)
    })
}

fn new_heap() -> *mut MiHeap {
    // SAFETY: no arguments.
    let h = unsafe { mi_heap_new() };
    if h.is_null() {
        std::alloc::handle_alloc_error(std::alloc::Layout::new::<usize>());
    }
    h
}

fn non_null(p: *mut c_void, size: usize) -> NonNull<u8> {
    NonNull::new(p.cast::<u8>()).unwrap_or_else(|| {
        std::alloc::handle_alloc_error(std::alloc::Layout::from_size_align(size, 1).unwrap())
    })
}

/// A block of `size` (> 0) bytes in the thread's chunk heap.
pub(crate) fn alloc(size: usize) -> NonNull<u8> {
    with_heap(|h, allocated| {
        allocated.set(allocated.get() + size);
        // SAFETY: `h` is a live heap; size is non-zero.
        non_null(unsafe { mi_heap_malloc(h, size) }, size)
    })
}

/// Resizes block `p` (from this module) to `size` bytes, in the thread's chunk heap.
pub(crate) fn realloc(p: NonNull<u8>, size: usize) -> NonNull<u8> {
    with_heap(|h, allocated| {
        allocated.set(allocated.get() + size);
        // SAFETY: `p` is a live mimalloc block; the caller gives up its old address.
        non_null(unsafe { mi_heap_realloc(h, p.as_ptr().cast(), size) }, size)
    })
}

/// Frees block `p` (from this module).
pub(crate) fn free(p: NonNull<u8>) {
    // SAFETY: `p` is a live mimalloc block, freed once.
    unsafe { libmimalloc_sys::mi_free(p.as_ptr().cast()) }
}

/// Whether the global allocator's blocks are mimalloc's (the server's), so that a block can
/// move between it and this module without a copy. Decided once, from a real allocation.
fn global_is_mimalloc() -> bool {
    static KNOWN: AtomicU8 = AtomicU8::new(0);
    match KNOWN.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let probe = Box::new(0u8);
            // SAFETY: only asks whether the address lies in mimalloc's arenas.
            let yes = unsafe { mi_is_in_heap_region((&*probe as *const u8).cast()) };
            KNOWN.store(if yes { 1 } else { 2 }, Ordering::Relaxed);
            yes
        }
    }
}

/// Moves `v`'s bytes into a chunk-heap block of `size` (≥ `v.len()`, > 0) bytes.
pub(crate) fn from_global(v: Vec<u8>, size: usize) -> NonNull<u8> {
    if v.capacity() > 0 && global_is_mimalloc() {
        let mut v = std::mem::ManuallyDrop::new(v);
        // The global allocator is mimalloc: its block is resized where it is (in place when
        // it fits, as a restored chunk's does), which keeps a head rebuild from copying every
        // chunk; the next renewal moves it into the chunk heap.
        // SAFETY: a live mimalloc block whose Vec is forgotten.
        return non_null(
            unsafe { libmimalloc_sys::mi_realloc(v.as_mut_ptr().cast(), size) },
            size,
        );
    }
    let p = alloc(size);
    // SAFETY: `p` has room for `size >= v.len()` bytes and is a fresh block.
    unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), p.as_ptr(), v.len()) };
    p
}

/// Gives block `p` of `capacity` bytes holding `len` bytes to a `Vec`, freed by the global
/// allocator.
pub(crate) fn to_global(p: NonNull<u8>, len: usize, capacity: usize) -> Vec<u8> {
    if global_is_mimalloc() {
        // SAFETY: the global allocator is mimalloc, which frees any of its blocks whatever
        // the heap, and whose blocks need no alignment beyond 1; `p` holds `len` bytes.
        return unsafe { Vec::from_raw_parts(p.as_ptr(), len, capacity) };
    }
    // SAFETY: `p` holds `len` initialised bytes.
    let v = unsafe { std::slice::from_raw_parts(p.as_ptr(), len) }.to_vec();
    free(p);
    v
}

/// Bytes the thread's chunk heap holds in pages (`committed`) and in live blocks (`used`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeapUsage {
    pub committed: usize,
    pub used: usize,
}

extern "C" fn add_area(
    _heap: *const MiHeap,
    area: *const MiHeapArea,
    _block: *mut c_void,
    _block_size: usize,
    arg: *mut c_void,
) -> bool {
    // SAFETY: mimalloc passes a valid area, and `arg` is the `HeapUsage` of `usage`.
    let (area, u) = unsafe { (&*area, &mut *arg.cast::<HeapUsage>()) };
    u.committed += area.committed;
    u.used += area.used * area.block_size;
    true
}

/// Bytes allocated in the thread's chunk heap since the last call of `usage`.
pub fn allocated_since_usage() -> usize {
    HEAP.with(|t| t.allocated.get())
}

/// What the thread's chunk heap holds now (one walk over its pages, not its blocks).
pub fn usage() -> HeapUsage {
    with_heap(|h, allocated| {
        allocated.set(0);
        let mut u = HeapUsage::default();
        if !h.is_null() {
            // SAFETY: a live heap, a visitor that only reads the area, `u` outlives the call.
            unsafe { mi_heap_visit_blocks(h, false, add_area, (&raw mut u).cast()) };
        }
        u
    })
}

/// A renewal of the thread's chunk heap: from `begin` on, chunk blocks come from a fresh
/// heap; the caller moves every chunk it owns there (`ChunkBuf::relocate`), then dropping
/// the renewal deletes the old heap. Chunks the caller does not own (another head on the
/// same thread) stay valid: mimalloc moves them to its main heap.
#[must_use = "dropping the renewal at once deletes the old heap before any chunk moved"]
pub struct Renewal {
    old: *mut MiHeap,
}

impl Renewal {
    pub fn begin() -> Renewal {
        HEAP.with(|t| {
            let old = t.heap.get();
            t.heap.set(new_heap());
            Renewal { old }
        })
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        if !self.old.is_null() {
            // SAFETY: made by `mi_heap_new`, no longer the thread's heap, deleted once.
            unsafe { mi_heap_delete(self.old) }
            // The old heap's pages are back in the arena but still resident: mimalloc
            // returns them to the OS (purges) only on a later page event a second or more
            // after, which at a 10 s scrape interval may be ~10 s later (measured: 32 MB
            // of 1 M series' chunks still resident at the bench's 120 s reading). A forced
            // collect of this thread purges them now, for ~0.1–3 ms at 500 k series
            // (`burst7` in BENCHMARKS.md) against the renewal's own 20–70 ms.
            // SAFETY: no pointer passed; collects the calling thread's pages only.
            unsafe { mi_collect(true) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the 4 KiB page holding `p` is resident (`mincore`).
    fn resident(p: *const u8) -> bool {
        let page = (p as usize) & !4095;
        let mut v = 0u8;
        // SAFETY: one page of the process's address space, one byte of result.
        let r = unsafe { libc::mincore(page as *mut libc::c_void, 4096, &mut v) };
        r == 0 && v & 1 == 1
    }

    #[test]
    fn the_old_heaps_pages_leave_memory_with_the_renewal() {
        // 4 MiB of blocks, one every 64 KiB page sampled, all freed before the renewal ends.
        let blocks: Vec<NonNull<u8>> = (0..65_536).map(|_| alloc(64)).collect();
        let sampled: Vec<usize> = blocks
            .iter()
            .step_by(1024)
            .map(|b| b.as_ptr() as usize)
            .collect();
        for b in &blocks {
            // SAFETY: 64-byte blocks.
            unsafe { b.as_ptr().write_bytes(1, 64) };
        }
        assert!(sampled.iter().all(|&p| resident(p as *const u8)));
        let renewal = Renewal::begin();
        for b in blocks {
            free(b);
        }
        drop(renewal);
        // Other tests' chunk heaps may take and touch some of these pages again at once.
        let still = sampled
            .iter()
            .filter(|&&p| resident(p as *const u8))
            .count();
        assert!(
            still * 4 < sampled.len(),
            "{still} of {} pages resident",
            sampled.len()
        );
    }

    /// Each test runs on its own thread, so the thread's chunk heap is the test's alone.
    #[test]
    fn a_renewal_gives_back_the_pages_of_blocks_that_left() {
        let mut blocks: Vec<NonNull<u8>> = (0..100_000).map(|_| alloc(48)).collect();
        for (i, b) in blocks.iter().enumerate() {
            // SAFETY: 48-byte blocks.
            unsafe { b.as_ptr().write_bytes(i as u8, 48) };
        }
        // Nine in ten leave, scattered: every page keeps some block.
        let mut kept = Vec::new();
        for (i, b) in blocks.drain(..).enumerate() {
            if i % 10 == 0 {
                kept.push((i, b));
            } else {
                free(b);
            }
        }
        let sparse = usage();
        assert!(
            sparse.used >= 10_000 * 48 && sparse.used < 11_000 * 48,
            "{sparse:?}"
        );
        assert!(sparse.committed > 4_000_000, "{sparse:?}");

        let renewal = Renewal::begin();
        for (_, b) in &mut kept {
            let p = alloc(48);
            // SAFETY: distinct 48-byte blocks.
            unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), p.as_ptr(), 48) };
            free(*b);
            *b = p;
        }
        drop(renewal);
        let dense = usage();
        assert_eq!(dense.used, sparse.used);
        assert!(
            dense.committed < sparse.committed / 4,
            "{sparse:?} -> {dense:?}"
        );
        for (i, b) in kept {
            // SAFETY: live 48-byte blocks.
            let bytes = unsafe { std::slice::from_raw_parts(b.as_ptr(), 48) };
            assert!(bytes.iter().all(|&x| x == i as u8));
            free(b);
        }
    }

    #[test]
    fn blocks_cross_to_the_global_allocator_and_back() {
        let p = from_global(vec![1, 2, 3], 8);
        let v = to_global(p, 3, 8);
        assert_eq!(v, [1, 2, 3]);
        let p = from_global(Vec::new(), 8);
        assert_eq!(to_global(p, 0, 8), Vec::<u8>::new());
    }
}
