// The gradient reaching the normalised value: through the folded activation, from its output.
fn grad_at(k: u32) -> f32 {
    return activate_grad(dy[k], y[k]);
}

fn inv_std(c: u32) -> f32 {
    return inverseSqrt(stats[p.c + c] + p.eps);
}

@compute @workgroup_size(WG)
fn grad_reduce(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let c = channel(wid, nwg);
    let valid = c < p.c;
    var sg = 0.0;
    var sgx = 0.0;
    if (valid) {
        let mean = stats[c];
        let r = inv_std(c);
        for (var j = lid.x; j < p.m; j += WG) {
            let k = at(c, j);
            let g = grad_at(k);
            sg += g;
            sgx += g * (x[k] - mean) * r;
        }
    }
    let total_g = workgroup_sum(lid.x, sg);
    let total_gx = workgroup_sum(lid.x, sgx);
    if (valid && lid.x == 0u) {
        dbeta[c] = total_g;
        dgamma[c] = total_gx;
    }
}

@compute @workgroup_size(WG)
fn grad_input(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = linear_index(gid, nwg);
    if (i >= p.m * p.c) {
        return;
    }
    let c = (i / p.hw) % p.c;
    let r = inv_std(c);
    let xhat = (x[i] - stats[c]) * r;
    dx[i] = gamma[c] * r * (grad_at(i) - (dbeta[c] + xhat * dgamma[c]) / f32(p.m));
}
