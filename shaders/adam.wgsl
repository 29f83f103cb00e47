// One fused Adam step in place, Keras' formula (eps outside the bias correction):
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p -= lr_t m / (sqrt(v) + eps)
// with lr_t = lr sqrt(1 - b2^t) / (1 - b1^t) computed on the host.
struct Params { n: u32, lr_t: f32, b1: f32, b2: f32, eps: f32 }
@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) {
        return;
    }
    let g = grad[i];
    let mi = p.b1 * m[i] + (1.0 - p.b1) * g;
    let vi = p.b2 * v[i] + (1.0 - p.b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] - p.lr_t * mi / (sqrt(vi) + p.eps);
}
