// Keras SGD with momentum on one element, velocity updated in place:
//   velocity = momentum * velocity - lr * g;  w += velocity.
// src/optim/sgd.rs has the CPU twin; keep the two identical.

fn update(w: f32, g: f32, s: u32) -> f32 {
    let lr = p.scalars[0];
    let momentum = p.scalars[1];
    let velocity = momentum * state[s] - lr * g;
    state[s] = velocity;
    return w + velocity;
}
