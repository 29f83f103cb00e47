// Embedding lookup and its adjoint. Labels are stored as f32 (exact below 2^24).
// lookup:  out[i, d] = table[label[i], d]                      (out is batch x dim)
// scatter: out[r, d] = sum over i with label[i] == r of g[i, d] (out is rows x dim), written
//          as a gather over the batch, so repeated labels need no atomics.

@compute @workgroup_size(WG)
fn lookup(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.batch * p.dim) {
        return;
    }
    let row = u32(labels[i / p.dim]);
    out[i] = src[row * p.dim + i % p.dim];
}

@compute @workgroup_size(WG)
fn scatter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.rows * p.dim) {
        return;
    }
    let row = f32(i / p.dim);
    let d = i % p.dim;
    var s = 0.0;
    for (var b = 0u; b < p.batch; b++) {
        if (labels[b] == row) {
            s += src[b * p.dim + d];
        }
    }
    out[i] = s;
}
