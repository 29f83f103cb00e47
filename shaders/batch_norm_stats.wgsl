@compute @workgroup_size(WG)
fn batch_stats(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let c = channel(wid, nwg);
    let valid = c < p.c;
    var s = 0.0;
    if (valid) {
        for (var j = lid.x; j < p.m; j += WG) {
            s += x[at(c, j)];
        }
    }
    let mean = workgroup_sum(lid.x, s) / f32(p.m);
    var q = 0.0;
    if (valid) {
        for (var j = lid.x; j < p.m; j += WG) {
            let d = x[at(c, j)] - mean;
            q += d * d;
        }
    }
    let var_b = workgroup_sum(lid.x, q) / f32(p.m);
    if (valid && lid.x == 0u) {
        stats[c] = mean;
        stats[p.c + c] = var_b;
        if (p.update == 1u) {
            running_mean[c] = p.momentum * running_mean[c] + (1.0 - p.momentum) * mean;
            running_var[c] = p.momentum * running_var[c]
                + (1.0 - p.momentum) * var_b * p.unbiased;
        }
    }
}

