//! The CPU kernels' threads: every parallel CPU op runs on the calling thread plus helper
//! threads that wait for the next op by spinning before they sleep, as OpenMP's threads do.
//!
//! A training step on the CPU is a chain of a few hundred ops of 0.05-1 ms each. Handing each
//! to rayon's pool from the (non-pool) training thread cost a sleep and a wake-up on both
//! sides per op, tens of microseconds each on a VM, and left the second core idle for a third
//! of an MLP-GAN step. Here the caller starts on its op at once, a helper that is spinning
//! joins within a microsecond, and work is shared out by claiming runs of chunks from a
//! counter, each a share of what is left: a helper that comes late (or not at all, when it is
//! busy elsewhere) just does fewer chunks.
//!
//! Which thread runs which chunk is left to timing, so every op keeps its result independent
//! of that: chunks write disjoint outputs, and reductions combine per-chunk partials in chunk
//! order.

use super::PAR_CHUNK;
use std::cell::Cell;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle helper spins for the next op before it sleeps, unless `GANLAB_CPU_SPIN_US`
/// says otherwise. Within a training step the gaps between ops are microseconds to a
/// millisecond; between steps the data is ready (it is drawn on its own thread), so helpers
/// sleep only when the CPU path is not in use.
const HELPER_SPIN: Duration = Duration::from_millis(2);

/// The helpers' spin: [`HELPER_SPIN`], or `GANLAB_CPU_SPIN_US` microseconds (0: sleep at once,
/// for a machine shared with other CPU-heavy work, at the cost of a wake-up per op).
fn helper_spin() -> Duration {
    static SPIN: OnceLock<Duration> = OnceLock::new();
    *SPIN.get_or_init(|| spin_setting(std::env::var("GANLAB_CPU_SPIN_US").ok().as_deref()))
}

/// Parses the spin setting; a value that is not a whole number of microseconds is reported
/// once and the default kept (the kernels must not fail over a tuning knob).
fn spin_setting(value: Option<&str>) -> Duration {
    match value.map(str::trim) {
        None | Some("") => HELPER_SPIN,
        Some(v) => v.parse().map(Duration::from_micros).unwrap_or_else(|_| {
            eprintln!(
                "GANLAB_CPU_SPIN_US={v:?} is not a whole number of microseconds; using {} us",
                HELPER_SPIN.as_micros()
            );
            HELPER_SPIN
        }),
    }
}

/// How long the caller spins for helpers to finish their last chunks before it sleeps.
const CALLER_SPIN: Duration = Duration::from_micros(200);

/// Threads a parallel CPU op may use, the caller included (rayon's setting, so that
/// `RAYON_NUM_THREADS` sets both); 1 inside a parallel op's chunk, where the other threads are
/// busy with that op's other chunks: a nested op then runs straight through, and a nested
/// GEMM is not cut into chunks that each pack their own copy of an operand.
pub fn threads() -> usize {
    if IN_JOB.get() {
        1
    } else {
        rayon::current_num_threads()
    }
}

/// Runs `chunk(t)` for every `t < chunks`, on the calling thread and up to `threads - 1`
/// helpers, and returns once all have run.
///
/// # Panics
/// If a chunk panics (after every claimed chunk has finished).
pub fn run_chunks(chunks: usize, threads: usize, chunk: &(dyn Fn(usize) + Sync)) {
    run(chunks, threads, &|claims: &mut Claims| {
        for t in claims {
            chunk(t);
        }
    });
}

/// `f(i, piece)` for consecutive pieces of `out` of `len` elements (the last may be shorter),
/// in parallel.
pub fn for_each_piece<T: Send>(out: &mut [T], len: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    for_each_piece_with(out, len, || (), |_, i, piece| f(i, piece));
}

