//! The one call Marquee makes into mimalloc's own API. The service that allocates with
//! mimalloc (booking-core) calls it through `marquee_platform::memory`'s runtime.

/// Frees the calling thread's empty pages and has every arena's freed ranges given back to
/// the kernel now, rather than from inside later allocations. Harmless in a process whose
/// global allocator is not mimalloc (there is then nothing of it to collect).
#[allow(unsafe_code)]
pub fn collect() {
    // SAFETY: `mi_collect` takes no pointers and touches only the allocator's own state;
    // mimalloc allows it on any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
