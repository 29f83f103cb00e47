// Tiled GEMM template: C = A * B per batch z, where A is M x K and B is K x N,
// except that *how* elements are read and written is supplied by a mode (pasted in below): plain
// strided matrices (matmul) or the implicit im2col views of convolution and its gradients.
// A mode (declared in src/ops/) has params starting with m, n, k and defines
// `load_a(z, row, col)`, B's reads `load_b_at(z, row, b_col(z, col))` (a `BCol` holds what
// B's address needs of the column alone: split once, as a thread's columns stay put along K),
// `store(z, row, col, value)` (all called only inside the matrices), and `a_k_fast()`,
// `b_n_fast()`: which index is contiguous in memory, so that neighbouring threads load
// neighbouring addresses. `k_begin(z)`, `k_end(z)` and `emit` (src/ops/gemm.rs) say which
// slice of K layer z sums and where the sums go: the whole of K into `store`, or one slice of
// a split-K into the partial sums.
//
// Tiling (staging in gemm_stage.wgsl): each 16x16 workgroup computes a 64 x BN tile of C;
// each thread a 4 x TN block held in TN vec4 registers. BN and TN are set by the fragment
// before this one: 64 and 4 (the plain tile), or 128 and 8 (the wide tile: twice the FMAs per
// shared-memory load). Per step of BK = 16 along K, the workgroup stages a 64x16 panel of A
// and a 16xBN panel of B in shared memory as vec4s, so the inner loop does 1 + TN/4 vec4 loads
// and TN vec4 FMAs per k; the next step's panels are loaded into registers meanwhile.
const BM: u32 = 64u;
const BK: u32 = 16u;

// As[kk * PITCH_A + i] holds A rows 4i..4i+3 at column kk of the panel; Bs likewise for B
// columns. A row of the A panel is 16 vec4s = 64 words: with that pitch, the 16 threads that
// store one column each (K-fast loads) would all hit one of 32 shared-memory banks. One vec4
// of padding per row spreads them over 8 banks (a 2-way conflict instead of 16-way); the
// reads in the inner loop are broadcasts either way. B's rows likewise.
const PITCH_A: u32 = BM / 4u + 1u;
const PITCH_B: u32 = BN / 4u + 1u;
var<workgroup> As: array<vec4<f32>, BK * PITCH_A>;
var<workgroup> Bs: array<vec4<f32>, BK * PITCH_B>;

// Stores the staged share (gemm_stage.wgsl) into the shared panels.
fn commit(t: u32) {
    for (var j = 0u; j < A_PER_THREAD; j++) {
        let a = a_slot(t, j);
        As[a.y * PITCH_A + a.x / 4u][a.x % 4u] = next_a[j];
    }
    for (var j = 0u; j < B_PER_THREAD; j++) {
        let b = b_slot(t, j);
        Bs[b.y * PITCH_B + b.x / 4u][b.x % 4u] = next_b[j];
    }
}

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = lid.y * 16u + lid.x;
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let layer = wid.z;
    let z = batch_of(layer);

    let k_lo = k_begin(layer);
    let k_hi = k_end(layer);
    // acc[i * TN / 4 + v]: row i of the thread's block, columns 4v..4v+3.
    var acc: array<vec4<f32>, TN>;
    prepare_columns(t, z, col0);
    stage(t, z, row0, col0, k_lo, k_hi);
    for (var k0 = k_lo; k0 < k_hi; k0 += BK) {
        commit(t);
        workgroupBarrier();
        // 1024 elements per panel, 4 per thread; the last panel stages nothing.
        if (k0 + BK < k_hi) {
            stage(t, z, row0, col0, k0 + BK, k_hi);
        }
        for (var kk = 0u; kk < BK; kk++) {
            let av = As[kk * PITCH_A + lid.y];
            for (var v = 0u; v < TN / 4u; v++) {
                let bv = Bs[kk * PITCH_B + lid.x * (TN / 4u) + v];
                acc[v] += av.x * bv;
                acc[TN / 4u + v] += av.y * bv;
                acc[2u * TN / 4u + v] += av.z * bv;
                acc[3u * TN / 4u + v] += av.w * bv;
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y * 4u + i;
        if (row < p.m) {
            for (var jj = 0u; jj < TN; jj++) {
                let col = col0 + lid.x * TN + jj;
                if (col < p.n) {
                    emit(layer, row, col, acc[i * TN / 4u + jj / 4u][jj % 4u]);
                }
            }
        }
    }
}