/// [`for_each_piece`] with scratch state: each thread calls `init` once, before its first
/// piece, and passes the state to every piece it runs.
pub fn for_each_piece_with<T: Send, S>(
    out: &mut [T],
    len: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &mut [T]) + Sync,
) {
    let len = len.max(1);
    let total = out.len();
    let pieces = total.div_ceil(len);
    let base = SyncPtr(out.as_mut_ptr());
    run(pieces, threads(), &|claims: &mut Claims| {
        let mut state = None;
        for t in claims {
            let state = state.get_or_insert_with(&init);
            let start = t * len;
            // SAFETY: piece t covers elements start..start + n of `out`, which no other piece
            // touches, and `run` returns only after every piece has finished with it.
            let piece = unsafe {
                std::slice::from_raw_parts_mut(base.get().add(start), len.min(total - start))
            };
            f(state, t, piece);
        }
    });
}

/// `f(r, row)` for the consecutive rows of `row_len` elements of `out`, in parallel, in
/// pieces of `rows_per_piece` rows (see [`rows_per_piece`]).
pub fn for_each_row<T: Send>(
    out: &mut [T],
    row_len: usize,
    rows_per_piece: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let (row_len, rows) = (row_len.max(1), rows_per_piece.max(1));
    for_each_piece(out, row_len * rows, |p, piece| {
        piece_rows(piece, p * rows, row_len, &f)
    });
}

/// `f(r, row)` for the rows of `row_len` elements of a piece whose first row is `first`.
fn piece_rows<T>(piece: &mut [T], first: usize, row_len: usize, f: &impl Fn(usize, &mut [T])) {
    for (j, row) in piece.chunks_mut(row_len).enumerate() {
        f(first + j, row);
    }
}

/// Rows per piece for rows that cost `row_work` elements of work each: a piece is about
/// [`PAR_CHUNK`] elements, enough to be worth handing out, small enough to share out.
pub fn rows_per_piece(row_work: usize) -> usize {
    (PAR_CHUNK / row_work.max(1)).max(1)
}

/// `f(i)` for every `i < n`, in parallel in pieces of `per_piece` indices, collected in order.
pub fn map_range<R: Send>(n: usize, per_piece: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    // SAFETY: every slot of a piece is written.
    unsafe {
        collect_pieces(n, per_piece, |start, piece| {
            for (i, slot) in piece.iter_mut().enumerate() {
                slot.write(f(start + i));
            }
        })
    }
}

/// `f(x)` for every element, into a new vector, in pieces of `len` elements.
pub fn map<T: Copy + Sync, R: Send>(x: &[T], len: usize, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    // SAFETY: a piece is zipped with the rest of `x`, which is at least as long.
    unsafe {
        collect_pieces(x.len(), len, |start, piece| {
            for (o, &v) in piece.iter_mut().zip(&x[start..]) {
                o.write(f(v));
            }
        })
    }
}

/// `f(a, b)` for every pair of elements of two slices of one length, into a new vector, in
/// pieces of `len` elements.
pub fn zip_map<A: Copy + Sync, B: Copy + Sync, R: Send>(
    a: &[A],
    b: &[B],
    len: usize,
    f: impl Fn(A, B) -> R + Sync,
) -> Vec<R> {
    assert_eq!(a.len(), b.len(), "zip_map of slices of different lengths");
    // SAFETY: a piece is zipped with the rests of `a` and `b`, which are at least as long.
    unsafe {
        collect_pieces(a.len(), len, |start, piece| {
            for ((o, &x), &y) in piece.iter_mut().zip(&a[start..]).zip(&b[start..]) {
                o.write(f(x, y));
            }
        })
    }
}

/// A vector of `n` elements written in parallel, `write(start, piece)` for the pieces of `len`
/// elements (`start` is the piece's first index).
///
/// # Safety
/// `write` must write every element of its piece: the vector's length is set to `n` after.
unsafe fn collect_pieces<R: Send>(
    n: usize,
    len: usize,
    write: impl Fn(usize, &mut [MaybeUninit<R>]) + Sync,
) -> Vec<R> {
    let len = len.max(1);
    // SAFETY: passed on to the caller.
    unsafe { build_uninit_with(n, len, || (), |_, i, piece| write(i * len, piece)) }
}

