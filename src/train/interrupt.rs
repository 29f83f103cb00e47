//! Stopping a training run cleanly. The first SIGINT (Ctrl-C), SIGTERM or SIGHUP asks the loop
//! to checkpoint and stop at the end of the current step, after which the process exits with
//! 128 + the signal (130 for Ctrl-C), as shells expect; a second one exits at once, without a
//! checkpoint. On Windows only Ctrl-C is caught.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once, OnceLock};

/// Set by the first signal (or by a test).
fn flag() -> &'static Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// The signal that asked, 0 for none (or Windows' Ctrl-C, reported as SIGINT).
fn signal() -> &'static Arc<AtomicUsize> {
    static SIGNAL: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    SIGNAL.get_or_init(|| Arc::new(AtomicUsize::new(0)))
}

const SIGINT: usize = 2;

/// Installs the handlers (once per process).
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if let Err(e) = install_handlers() {
            eprintln!(
                "warning: signal handlers not installed ({e}); interrupting will not checkpoint"
            );
        }
    });
}

#[cfg(unix)]
fn install_handlers() -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::flag;
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        // Registration order is the order the actions run in: a second signal finds the flag
        // already set and exits before setting it again.
        flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(flag()))?;
        flag::register_usize(sig, Arc::clone(signal()), sig as usize)?;
        flag::register(sig, Arc::clone(flag()))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn install_handlers() -> std::io::Result<()> {
    ctrlc::set_handler(|| {
        if flag().swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        signal().store(SIGINT, Ordering::SeqCst);
    })
    .map_err(std::io::Error::other)
}

pub fn requested() -> bool {
    flag().load(Ordering::SeqCst)
}

/// The exit status a run stopped by a signal should end with (128 + the signal), if one was.
pub fn exit_status() -> Option<i32> {
    match signal().load(Ordering::SeqCst) {
        0 => requested().then_some(128 + SIGINT as i32),
        sig => Some(128 + sig as i32),
    }
}

/// Test aid: simulates (or clears) an interrupt.
pub fn set_requested(on: bool) {
    flag().store(on, Ordering::SeqCst);
    if !on {
        signal().store(0, Ordering::SeqCst);
    }
}
