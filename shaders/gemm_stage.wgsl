// A GEMM core's staging of its panels (pasted in after the core, which defines BM, BN and
// BK): per step of BK along K, the 256 threads load the next A panel (BM x BK) and B panel
// (BK x BN) into registers, neighbouring threads at neighbouring addresses, and the core's
// `commit` stores them into shared memory in its own layout. The core calls
// `prepare_columns` once before the first `stage`.

// The next panel's elements, staged in registers: their global loads are issued before the
// current panel's FMAs, so their latency hides behind them (double buffering through
// registers; shared memory holds one panel).
const A_PER_THREAD: u32 = BM * BK / 256u;
const B_PER_THREAD: u32 = BN * BK / 256u;
var<private> next_a: array<f32, A_PER_THREAD>;
var<private> next_b: array<f32, B_PER_THREAD>;

// Where element j of thread t's share of a panel sits: (row or column, k) in A and B.
fn a_slot(t: u32, j: u32) -> vec2<u32> {
    let e = t + j * 256u;
    if (a_k_fast()) { return vec2<u32>(e / BK, e % BK); }
    return vec2<u32>(e % BM, e / BM);
}

fn b_slot(t: u32, j: u32) -> vec2<u32> {
    let e = t + j * 256u;
    if (b_n_fast()) { return vec2<u32>(e % BN, e / BN); }
    return vec2<u32>(e / BK, e % BK);
}

// What the mode's B address needs of each slot's column (`BCol`, from `b_col`): a slot keeps
// its column at every K-step, so its division and remainders are done once per workgroup and
// `load_b_at` only splits the row.
var<private> b_cols: array<BCol, B_PER_THREAD>;

fn prepare_columns(t: u32, z: u32, col0: u32) {
    for (var j = 0u; j < B_PER_THREAD; j++) {
        b_cols[j] = b_col(z, min(col0 + b_slot(t, j).x, p.n - 1u));
    }
}

// Loads thread t's share of the panel at k0 (zeros outside the matrices and the slice).
fn stage(t: u32, z: u32, row0: u32, col0: u32, k0: u32, k_hi: u32) {
    for (var j = 0u; j < A_PER_THREAD; j++) {
        let a = a_slot(t, j);
        next_a[j] = 0.0;
        if (row0 + a.x < p.m && k0 + a.y < k_hi) { next_a[j] = load_a(z, row0 + a.x, k0 + a.y); }
    }
    for (var j = 0u; j < B_PER_THREAD; j++) {
        let b = b_slot(t, j);
        next_b[j] = 0.0;
        if (k0 + b.y < k_hi && col0 + b.x < p.n) { next_b[j] = load_b_at(z, k0 + b.y, b_cols[j]); }
    }
}