/// A new vector of `n` elements, zeroed (`T::default()`) and then handed to `f(state, i,
/// piece)` in consecutive pieces of `len` elements, in parallel, as [`for_each_piece_with`]
/// does with an existing one.
///
/// Each piece is zeroed by the thread that fills it, just before, so the zeros are written in
/// parallel and in cache. `vec![0.0; n]` on the calling thread is a separate pass over memory
/// on one core while the helpers wait: 0.9 ms for a 16 MB activation here, 5% of a DCGAN step
/// on the CPU, and most of a thin layer's time.
pub fn build_with<T: Send + Copy + Default, S>(
    n: usize,
    len: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &mut [T]) + Sync,
) -> Vec<T> {
    // SAFETY: every element of a piece is written before `f` sees it.
    unsafe {
        build_uninit_with(n, len, init, |state, i, piece| {
            f(state, i, zero_init(piece))
        })
    }
}

/// `piece` zeroed (`T::default()`), as an initialised slice.
pub fn zero_init<T: Copy + Default>(piece: &mut [MaybeUninit<T>]) -> &mut [T] {
    for slot in piece.iter_mut() {
        slot.write(T::default());
    }
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, and every element was just written.
    unsafe { &mut *(piece as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// [`build_with`] without the zeros, for a kernel that writes every element of its pieces: a
/// thin layer's output is written in about 60% of the time a zeroed one takes.
///
/// # Safety
/// `f` must write every element of its piece: the vector's length is set to `n` after.
pub unsafe fn build_uninit_with<T: Send, S>(
    n: usize,
    len: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &mut [MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(n);
    for_each_piece_with(&mut out.spare_capacity_mut()[..n], len, init, f);
    // SAFETY: every piece was written whole, as the caller promised (a panic propagates
    // before this point, leaking what was written rather than exposing what was not).
    unsafe { out.set_len(n) };
    out
}

/// [`build_with`] without scratch state.
pub fn build<T: Send + Copy + Default>(
    n: usize,
    len: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) -> Vec<T> {
    build_with(n, len, || (), |_, i, piece| f(i, piece))
}

/// A new vector of `n` zeros, written in parallel: for an output that several passes fill.
pub fn zeroed<T: Send + Copy + Default>(n: usize) -> Vec<T> {
    build(n, PAR_CHUNK, |_, _| {})
}

/// A new zeroed vector of `n` elements filled row by row in parallel, as [`for_each_row`]
/// fills an existing one (and zeroed as [`build_with`] does).
pub fn build_rows<T: Send + Copy + Default>(
    n: usize,
    row_len: usize,
    rows_per_piece: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) -> Vec<T> {
    let (row_len, rows) = (row_len.max(1), rows_per_piece.max(1));
    build(n, row_len * rows, |p, piece| {
        piece_rows(piece, p * rows, row_len, &f)
    })
}

/// A `*mut T` that may be shared between the threads writing disjoint parts of one slice.
pub(crate) struct SyncPtr<T>(pub(crate) *mut T);

// By hand: derived impls would ask for `T: Copy`.
impl<T> Clone for SyncPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SyncPtr<T> {}

impl<T> SyncPtr<T> {
    /// The pointer (a method, so that closures capture the whole `SyncPtr`, which is `Sync`).
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

// SAFETY: only used to write disjoint parts of one `&mut [T]` from the threads of one `run`
// call, which returns only after all of them are done with it.
unsafe impl<T: Send> Send for SyncPtr<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SyncPtr<T> {}

/// The chunks one thread claims in one parallel op (see `run`), in the order it claims them:
/// runs of consecutive chunks, a share of what is left at each claim ([`Job::claim`]). They
/// count as finished together, when this is dropped (the body has returned, or its panic is
/// unwinding): one update of the shared count per thread, not one per chunk.
///
/// A body takes every chunk it is given (`for t in claims`): those it left would count as
/// finished.
struct Claims<'a> {
    job: &'a Job,
    /// The claimed chunks not yet passed to the body.
    run: Range<usize>,
    /// Chunks claimed here.
    claimed: usize,
    /// Whether the body returned (else its panic is unwinding). Not `thread::panicking`: an
    /// op run by a destructor while another panic unwinds must still finish normally.
    returned: bool,
}

impl Iterator for Claims<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.run.is_empty() {
            self.run = self.job.claim(self.job.total - self.run.end);
            self.claimed += self.run.len();
        }
        self.run.next()
    }
}

impl Drop for Claims<'_> {
    fn drop(&mut self) {
        if self.returned {
            debug_assert!(self.run.is_empty(), "a body left claimed chunks");
            self.job.finish(self.claimed);
        } else {
            self.job.stop_after_panic(self.claimed);
        }
    }
}

/// Runs `body` on the calling thread and on up to `threads - 1` helpers; each passes the chunks
/// of `0..chunks` it claims. Returns once every chunk has finished.
///
/// # Panics
/// If a chunk panics (after every claimed chunk has finished).
fn run(chunks: usize, threads: usize, body: &(dyn Fn(&mut Claims) + Sync)) {
    // SAFETY: only the lifetime changes, so that helpers may hold the job after this call; it
    // is kept as a raw pointer, dereferenced only by a thread holding a claimed chunk. See
    // `Job::work`.
    let body: *const (dyn Fn(&mut Claims) + Sync) = unsafe {
        std::mem::transmute::<&(dyn Fn(&mut Claims) + Sync), &'static (dyn Fn(&mut Claims) + Sync)>(
            body,
        )
    };
    let seats = threads.min(chunks).saturating_sub(1);
    let job = Arc::new(Job {
        next: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        total: chunks,
        threads: seats + 1,
        seats: AtomicUsize::new(seats),
        panicked: AtomicBool::new(false),
        body,
        caller: std::thread::current(),
    });
    // Inside another op's chunk, nested parallelism would only queue behind that op.
    if seats > 0 && !IN_JOB.get() {
        helpers().publish(&job);
    }
    {
        // Waits for every claimed chunk when dropped: on return, and on unwinding from a panic
        // in this thread's chunks (helpers may still be running others).
        let mut wait = WaitForChunks {
            job: &job,
            returned: false,
        };
        let _in_job = InJob::enter();
        job.work();
        wait.returned = true;
    }
    assert!(
        !job.panicked.load(Ordering::Relaxed),
        "a parallel CPU op panicked on a helper thread"
    );
}

