// Batched C = A * B with arbitrary element strides (so transposed operands cost nothing).
// A is M x K, B is K x N, C is M x N contiguous, per batch z = workgroup_id.z.
//
// Tiling: each 16x16 workgroup computes a 64x64 tile of C; each thread a 4x4 block held in
// four vec4 registers. Per step of BK = 16 along K, the workgroup stages a 64x16 panel of A
// and a 16x64 panel of B in shared memory as vec4s, so the inner loop does two vec4 loads and
// four vec4 FMAs per k. Global loads are scalar and bounds-checked (any shape, any stride),
// laid out so that neighbouring threads read neighbouring addresses whichever stride is 1.
struct Params {
    m: u32, n: u32, k: u32,
    a_off: u32, a_rs: u32, a_cs: u32, a_bs: u32,
    b_off: u32, b_rs: u32, b_cs: u32, b_bs: u32,
}
@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

// As[kk * 16 + i] holds A rows 4i..4i+3 at column kk of the panel; Bs likewise for B columns.
var<workgroup> As: array<vec4<f32>, 256>;
var<workgroup> Bs: array<vec4<f32>, 256>;

fn load_a(base: u32, row: u32, col: u32) -> f32 {
    if (row < p.m && col < p.k) {
        return a[base + row * p.a_rs + col * p.a_cs];
    }
    return 0.0;
}

fn load_b(base: u32, row: u32, col: u32) -> f32 {
    if (row < p.k && col < p.n) {
        return b[base + row * p.b_rs + col * p.b_cs];
    }
    return 0.0;
}

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = lid.y * 16u + lid.x;
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let a_base = p.a_off + wid.z * p.a_bs;
    let b_base = p.b_off + wid.z * p.b_bs;
    let a_k_fast = p.a_cs == 1u;
    let b_n_fast = p.b_cs == 1u;

    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        // 1024 elements per panel, 4 per thread.
        for (var j = 0u; j < 4u; j++) {
            let e = t + j * 256u;
            var mm: u32; var ka: u32;
            if (a_k_fast) { ka = e % BK; mm = e / BK; } else { mm = e % BM; ka = e / BM; }
            As[ka * 16u + mm / 4u][mm % 4u] = load_a(a_base, row0 + mm, k0 + ka);
            var nn: u32; var kb: u32;
            if (b_n_fast) { nn = e % BN; kb = e / BN; } else { kb = e % BK; nn = e / BK; }
            Bs[kb * 16u + nn / 4u][nn % 4u] = load_b(b_base, k0 + kb, col0 + nn);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let av = As[kk * 16u + lid.y];
            let bv = Bs[kk * 16u + lid.x];
            acc[0] += av.x * bv;
            acc[1] += av.y * bv;
            acc[2] += av.z * bv;
            acc[3] += av.w * bv;
        }
        workgroupBarrier();
    }

    let c_base = wid.z * p.m * p.n;
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y * 4u + i;
        if (row < p.m) {
            for (var jj = 0u; jj < 4u; jj++) {
                let col = col0 + lid.x * 4u + jj;
                if (col < p.n) {
                    c[c_base + row * p.n + col] = acc[i][jj];
                }
            }
        }
    }
}
