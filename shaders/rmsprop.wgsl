// Keras RMSprop (no momentum) on one element, mean square updated in place:
//   v = rho * v + (1 - rho) * g^2;  w -= lr * g / (sqrt(v) + eps).
// src/optim/rmsprop.rs has the CPU twin; keep the two identical.

fn update(w: f32, g: f32, s: u32) -> f32 {
    let lr = p.scalars[0];
    let rho = p.scalars[1];
    let eps = p.scalars[2];
    let v = rho * state[s] + (1.0 - rho) * (g * g);
    state[s] = v;
    return w - lr * g / (sqrt(v) + eps);
}
