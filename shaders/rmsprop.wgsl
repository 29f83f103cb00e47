// Keras RMSprop (no momentum), one element per thread, parameter and mean square updated in
// place in one pass:  v = rho * v + (1 - rho) * g^2;  w -= lr * g / (sqrt(v) + eps).
// src/optim/rmsprop.rs has the CPU twin; keep the two identical.

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.n) {
        return;
    }
    let lr = p.scalars[0];
    let rho = p.scalars[1];
    let eps = p.scalars[2];
    let gi = g[i];
    let vi = rho * v[i] + (1.0 - rho) * (gi * gi);
    v[i] = vi;
    w[i] = w[i] - lr * gi / (sqrt(vi) + eps);
}
