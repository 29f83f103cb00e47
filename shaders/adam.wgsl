// Keras Adam, one element per thread, parameter and moments updated in place in one pass:
//   m += (g - m) * (1 - beta1);  v += (g * g - v) * (1 - beta2);  w -= lr_t * m / (sqrt(v) + eps)
// lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t) comes from the host. src/optim/adam.rs has
// the CPU twin; keep the two identical.

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.n) {
        return;
    }
    let lr_t = p.scalars[0];
    let beta1 = p.scalars[1];
    let beta2 = p.scalars[2];
    let eps = p.scalars[3];
    let gi = g[i];
    let mi = m[i] + (gi - m[i]) * (1.0 - beta1);
    let vi = v[i] + (gi * gi - v[i]) * (1.0 - beta2);
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] - lr_t * mi / (sqrt(vi) + eps);
}
