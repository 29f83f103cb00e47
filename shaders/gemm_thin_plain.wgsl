// The thin kernel without subgroup operations (gemm_thin.wgsl): threads in local order, lanes
// added by the shared-memory tree.
@compute @workgroup_size(256)
fn thin(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    thin_core(t, wid, 0u);
}

fn lane_total(acc: vec4<f32>, lane: u32, wide_lane: u32, lanes: u32, per_round: u32, sg: u32) -> vec4<f32> {
    return tree_total(acc, lane, wide_lane, lanes, per_round);
}
