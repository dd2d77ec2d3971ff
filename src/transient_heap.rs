//! The server's global allocator: mimalloc, with a heap of its own for blocks that one thread
//! makes in a burst and another frees soon after (a new series' labels: built by the router,
//! freed by the shard once interned). It owns the choice of heap for an allocation, and never
//! decides what is short-lived: callers say so with `transient`.
//!
//! Why: the first scrape round of 1 M series builds ~15 blocks a new series (the label set's
//! slice, its names and values) on the router thread, in the same size classes as blocks that
//! live on (a target's label builder, the shards' interned strings), and mimalloc hands all of
//! a size class the same pages. Once the shards free the burst, its pages stay resident for
//! the few long-lived blocks among them: 15–67 MB of pages holding almost no live block at 1 M
//! series, 120 s in (BENCHMARKS.md, "Open chunks in a heap of their own" and `burst7`).
//! `mi_collect(true)` on every executor thread gave back < 1 MB of it, so the pages are
//! pinned, not uncollected. A heap of its own holds only the burst, so once freed its pages
//! are empty and go back to the arena. A block of any heap may be freed (`mi_free`) from any
//! thread, so only allocation looks at the scope; free and realloc are plain mimalloc.
//!
//! Outside a `transient` scope an allocation costs one thread-local flag test more than
//! mimalloc's own. When the process runs on another allocator (unit tests), `transient` only
//! sets a flag nobody reads.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

/// mimalloc's `mi_heap_t`, only ever behind a pointer.
#[repr(C)]
struct MiHeap {
    _private: [u8; 0],
}

/// mimalloc's `mi_theap_t` (a heap's part owned by one thread), only ever behind a pointer.
#[repr(C)]
struct MiTheap {
    _private: [u8; 0],
}

// The first-class heap API and the plain entry points of the mimalloc (v3) that
// `libmimalloc-sys` builds and links, as `shards::chunkenc::chunk_heap` declares them.
extern "C" {
    fn mi_heap_new() -> *mut MiHeap;
    fn mi_heap_theap(heap: *mut MiHeap) -> *mut MiTheap;
    fn mi_theap_malloc(theap: *mut MiTheap, size: usize) -> *mut c_void;
    fn mi_malloc(size: usize) -> *mut c_void;
    fn mi_zalloc(size: usize) -> *mut c_void;
    fn mi_realloc(p: *mut c_void, newsize: usize) -> *mut c_void;
    fn mi_theap_malloc_aligned(theap: *mut MiTheap, size: usize, alignment: usize) -> *mut c_void;
}

/// The process's heap for transient bursts, made on first use.
static TRANSIENT_HEAP: AtomicPtr<MiHeap> = AtomicPtr::new(ptr::null_mut());

thread_local! {
    /// Set while the thread runs inside `transient`.
    static IN_SCOPE: Cell<bool> = const { Cell::new(false) };
    /// This thread's part of the transient heap, looked up once.
    static THEAP: Cell<*mut MiTheap> = const { Cell::new(ptr::null_mut()) };
}

/// Runs `f` with the thread's allocations made in the transient heap (when the process runs
/// on `ServerAllocator`). Only for blocks that are all freed soon: one that lives on keeps
/// its 64 KiB page of the heap resident, which is what the heap exists to avoid.
pub fn transient<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the thread's previous scope, also when `f` panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            IN_SCOPE.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(IN_SCOPE.with(|s| s.replace(true)));
    f()
}