thread_local! {
    /// Set while this thread runs a parallel op's chunks (always, on helper threads).
    static IN_JOB: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as inside a parallel op until dropped (also on unwinding).
struct InJob(bool);

impl InJob {
    fn enter() -> InJob {
        InJob(IN_JOB.replace(true))
    }
}

impl Drop for InJob {
    fn drop(&mut self) {
        IN_JOB.set(self.0);
    }
}

/// One parallel op: its chunks and the threads' shared count of them.
struct Job {
    /// The next chunk to claim; `>= total` once all are claimed (or claiming was stopped).
    next: AtomicUsize,
    /// Chunks finished, or given up on after a panic.
    finished: AtomicUsize,
    total: usize,
    /// Threads that may run the chunks, the caller included.
    threads: usize,
    /// Helpers that may still join.
    seats: AtomicUsize,
    panicked: AtomicBool,
    /// Each thread's work, borrowed from the `run` frame: see `work`.
    body: *const (dyn Fn(&mut Claims) + Sync),
    /// The thread that waits for the chunks, to wake it when the last one finishes.
    caller: std::thread::Thread,
}

// SAFETY: `body` points to a `Sync` function, called from several threads only while it is
// alive (see `Job::work`); everything else is atomics and a thread handle.
unsafe impl Send for Job {}
// SAFETY: as above.
unsafe impl Sync for Job {}

impl Job {
    /// Runs the body on this thread if a chunk is left to claim.
    ///
    /// The first chunks are claimed before the body is called, and `run` does not return
    /// before every claimed chunk has finished, so the body is alive whenever it is called: a
    /// thread that comes late finds nothing to claim and never touches it.
    fn work(&self) {
        // A helper that comes late sizes its first claim by what is left, not by the whole.
        let left = self.total.saturating_sub(self.next.load(Ordering::Relaxed));
        let run = self.claim(left);
        if run.is_empty() {
            return;
        }
        let mut claims = Claims {
            job: self,
            claimed: run.len(),
            run,
            returned: false,
        };
        // SAFETY: chunks are claimed here and not finished, so `run` is still waiting.
        unsafe { (*self.body)(&mut claims) };
        claims.returned = true;
    }

    /// Claims the next chunks (none once all are claimed), with at most `left` unclaimed: a
    /// `1 / (2 threads)` share of them, as OpenMP's guided schedule, so that there are few
    /// claims while much is left and single chunks at the end, for the threads to finish
    /// together. Every claim moves the counter's cache line to the claiming core: claimed one
    /// by one, D conv1's forward pass (64 chunks of 1.5 us) spent a tenth of its time there.
    fn claim(&self, left: usize) -> Range<usize> {
        let n = match self.threads {
            1 => left.max(1),
            threads => (left / (2 * threads)).max(1),
        };
        let t = self.next.fetch_add(n, Ordering::Relaxed).min(self.total);
        t..(t + n).min(self.total)
    }

    /// Records `count` more finished chunks, waking the caller after the last.
    fn finish(&self, count: usize) {
        if self.finished.fetch_add(count, Ordering::Release) + count == self.total {
            self.caller.unpark();
        }
    }

    /// After a panic: stops further claims, and counts the `claimed_here` chunks (run,
    /// panicked or given up) and every chunk that will now never be claimed as finished.
    fn stop_after_panic(&self, claimed_here: usize) {
        self.panicked.store(true, Ordering::Relaxed);
        let claimed = self
            .next
            .swap(self.total, Ordering::Relaxed)
            .min(self.total);
        self.finish(claimed_here + self.total - claimed);
    }

    fn take_seat(&self) -> bool {
        self.seats
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| s.checked_sub(1))
            .is_ok()
    }

    fn done(&self) -> bool {
        self.finished.load(Ordering::Acquire) >= self.total
    }
}

