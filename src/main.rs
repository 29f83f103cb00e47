//! `ganlab <verb>`: parses arguments, then calls the library.

mod cli;

/// `mi_option_purge_delay` in mimalloc v2's option enum (libmimalloc-sys does not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // Training frees and reallocates the same large activation buffers every step. Keeping
    // freed memory mapped (no purging) avoids a page fault per 4 KiB on every reuse: 5M faults
    // and ~20% of CPU time per DCGAN step on the CPU path without it (docs/PERF.md).
    // SAFETY: sets a plain integer option before any thread but this one exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    if let Err(e) = cli::run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
