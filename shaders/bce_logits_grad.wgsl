@compute @workgroup_size(WG)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        dx[i] = g[0] * (sigmoid(x[i]) - y[i]) / f32(p.n);
    }
}
