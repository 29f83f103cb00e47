// Strided copy: dst[dst_off + sum_d i_d * dst_st[d]] = src[src_off + sum_d i_d * src_st[d]]
// for every index i of `shape` (up to 6 dims, left-padded with 1s). Permute, expand, narrow,
// pad and concat are all this one kernel with different strides and offsets.
struct Params {
    n: u32,
    shape: array<u32, 6>,
    src_off: u32,
    src_st: array<u32, 6>,
    dst_off: u32,
    dst_st: array<u32, 6>,
}
@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
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