/// Blocks, when dropped, until every chunk of the job has finished.
struct WaitForChunks<'a> {
    job: &'a Job,
    /// Whether the caller's own chunks returned (see [`Claims`]).
    returned: bool,
}

impl Drop for WaitForChunks<'_> {
    fn drop(&mut self) {
        let job = self.job;
        if !self.returned {
            // The caller's body failed: nobody should start what is left.
            job.stop_after_panic(0);
        }
        // Spin first: the last chunks are usually moments from done, and a parked thread takes
        // as long to wake as a small op takes to compute.
        let start = Instant::now();
        while !job.done() && start.elapsed() < CALLER_SPIN {
            for _ in 0..64 {
                std::hint::spin_loop();
            }
        }
        while !job.done() {
            // `finish` unparks us after the last chunk; the timeout is only a backstop.
            std::thread::park_timeout(Duration::from_millis(1));
        }
    }
}

/// The helper threads (`threads() - 1` of them, started at the first parallel op) and the op
/// they are called to.
struct Helpers {
    /// Bumped for every op published.
    epoch: AtomicU64,
    /// The op most recently published.
    job: Mutex<Option<Arc<Job>>>,
    /// Helpers asleep (or about to sleep) on `wake`.
    sleepers: AtomicUsize,
    sleep: Mutex<()>,
    wake: Condvar,
}

