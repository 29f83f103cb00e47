// Strided copy: dst[dst_off + sum_d i_d * dst_st[d]] = src[src_off + sum_d i_d * src_st[d]]
// for every index i of `shape` (up to 6 dims, left-padded with 1s). Permute, expand, narrow,
// pad and concat are all this one kernel with different strides and offsets.
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.n) {
        return;
    }
    var rem = i;
    var s = p.src_off;
    var t = p.dst_off;
    for (var d = 5; d >= 0; d--) {
        let c = rem % p.shape[d];
        rem = rem / p.shape[d];
        s += c * p.src_st[d];
        t += c * p.dst_st[d];
    }
    dst[t] = src[s];
}
