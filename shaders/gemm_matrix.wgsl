// The tiled GEMM on cooperative-matrix fragments (tensor cores): the same modes as gemm.wgsl
// (`load_a`, `load_b_at`, `emit`, with `k_begin`, `k_end` and `batch_of`), staged the same way
// (gemm_stage.wgsl), but the products run as FRAG x FRAG fragments, one subgroup operation
// each. The fragments' size, input type (`frag_in`: f16 or f32) and operations are generated
// for the context (src/ops/gemm.rs, `fragment_ops`).
//
// A workgroup of 256 invocations computes a 4 FRAG x 4 FRAG tile of C: 16 fragments, dealt
// round its subgroups (at most four each: subgroups of up to 64 invocations), each kept in an
// f32 accumulator fragment across the whole of K. A and B panels go through shared memory,
// converted to `frag_in`, so ragged edges and the modes' implicit im2col stay in the staging
// code; the finished tile goes through shared memory too, so the mode's epilogue and bounds
// run per element.
const BM: u32 = 4u * FRAG;
const BN: u32 = 4u * FRAG;
const BK: u32 = 16u;
const FRAGS: u32 = 16u;

// Row-major panels. Each pitch keeps every fragment's rows 16-byte aligned (as cooperative
// loads require) and shifts successive rows to other banks.
const PITCH_A: u32 = BK + 8u;
const PITCH_B: u32 = BN + 8u;
const PITCH_C: u32 = BN + 4u;
var<workgroup> As: array<frag_in, BM * PITCH_A>;
var<workgroup> Bs: array<frag_in, BK * PITCH_B>;
var<workgroup> Cs: array<f32, BM * PITCH_C>;

// Stores the staged share (gemm_stage.wgsl) into the shared panels.
fn commit(t: u32) {
    for (var j = 0u; j < A_PER_THREAD; j++) {
        let a = a_slot(t, j);
        As[a.x * PITCH_A + a.y] = frag_in(next_a[j]);
    }
    for (var j = 0u; j < B_PER_THREAD; j++) {
        let b = b_slot(t, j);
        Bs[b.y * PITCH_B + b.x] = frag_in(next_b[j]);
    }
}

// Fragment f of the tile (row f / 4, column f % 4): c + its A panel slice x B panel slice at kk.
fn frag_step(f: u32, kk: u32, c: frag_c) -> frag_c {
    let a = frag_load_a((f / 4u) * FRAG * PITCH_A + kk);
    let b = frag_load_b(kk * PITCH_B + (f % 4u) * FRAG);
    return frag_mma(a, b, c);
}

fn frag_offset(f: u32) -> u32 {
    return (f / 4u) * FRAG * PITCH_C + (f % 4u) * FRAG;
}

@compute @workgroup_size(256)
fn main(
    @builtin(local_invocation_index) t: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(num_subgroups) nsg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) lanes: u32,
) {
    frag_setup(lane, lanes);
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let layer = wid.z;
    let z = batch_of(layer);
    let k_lo = k_begin(layer);
    let k_hi = k_end(layer);

    // The fragments go round the first d = frag_dealers(nsg) subgroups: subgroup sg < d takes
    // sg, sg + d, ... (the branches are uniform per subgroup; the others take none).
    let d = frag_dealers(nsg);
    let f0 = select(FRAGS, sg, sg < d);
    let f1 = f0 + d;
    let f2 = f0 + 2u * d;
    let f3 = f0 + 3u * d;
    // The accumulators start as their fragments of the zeroed output tile (a subgroup with
    // fewer than four takes the last one for the rest, never used).
    for (var e = t; e < BM * PITCH_C; e += 256u) {
        Cs[e] = 0.0;
    }
    workgroupBarrier();
    var acc0 = frag_load_c(frag_offset(min(f0, FRAGS - 1u)));
    var acc1 = frag_load_c(frag_offset(min(f1, FRAGS - 1u)));
    var acc2 = frag_load_c(frag_offset(min(f2, FRAGS - 1u)));
    var acc3 = frag_load_c(frag_offset(min(f3, FRAGS - 1u)));
    // Every load done before any store into the tile (even with no K-step in between).
    workgroupBarrier();

    prepare_columns(t, z, col0);
    stage(t, z, row0, col0, k_lo, k_hi);
    for (var k0 = k_lo; k0 < k_hi; k0 += BK) {
        commit(t);
        workgroupBarrier();
        if (k0 + BK < k_hi) {
            stage(t, z, row0, col0, k0 + BK, k_hi);
        }
        for (var kk = 0u; kk < BK; kk += FRAG) {
            if (f0 < FRAGS) { acc0 = frag_step(f0, kk, acc0); }
            if (f1 < FRAGS) { acc1 = frag_step(f1, kk, acc1); }
            if (f2 < FRAGS) { acc2 = frag_step(f2, kk, acc2); }
            if (f3 < FRAGS) { acc3 = frag_step(f3, kk, acc3); }
        }
        workgroupBarrier();
    }

    if (f0 < FRAGS) { frag_store(acc0, frag_offset(f0)); }
    if (f1 < FRAGS) { frag_store(acc1, frag_offset(f1)); }
    if (f2 < FRAGS) { frag_store(acc2, frag_offset(f2)); }
    if (f3 < FRAGS) { frag_store(acc3, frag_offset(f3)); }
    workgroupBarrier();
    for (var e = t; e < BM * BN; e += 256u) {
        let row = row0 + e / BN;
        let col = col0 + e % BN;
        if (row < p.m && col < p.n) {
            emit(layer, row, col, Cs[(e / BN) * PITCH_C + e % BN]);
        }
    }
}
