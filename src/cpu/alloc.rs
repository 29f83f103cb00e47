//! Allocator tuning for binaries that use mimalloc as their global allocator (the `ganlab`
//! binary and the benches declare `#[global_allocator] static A: mimalloc::MiMalloc`).

/// `mi_option_purge_delay` in mimalloc v2's option enum (libmimalloc-sys does not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Training frees and reallocates the same large activation buffers every step. Keeping freed
/// memory mapped (no purging) avoids a page fault per 4 KiB on every reuse: on the CPU path
/// that was 5M faults and ~20% of the CPU time of a DCGAN step (docs/PERF.md). Call first
/// thing in `main`.
pub fn keep_freed_memory() {
    // SAFETY: sets a plain integer option; mimalloc reads options atomically.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}
