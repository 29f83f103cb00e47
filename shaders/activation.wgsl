// The activations, written once: the unary kernels call them, and so does `activate`, which
// the kernels that fold an activation into their store (GEMM with bias, batch norm) append.
// tanh(15) is 1 in f32; clamping keeps exp-based implementations away from inf/inf.
fn act_tanh(x: f32) -> f32 {
    return tanh(clamp(x, -15.0, 15.0));
}
fn act_sigmoid(x: f32) -> f32 {
    return select(exp(x) / (1.0 + exp(x)), 1.0 / (1.0 + exp(-x)), x >= 0.0);
}
fn act_relu(x: f32) -> f32 {
    return select(0.0, x, x > 0.0);
}
fn act_leaky_relu(x: f32, a: f32) -> f32 {
    return select(a * x, x, x > 0.0);
}
