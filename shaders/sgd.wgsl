// Keras SGD with momentum, one element per thread, parameter and velocity updated in place
// in one pass:  velocity = momentum * velocity - lr * g;  w += velocity.
// src/optim/sgd.rs has the CPU twin; keep the two identical.
struct Params { n: u32, lr: f32, momentum: f32 }
@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> velocity: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) {
        return;
    }
    let vel = p.momentum * velocity[i] - p.lr * g[i];
    velocity[i] = vel;
    w[i] = w[i] + vel;
}