/// This thread's part of the transient heap; null if mimalloc could not make the heap.
fn transient_theap() -> *mut MiTheap {
    THEAP.with(|t| {
        let mut theap = t.get();
        if theap.is_null() {
            let mut heap = TRANSIENT_HEAP.load(Ordering::Acquire);
            if heap.is_null() {
                // SAFETY: makes a heap; mimalloc allocates its metadata itself, not through
                // the global allocator, so this does not recurse.
                let made = unsafe { mi_heap_new() };
                heap = match TRANSIENT_HEAP.compare_exchange(
                    ptr::null_mut(),
                    made,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => made,
                    // Another thread made one first: ours stays empty and unused (a heap's
                    // metadata, once per process at most per racing thread).
                    Err(theirs) => theirs,
                };
            }
            if heap.is_null() {
                return heap.cast();
            }
            // SAFETY: a heap from `mi_heap_new`, never deleted; the theap is this thread's.
            theap = unsafe { mi_heap_theap(heap) };
            t.set(theap);
        }
        theap
    })
}

/// mimalloc, allocating in the transient heap inside `transient`.
pub struct ServerAllocator;

impl ServerAllocator {
    #[inline]
    fn scoped() -> bool {
        IN_SCOPE.with(Cell::get)
    }

    #[cold]
    unsafe fn alloc_transient(layout: Layout) -> *mut u8 {
        let theap = transient_theap();
        if theap.is_null() {
            return mimalloc::MiMalloc.alloc(layout);
        }
        if plain_alignment(layout.size(), layout.align()) {
            return mi_theap_malloc(theap, layout.size()).cast();
        }
        mi_theap_malloc_aligned(theap, layout.size(), layout.align()).cast()
    }
}

/// The alignment every mimalloc block has anyway (`MI_MAX_ALIGN_SIZE` on 64-bit targets).
const MI_MAX_ALIGN_SIZE: usize = 16;

/// Whether mimalloc's plain entry points give `layout` its alignment: a block of 16 bytes or
/// more is 16-aligned, a smaller one 8-aligned. The aligned entry points (which the
/// `mimalloc` crate always calls) fall back to over-allocating by `align - 1` whenever the
/// size class's current page has no suitably aligned free block, and always above 1 KiB, so
/// a size that is a class's exact top lands in the next class: a `Vec` doubled to 32 KiB
/// took 40 KiB, the head's 256 KiB pages of series 320 KiB, ~28 MB at 1 M series in all.
#[inline]
fn plain_alignment(size: usize, align: usize) -> bool {
    align <= 8 || (align <= MI_MAX_ALIGN_SIZE && size >= MI_MAX_ALIGN_SIZE)
}