fn helpers() -> &'static Helpers {
    static HELPERS: OnceLock<Helpers> = OnceLock::new();
    static SPAWN: std::sync::Once = std::sync::Once::new();
    let h = HELPERS.get_or_init(|| Helpers {
        epoch: AtomicU64::new(0),
        job: Mutex::new(None),
        sleepers: AtomicUsize::new(0),
        sleep: Mutex::new(()),
        wake: Condvar::new(),
    });
    SPAWN.call_once(|| {
        for i in 0..threads().saturating_sub(1) {
            // Without a helper the caller runs every chunk itself, so a failed spawn (a
            // thread limit) only costs speed.
            let _ = std::thread::Builder::new()
                .name(format!("ganlab-cpu-{i}"))
                .spawn(move || h.serve());
        }
    });
    h
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded values stay consistent whatever panicked while holding them.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Helpers {
    fn publish(&self, job: &Arc<Job>) {
        *lock(&self.job) = Some(Arc::clone(job));
        self.epoch.fetch_add(1, Ordering::SeqCst);
        // SeqCst pairs with `wait_for_news`: either a helper counted itself as a sleeper before
        // this load (and is woken under the lock), or it sees the new epoch before it sleeps.
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = lock(&self.sleep);
            self.wake.notify_all();
        }
    }

    /// A helper's life: wait for an op, help with it, repeat.
    fn serve(&self) {
        IN_JOB.set(true);
        let mut seen = self.epoch.load(Ordering::SeqCst);
        loop {
            seen = self.wait_for_news(seen);
            let job = lock(&self.job).clone();
            if let Some(job) = job.filter(|j| j.take_seat()) {
                if catch_unwind(AssertUnwindSafe(|| job.work())).is_err() {
                    // Recorded for the caller, which re-raises it.
                    job.stop_after_panic(0);
                }
            }
        }
    }

    /// Spins until the epoch moves past `seen`, then sleeps until it does; returns the new one.
    fn wait_for_news(&self, seen: u64) -> u64 {
        let (start, spin) = (Instant::now(), helper_spin());
        while start.elapsed() < spin {
            for _ in 0..64 {
                let epoch = self.epoch.load(Ordering::Acquire);
                if epoch != seen {
                    return epoch;
                }
                std::hint::spin_loop();
            }
        }
        let mut guard = lock(&self.sleep);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        loop {
            let epoch = self.epoch.load(Ordering::SeqCst);
            if epoch != seen {
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                return epoch;
            }
            guard = self
                .wake
                .wait(guard)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_chunks_runs_every_chunk_once() {
        for (chunks, threads) in [(0, 2), (1, 2), (2, 2), (7, 2), (100, 3), (5, 1)] {
            let counts: Vec<AtomicUsize> = (0..chunks).map(|_| AtomicUsize::new(0)).collect();
            run_chunks(chunks, threads, &|t| {
                counts[t].fetch_add(1, Ordering::Relaxed);
            });
            assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn run_chunks_propagates_a_panic_after_the_other_chunks() {
        let ran = AtomicUsize::new(0);
        let result = catch_unwind(|| {
            run_chunks(64, 2, &|t| {
                if t == 3 {
                    panic!("chunk 3 fails");
                }
                std::thread::sleep(Duration::from_micros(200));
                ran.fetch_add(1, Ordering::Relaxed);
            });
        });
        assert!(result.is_err());
        // Nothing runs after `run_chunks` has returned. (Claiming stops once the panic
        // unwinds and the other thread has finished the run it claimed, but the panic hook
        // may print for a while before that, so how many ran is not bounded here.)
        let after = ran.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(ran.load(Ordering::Relaxed), after);
    }

    #[test]
    fn an_op_run_while_another_panic_unwinds_runs_every_chunk() {
        // A destructor may run a parallel op while an unrelated panic unwinds: the op must run
        // its chunks and return, not take that panic for its own (which aborted the process).
        struct OpOnDrop<'a>(&'a AtomicUsize);
        impl Drop for OpOnDrop<'_> {
            fn drop(&mut self) {
                run_chunks(64, 2, &|_| {
                    self.0.fetch_add(1, Ordering::Relaxed);
                });
            }
        }
        let ran = AtomicUsize::new(0);
        let result = catch_unwind(AssertUnwindSafe(|| {
            let _op = OpOnDrop(&ran);
            panic!("unrelated");
        }));
        assert!(result.is_err());
        assert_eq!(ran.load(Ordering::Relaxed), 64);
    }

    #[test]
    fn a_panic_before_the_first_chunk_is_raised_not_waited_for() {
        // Each thread's state is built before its first chunk; a failure there must neither
        // hang `run` nor be lost.
        let mut out = vec![0u32; 1000];
        let result = catch_unwind(AssertUnwindSafe(|| {
            for_each_piece_with(
                &mut out,
                10,
                || panic!("no scratch"),
                |_: &mut (), _, _| unreachable!(),
            )
        }));
        assert!(result.is_err());
    }

    #[test]
    fn pieces_cover_the_slice_once_and_state_is_per_thread() {
        for (n, len) in [(0, 4), (1, 4), (10, 3), (1000, 7), (100_000, 4096)] {
            let mut out = vec![0usize; n];
            let inits = AtomicUsize::new(0);
            for_each_piece_with(
                &mut out,
                len,
                || inits.fetch_add(1, Ordering::Relaxed),
                |_, i, piece| {
                    for (j, v) in piece.iter_mut().enumerate() {
                        *v += i * len + j + 1;
                    }
                },
            );
            assert!(out.iter().enumerate().all(|(i, &v)| v == i + 1), "n {n}");
            assert!(inits.load(Ordering::Relaxed) <= threads().max(1));
        }
    }

    #[test]
    fn built_vectors_start_zeroed_and_keep_piece_and_row_order() {
        for (n, len) in [(0, 4), (1, 4), (10, 3), (1000, 7), (100_000, 4096)] {
            // Freed memory full of sevens, for the allocator to hand back unzeroed.
            drop(vec![7usize; n]);
            let got = build(n, len, |i, piece: &mut [usize]| {
                for (j, v) in piece.iter_mut().enumerate() {
                    *v += i * len + j + 1;
                }
            });
            assert!(got.iter().enumerate().all(|(i, &v)| v == i + 1), "n {n}");
            let rows = build_rows(n, 5, 3, |r, row: &mut [usize]| {
                row.iter_mut().for_each(|v| *v += r)
            });
            assert!(rows.iter().enumerate().all(|(i, &v)| v == i / 5), "n {n}");
            assert!(zeroed::<f64>(n).iter().all(|&v| v == 0.0));
        }
    }

    #[test]
    fn map_and_map_range_keep_order() {
        let x: Vec<f32> = (0..100_003).map(|i| i as f32).collect();
        assert_eq!(
            map(&x, 1000, |v| v * 2.0),
            x.iter().map(|v| v * 2.0).collect::<Vec<_>>()
        );
        assert_eq!(
            map_range(37, 5, |i| i * i),
            (0..37).map(|i| i * i).collect::<Vec<_>>()
        );
        assert!(map(&[] as &[f32], 8, |v| v).is_empty());
    }

    #[test]
    fn concurrent_callers_each_get_all_their_chunks() {
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let sum = AtomicUsize::new(0);
                        run_chunks(16, 2, &|t| {
                            sum.fetch_add(t, Ordering::Relaxed);
                        });
                        assert_eq!(sum.load(Ordering::Relaxed), 120);
                    }
                });
            }
        });
    }

    #[test]
    fn locals_outlive_every_piece() {
        // A piece that ran after `run` returned would read freed locals or leave zeros (a
        // failed claim once counted as a finished chunk).
        for round in 0..20_000 {
            let table: Vec<usize> = (0..64).map(|i| i + round).collect();
            let mut out = vec![0usize; 4096];
            for_each_row(&mut out, 64, 8, |r, row| {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = table[j] + r;
                }
            });
            assert!(out
                .chunks(64)
                .enumerate()
                .all(|(r, row)| row.iter().enumerate().all(|(j, &v)| v == j + round + r)));
        }
    }

    #[test]
    fn a_parallel_op_inside_a_chunk_runs_on_its_thread() {
        let outer = threads();
        let nested = AtomicUsize::new(0);
        run_chunks(8, 2, &|_| {
            assert_eq!(threads(), 1, "nested ops see one thread");
            let sum = AtomicUsize::new(0);
            run_chunks(4, 2, &|t| {
                sum.fetch_add(t, Ordering::Relaxed);
            });
            nested.fetch_add(sum.load(Ordering::Relaxed), Ordering::Relaxed);
        });
        assert_eq!(nested.load(Ordering::Relaxed), 8 * 6);
        assert_eq!(threads(), outer, "restored after the op");
    }

    #[test]
    fn the_spin_setting_takes_microseconds_and_keeps_the_default_on_nonsense() {
        assert_eq!(spin_setting(None), HELPER_SPIN);
        assert_eq!(spin_setting(Some(" ")), HELPER_SPIN);
        assert_eq!(spin_setting(Some("0")), Duration::ZERO);
        assert_eq!(spin_setting(Some("150")), Duration::from_micros(150));
        assert_eq!(spin_setting(Some("1.5ms")), HELPER_SPIN);
        assert_eq!(spin_setting(Some("-3")), HELPER_SPIN);
    }
}
