// The second kernel of a split-K GEMM with many slices and few outputs, for adapters with
// SUBGROUP: one workgroup per element of C (of each batch), its 64 threads each adding every 64th partial,
// then subgroupAdd and the subgroup sums in order (deterministic for a given subgroup size).
// Threads take their place from their subgroup (see gemm_thin_subgroup.wgsl); with partial
// subgroups thread 0 adds all 64 threads' sums in order instead. A thread per element (gemm_reduce.wgsl) would
// leave most of the GPU idle and loop over every slice alone.
const LANES: u32 = 64u;

var<workgroup> parts: array<f32, 64>;

@compute @workgroup_size(64)
fn reduce_splits(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
    @builtin(subgroup_size) size: u32,
    @builtin(subgroup_id) id: u32,
    @builtin(subgroup_invocation_id) inv: u32,
    @builtin(num_subgroups) count: u32,
) {
    // A 2-D grid of workgroups, one per element (GpuContext::grid_for_groups).
    let i = wid.x + wid.y * nwg.x;
    let mn = p.m * p.n;
    if (i >= p.products * mn) {
        return;
    }
    let b = i / mn;
    let e = i % mn;
    let full = whole_subgroups(size, count, LANES);
    let lane = select(t, id * size + inv, full);
    var s = 0.0;
    for (var z = lane; z < p.splits; z += LANES) {
        s += partial[(b * p.splits + z) * mn + e];
    }
    var groups = count;
    if (full) {
        let part = subgroupAdd(s);
        if (inv == 0u) {
            parts[id] = part;
        }
    } else {
        parts[lane] = s;
        groups = LANES;
    }
    workgroupBarrier();
    if (lane == 0u) {
        var total = 0.0;
        for (var g = 0u; g < groups; g++) {
            total += parts[g];
        }
        let row = e / p.n;
        let col = e % p.n;
        store(b, row, col, epilogue(row, col, total));
    }
}
