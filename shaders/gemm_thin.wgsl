// Thin GEMM: C = A * B where A has at most THIN rows (M <= THIN, checked first) or B at most
// THIN columns. A 64x64 tile would leave 60+ of its 64 rows or columns idle; here the other,
// "wide" side is spread over the workgroups instead, 64 wide indices per workgroup, and each
// thread keeps the THIN sums of its wide index in one vec4.
//
// The 256 threads split K between them as well (lanes), laid out so that neighbouring threads
// read neighbouring addresses: 64 wide indices x 4 lanes when the wide operand is contiguous
// along its wide index (one round), 4 wide indices x 64 lanes when it is contiguous along K
// (16 rounds of 4). The lanes' sums are added by a fixed tree in shared memory, or by
// subgroupAdd and then in order (gemm_thin_subgroup.wgsl), so results are the same from run
// to run. `batch_of`, `k_begin`, `k_end` and `emit` are the batch and split-K hooks of
// gemm.wgsl (grid layer = batch x slices).
// THIN and WIDE must match src/ops/gemm.rs.
const THIN: u32 = 4u;
const WIDE: u32 = 64u;

var<workgroup> sums: array<vec4<f32>, 256>;

// `t` is the thread's place in the layout below (its local index, or its subgroup-major index
// where the entry point found full subgroups); `sg` is the subgroup size where the lanes of
// one wide index may be added by subgroups (`lane_total`), else 0.
fn thin_core(t: u32, wid: vec3<u32>, sg: u32) {
    let thin_m = p.m <= THIN;
    var per_round = 4u;
    if ((thin_m && b_n_fast()) || (!thin_m && !a_k_fast())) {
        per_round = WIDE;
    }
    let lanes = 256u / per_round;
    // Neighbouring threads: neighbouring wide indices (per_round 64) or K (lanes 64).
    var wide_lane = t / lanes;
    var lane = t % lanes;
    if (per_round == WIDE) {
        wide_lane = t % WIDE;
        lane = t / WIDE;
    }
    let layer = wid.z;
    let z = batch_of(layer);
    let k_lo = k_begin(layer);
    let k_hi = k_end(layer);
    var wide_n = p.m;
    var thin_n = min(p.n, THIN);
    if (thin_m) {
        wide_n = p.n;
        thin_n = p.m;
    }
    // B's columns split once (`b_col`): the wide index's in each round where M is thin, else
    // B's few columns here.
    var thin_cols: array<BCol, THIN>;
    for (var j = 0u; j < thin_n && !thin_m; j++) {
        thin_cols[j] = b_col(z, j);
    }
    for (var round = 0u; round < WIDE / per_round; round++) {
        let w = wid.x * WIDE + round * per_round + wide_lane;
        var acc = vec4<f32>();
        if (w < wide_n && thin_m) {
            let bw = b_col(z, w);
            for (var k = k_lo + lane; k < k_hi; k += lanes) {
                let b = load_b_at(z, k, bw);
                for (var i = 0u; i < thin_n; i++) {
                    acc[i] += load_a(z, i, k) * b;
                }
            }
        } else if (w < wide_n) {
            for (var k = k_lo + lane; k < k_hi; k += lanes) {
                let a = load_a(z, w, k);
                for (var j = 0u; j < thin_n; j++) {
                    acc[j] += a * load_b_at(z, k, thin_cols[j]);
                }
            }
        }
        let s = lane_total(acc, lane, wide_lane, lanes, per_round, select(0u, sg, lanes == 64u));
        if (lane == 0u && w < wide_n) {
            for (var i = 0u; i < thin_n; i++) {
                if (thin_m) {
                    emit(layer, i, w, s[i]);
                } else {
                    emit(layer, w, i, s[i]);
                }
            }
        }
        // The next round overwrites the sums.
        workgroupBarrier();
    }
}

// The lanes' sums of each wide index added by a fixed tree in shared memory: the total, in
// lane 0.
fn tree_total(acc: vec4<f32>, lane: u32, wide_lane: u32, lanes: u32, per_round: u32) -> vec4<f32> {
    sums[lane * per_round + wide_lane] = acc;
    workgroupBarrier();
    for (var half = lanes / 2u; half > 0u; half /= 2u) {
        if (lane < half) {
            sums[lane * per_round + wide_lane] += sums[(lane + half) * per_round + wide_lane];
        }
        workgroupBarrier();
    }
    return sums[wide_lane];
}
