// Keras Adam on one element, moments updated in place (m at s, v at s + stride):
//   m += (g - m) * (1 - beta1);  v += (g * g - v) * (1 - beta2);  w -= lr_t * m / (sqrt(v) + eps)
// lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t) comes from the host. src/optim/adam.rs has
// the CPU twin; keep the two identical.

fn update(w: f32, g: f32, s: u32) -> f32 {
    let lr_t = p.scalars[0];
    let beta1 = p.scalars[1];
    let beta2 = p.scalars[2];
    let eps = p.scalars[3];
    let m = state[s] + (g - state[s]) * (1.0 - beta1);
    let v = state[s + p.stride] + (g * g - state[s + p.stride]) * (1.0 - beta2);
    state[s] = m;
    state[s + p.stride] = v;
    return w - lr_t * m / (sqrt(v) + eps);
}
