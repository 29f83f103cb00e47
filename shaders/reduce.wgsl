// Reduction along the middle axis of a (outer, r, inner) view: y[o, i] = combine_j x[o, j, i].
// `combine(a, b)` and `init()` are declared per reduction (sum, max) in src/ops/reduce.rs.
// `per_workgroup`: one workgroup of 256 threads per output, tree-combined in shared memory
// (few outputs, long rows). `per_thread`: one thread per output (many outputs, short rows;
// neighbouring threads read neighbouring addresses when inner > 1).
var<workgroup> part: array<f32, WG>;

@compute @workgroup_size(WG)
fn per_workgroup(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let o = wid.x + wid.y * nwg.x;
    let valid = o < p.outer * p.inner;
    part[lid.x] = row_part(o, lid.x);
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid.x < s) {
            part[lid.x] = combine(part[lid.x], part[lid.x + s]);
        }
        workgroupBarrier();
    }
    if (valid && lid.x == 0u) {
        y[o] = part[0];
    }
}

@compute @workgroup_size(WG)
fn per_thread(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = linear_index(gid, nwg);
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
