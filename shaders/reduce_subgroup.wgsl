// reduce.wgsl's per_workgroup (one workgroup per output, long rows; `row_part` is in
// reduce_row.wgsl) for adapters with SUBGROUP: each subgroup combines its threads' values
// with one subgroup operation (`subgroup_combine`, declared per reduction), then thread 0
// combines the subgroup results in order. Threads take their place from their subgroup
// (id * size + invocation, as in gemm_thin_subgroup.wgsl); partial subgroups leave every
// thread's value to thread 0.
var<workgroup> part: array<f32, WG>;

@compute @workgroup_size(WG)
fn per_workgroup(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_size) size: u32,
    @builtin(subgroup_id) id: u32,
    @builtin(subgroup_invocation_id) inv: u32,
    @builtin(num_subgroups) count: u32,
) {
    let o = wid.x + wid.y * nwg.x;
    let valid = o < p.outer * p.inner;
    let full = whole_subgroups(size, count, WG);
    let t = select(lid.x, id * size + inv, full);
    let acc = row_part(o, t);
    var parts = WG;
    if (full) {
        let s = subgroup_combine(acc);
        if (inv == 0u) {
            part[id] = s;
        }
        parts = count;
    } else {
        part[t] = acc;
    }
    workgroupBarrier();
    if (valid && t == 0u) {
        var total = part[0];
        for (var g = 1u; g < parts; g++) {
            total = combine(total, part[g]);
        }
        y[o] = total;
    }
}
