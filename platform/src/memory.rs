//! How a service's process takes memory from the kernel.

/// Turns transparent huge pages off for this process, first thing in `main`; true when the
/// kernel took the call.
///
/// The services allocate with mimalloc, which advises the kernel to back its arenas with huge
/// pages. The kernel's background collapser (`khugepaged`, with `max_ptes_none` at 511) then
/// fills a 2 MiB page around any one 4 KiB page in use, while mimalloc's purges split them
/// again: the soak saw the gateway's memory move by megabytes with nothing in flight, half of
/// it in huge pages. Without them a service's memory is what it uses. Best effort: a kernel
/// without THP refuses the call, and then there is nothing to turn off.
pub fn disable_transparent_huge_pages() -> bool {
    rustix::thread::disable_transparent_huge_pages(true).is_ok()
}
