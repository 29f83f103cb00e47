// Keras RMSprop (no momentum), one element per thread, parameter and mean square updated in
// place in one pass:  v = rho * v + (1 - rho) * g^2;  w -= lr * g / (sqrt(v) + eps).
// src/optim/rmsprop.rs has the CPU twin; keep the two identical.
struct Params { n: u32, lr: f32, rho: f32, eps: f32 }
@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) {
        return;
    }
    let gi = g[i];
    let vi = p.rho * v[i] + (1.0 - p.rho) * (gi * gi);
    v[i] = vi;
    w[i] = w[i] - p.lr * gi / (sqrt(vi) + p.eps);
}
