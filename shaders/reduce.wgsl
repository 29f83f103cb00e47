// Reduction along the middle axis of a (outer, r, inner) view: y[o, i] = combine_j x[o, j, i].
// COMBINE_EXPR (in a, b) and INIT_EXPR are substituted per reduction (sum, max).
// `per_workgroup`: one workgroup of 256 threads per output, tree-combined in shared memory
// (few outputs, long rows). `per_thread`: one thread per output (many outputs, short rows;
// neighbouring threads read neighbouring addresses when inner > 1).
struct Params { outer: u32, r: u32, inner: u32 }
@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

var<workgroup> part: array<f32, 256>;

fn combine(a: f32, b: f32) -> f32 {
    return COMBINE_EXPR;
}

fn init() -> f32 {
    return INIT_EXPR;
}

@compute @workgroup_size(256)
fn per_workgroup(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let o = wid.x + wid.y * nwg.x;
    let valid = o < p.outer * p.inner;
    var acc = init();
    if (valid) {
        let base = (o / p.inner) * p.r * p.inner + o % p.inner;
        for (var j = lid.x; j < p.r; j += 256u) {
            acc = combine(acc, x[base + j * p.inner]);
        }
    }
    part[lid.x] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid.x < s) {
            part[lid.x] = combine(part[lid.x], part[lid.x + s]);
        }
        workgroupBarrier();
    }
    if (valid && lid.x == 0u) {
        y[o] = part[0];
    }
}

@compute @workgroup_size(256)
fn per_thread(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = gid.x + gid.y * nwg.x * 256u;
    if (o >= p.outer * p.inner) {
        return;
    }
    let base = (o / p.inner) * p.r * p.inner + o % p.inner;
    var acc = init();
    for (var j = 0u; j < p.r; j++) {
        acc = combine(acc, x[base + j * p.inner]);
    }
    y[o] = acc;
}
