// Element-wise z = op(a, b) with NumPy broadcasting; `op` is declared per kernel in
// src/ops/binary.rs. `same`: both operands have the output's shape. `broadcast`: operands are
// read through strides (0 along stretched dims) over an output of up to 6 dims.

@compute @workgroup_size(WG)
fn same(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        z[i] = op(a[i], b[i]);
    }
}

@compute @workgroup_size(WG)
fn broadcast(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.n) {
        return;
    }
    var rem = i;
    var ia = 0u;
    var ib = 0u;
    for (var d = 5; d >= 6 - i32(p.rank); d--) {
        let c = rem % p.shape[d];
        rem = rem / p.shape[d];
        ia += c * p.sa[d];
        ib += c * p.sb[d];
    }
    z[i] = op(a[ia], b[ib]);
}
