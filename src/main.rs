//! `ganlab <verb>`: parses arguments, then calls the library.

mod cli;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    ganlab::cpu::alloc::keep_freed_memory();
    if let Err(e) = cli::run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    // A run stopped by a signal saved its checkpoint; it still did not finish.
    if let Some(status) = ganlab::train::interrupt::exit_status() {
        std::process::exit(status);
    }
}
