// Element-wise z = op(a, b) with NumPy broadcasting. OP_EXPR is substituted per op.
// `same`: both operands have the output's shape. `broadcast`: operands are read through
// strides (0 along stretched dims) over an output of up to 6 dims, left-padded with 1s.
struct Params {
    n: u32,
    shape: array<u32, 6>,
    sa: array<u32, 6>,
    sb: array<u32, 6>,
}
@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> z: array<f32>;

fn op(x: f32, y: f32) -> f32 {
    return OP_EXPR;
}

@compute @workgroup_size(256)
fn same(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i < p.n) {
        z[i] = op(a[i], b[i]);
    }
}

@compute @workgroup_size(256)
fn broadcast(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) {
        return;
    }
    var rem = i;
    var ia = 0u;
    var ib = 0u;
    for (var d = 5; d >= 0; d--) {
        let c = rem % p.shape[d];
        rem = rem / p.shape[d];
        ia += c * p.sa[d];
        ib += c * p.sb[d];
    }
    z[i] = op(a[ia], b[ib]);
}
