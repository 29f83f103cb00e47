//! Ctrl-C during training: the first press asks the loop to checkpoint and stop cleanly at the
//! end of the current step; a second press exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler (once per process).
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let result = ctrlc::set_handler(|| {
            if REQUESTED.swap(true, Ordering::SeqCst) {
                eprintln!("\nsecond interrupt: exiting without a checkpoint");
                std::process::exit(130);
            }
            eprintln!(
                "\ninterrupt: saving a checkpoint after this step (press Ctrl-C again to quit now)"
            );
        });
        if let Err(e) = result {
            eprintln!(
                "warning: Ctrl-C handler not installed ({e}); interrupting will not checkpoint"
            );
        }
    });
}

pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Test aid: simulates (or clears) a Ctrl-C.
pub fn set_requested(on: bool) {
    REQUESTED.store(on, Ordering::SeqCst);
}
