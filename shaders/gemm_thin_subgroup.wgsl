// The thin kernel with subgroup operations (gemm_thin.wgsl), for adapters with SUBGROUP.
//
// WGSL does not say which invocations share a subgroup, so threads take their place in the
// layout from their subgroup (id * size + invocation) rather than their local index: each
// subgroup then holds consecutive lanes of one wide index whenever subgroups are full and
// their size divides 64, and subgroupAdd replaces the first log2(size) levels of the tree.
// Any other subgroup shape (partial subgroups, a size above 64) takes the tree.
@compute @workgroup_size(256)
fn thin(
    @builtin(local_invocation_index) t: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_size) size: u32,
    @builtin(subgroup_id) id: u32,
    @builtin(subgroup_invocation_id) inv: u32,
    @builtin(num_subgroups) count: u32,
) {
    let full = whole_subgroups(size, count, 256u) && size <= 64u && 64u % size == 0u;
    thin_core(select(t, id * size + inv, full), wid, select(0u, size, full));
}

// With 64 lanes per wide index (`sg` nonzero): each subgroup's sum by subgroupAdd, then the
// 64 / sg subgroup sums of a wide index added in order by its lane 0 (deterministic).
fn lane_total(acc: vec4<f32>, lane: u32, wide_lane: u32, lanes: u32, per_round: u32, sg: u32) -> vec4<f32> {
    if (sg == 0u) {
        return tree_total(acc, lane, wide_lane, lanes, per_round);
    }
    let part = subgroupAdd(acc);
    let groups = lanes / sg;
    if (lane % sg == 0u) {
        sums[wide_lane * groups + lane / sg] = part;
    }
    workgroupBarrier();
    var total = vec4<f32>();
    if (lane == 0u) {
        for (var g = 0u; g < groups; g++) {
            total += sums[wide_lane * groups + g];
        }
    }
    return total;
}
