// A folded activation, chosen by the params' `act` (0 none, 1 relu, 2 leaky relu with slope
// `act_alpha`, 3 tanh, 4 sigmoid; src/ops/activation.rs numbers them).
fn activate(x: f32) -> f32 {
    switch p.act {
        case 1u: { return act_relu(x); }
        case 2u: { return act_leaky_relu(x, p.act_alpha); }
        case 3u: { return act_tanh(x); }
        case 4u: { return act_sigmoid(x); }
        default: { return x; }
    }
}

// The gradient through the folded activation, from its output y (a leaky relu's slope is >= 0
// when folded, so y has the input's sign).
fn activate_grad(g: f32, y: f32) -> f32 {
    switch p.act {
        case 1u: { return select(0.0, g, y > 0.0); }
        case 2u: { return select(p.act_alpha * g, g, y > 0.0); }
        case 3u: { return g * (1.0 - y * y); }
        case 4u: { return g * y * (1.0 - y); }
        default: { return g; }
    }
}
