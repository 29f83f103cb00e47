// Keras SGD with momentum, one element per thread, parameter and velocity updated in place
// in one pass:  velocity = momentum * velocity - lr * g;  w += velocity.
// src/optim/sgd.rs has the CPU twin; keep the two identical.

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.n) {
        return;
    }
    let lr = p.scalars[0];
    let momentum = p.scalars[1];
    let vel = momentum * velocity[i] - lr * g[i];
    velocity[i] = vel;
    w[i] = w[i] + vel;
}
