fn inv_std(c: u32) -> f32 {
    return inverseSqrt(var_[p.var_off + c] + p.eps);
}

@compute @workgroup_size(WG)
fn apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.m * p.c) {
        return;
    }
    let c = (i / p.hw) % p.c;
    y[i] = activate((x[i] - mean_[c]) * inv_std(c) * gamma[c] + beta[c]);
}

