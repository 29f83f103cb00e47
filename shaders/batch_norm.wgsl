// Batch normalisation over a (N, C, HW) view (HW = 1 for 2-D input), fused: each phase is one
// kernel. Per channel c, its m = N * HW values sit at (n * C + c) * HW + s.
//   stats:       one workgroup per channel: mean and biased variance by tree reductions (two
//                passes over the channel, so no catastrophic cancellation), written as
//                stats[c] = mean, stats[C + c] = var; the running statistics updated in place
//                (Keras: running = momentum * running + (1 - momentum) * batch, the variance
//                scaled by `unbiased`) when `update` is 1.
//   apply:       y = act((x - mean) / sqrt(var + eps) * gamma + beta), mean/var read at
//                mean[c] and var[var_off + c] (the batch stats buffer, or the running ones).
//                The gradient kernels read the batch stats buffer.
//   grad_reduce: one workgroup per channel: dbeta = sum g, dgamma = sum g * xhat, where g is
//                dy taken back through the folded activation (from the output y).
//   grad_input:  dx = gamma / sqrt(var + eps) * (g - (dbeta + xhat * dgamma) / m).
// This file holds what the phases share; each phase is a fragment of its own
// (batch_norm_{stats,apply,grad}.wgsl), so each kernel declares only the buffers it binds.

var<workgroup> part: array<f32, WG>;

fn at(c: u32, j: u32) -> u32 {
    return ((j / p.hw) * p.c + c) * p.hw + j % p.hw;
}

// The workgroup's sum of `v` (every thread gets it).
fn workgroup_sum(lid: u32, v: f32) -> f32 {
    part[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            part[lid] += part[lid + s];
        }
        workgroupBarrier();
    }
    let total = part[0];
    workgroupBarrier();
    return total;
}

fn channel(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

