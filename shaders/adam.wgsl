// Keras Adam, one element per thread, parameter and moments updated in place in one pass:
//   m += (g - m) * (1 - beta1);  v += (g * g - v) * (1 - beta2);  w -= lr_t * m / (sqrt(v) + eps)
// lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t) comes from the host. src/optim/adam.rs has
// the CPU twin; keep the two identical.
struct Params { n: u32, lr_t: f32, beta1: f32, beta2: f32, eps: f32 }
@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) {
        return;
    }
    let gi = g[i];
    let mi = m[i] + (gi - m[i]) * (1.0 - p.beta1);
    let vi = v[i] + (gi * gi - v[i]) * (1.0 - p.beta2);
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] - p.lr_t * mi / (sqrt(vi) + p.eps);
}