// SAFETY: every block comes from mimalloc (either heap), which `mi_free`/`mi_realloc` accept
// whichever heap and thread made it; layouts that need more alignment than a plain block
// has go through mimalloc's aligned entry points.
unsafe impl GlobalAlloc for ServerAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Self::scoped() {
            return Self::alloc_transient(layout);
        }
        if plain_alignment(layout.size(), layout.align()) {
            return mi_malloc(layout.size()).cast();
        }
        mimalloc::MiMalloc.alloc(layout)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if Self::scoped() {
            let p = Self::alloc_transient(layout);
            if !p.is_null() {
                ptr::write_bytes(p, 0, layout.size());
            }
            return p;
        }
        if plain_alignment(layout.size(), layout.align()) {
            return mi_zalloc(layout.size()).cast();
        }
        mimalloc::MiMalloc.alloc_zeroed(layout)
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        mimalloc::MiMalloc.dealloc(p, layout)
    }

    /// In place or in the block's own heap, as mimalloc does; a block growing inside a scope
    /// is not transient by nature (the scope is for blocks made and freed whole).
    #[inline]
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if plain_alignment(new_size, layout.align()) {
            return mi_realloc(p.cast(), new_size).cast();
        }
        mimalloc::MiMalloc.realloc(p, layout, new_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" {
        fn mi_heap_contains(heap: *const MiHeap, p: *const c_void) -> bool;
        fn mi_free(p: *mut c_void);
    }

    fn in_transient_heap(p: *mut u8) -> bool {
        let heap = TRANSIENT_HEAP.load(Ordering::Acquire);
        // SAFETY: a live heap (never deleted) and a live block.
        !heap.is_null() && unsafe { mi_heap_contains(heap, p.cast()) }
    }

    #[test]
    fn only_allocations_inside_a_scope_go_to_the_transient_heap() {
        let a = ServerAllocator;
        let small = Layout::from_size_align(24, 8).unwrap();
        let aligned = Layout::from_size_align(100, 64).unwrap();
        // SAFETY: blocks allocated and freed with the allocator under test.
        unsafe {
            let inside = transient(|| [a.alloc(small), a.alloc_zeroed(aligned)]);
            let outside = a.alloc(small);
            assert!(inside.iter().all(|&p| in_transient_heap(p)));
            assert_eq!(inside[1] as usize % 64, 0);
            assert!(std::slice::from_raw_parts(inside[1], 100)
                .iter()
                .all(|&b| b == 0));
            assert!(!in_transient_heap(outside));
            a.dealloc(outside, small);
            // Freed from another thread, as the shards free the router's labels.
            let addrs = inside.map(|p| p as usize);
            std::thread::spawn(move || {
                let a = ServerAllocator;
                a.dealloc(addrs[0] as *mut u8, small);
                a.dealloc(addrs[1] as *mut u8, aligned);
            })
            .join()
            .unwrap();
        }
    }

    #[test]
    fn transient_blocks_take_their_size_class_and_no_more() {
        extern "C" {
            fn mi_usable_size(p: *const c_void) -> usize;
        }
        let a = ServerAllocator;
        // Sizes that are a class's exact top, which the aligned entry point rounds past.
        for size in [48usize, 384, 32 << 10] {
            let layout = Layout::from_size_align(size, 8).unwrap();
            // SAFETY: blocks of the allocator under test, freed with their layout.
            unsafe {
                let p = transient(|| a.alloc(layout));
                let q = a.alloc(layout);
                assert!(in_transient_heap(p) && !in_transient_heap(q));
                // (Debug builds of mimalloc pad every block: compared, not absolute.)
                assert_eq!(
                    mi_usable_size(p.cast()),
                    mi_usable_size(q.cast()),
                    "{size}-byte block"
                );
                a.dealloc(p, layout);
                a.dealloc(q, layout);
            }
        }
    }

    #[test]
    fn word_aligned_blocks_take_their_size_class_and_no_more() {
        extern "C" {
            fn mi_usable_size(p: *const c_void) -> usize;
        }
        let a = ServerAllocator;
        for size in [32usize << 10, 256 << 10, 2 << 20] {
            for align in [4usize, 8, 16] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: blocks of the allocator under test and of mimalloc, freed by them.
                unsafe {
                    let plain = mi_malloc(size);
                    let p = a.alloc(layout);
                    let z = a.alloc_zeroed(layout);
                    let grown = a.realloc(
                        a.alloc(Layout::from_size_align(64, align).unwrap()),
                        Layout::from_size_align(64, align).unwrap(),
                        size,
                    );
                    for q in [p, z, grown] {
                        assert_eq!(q as usize % align, 0);
                        assert_eq!(
                            mi_usable_size(q.cast()),
                            mi_usable_size(plain),
                            "{size} bytes aligned to {align}"
                        );
                        a.dealloc(q, layout);
                    }
                    mi_free(plain);
                }
            }
        }
    }

    #[test]
    fn a_scope_ends_with_its_closure_even_when_it_panics() {
        let a = ServerAllocator;
        let small = Layout::from_size_align(16, 8).unwrap();
        let nested = transient(|| {
            transient(|| ());
            ServerAllocator::scoped()
        });
        assert!(nested, "an inner scope ended the outer one");
        let caught = std::panic::catch_unwind(|| transient(|| panic!("inside")));
        assert!(caught.is_err());
        assert!(!ServerAllocator::scoped());
        // SAFETY: a block of the allocator under test, freed by mimalloc.
        unsafe {
            let p = a.alloc(small);
            assert!(!in_transient_heap(p));
            mi_free(p.cast());
        }
    }
}
