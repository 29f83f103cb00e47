// Binary cross-entropy on logits, fused. Per element, stable at any magnitude:
//   l = max(x, 0) - x * y + log(1 + exp(-|x|)),   dl/dx = sigmoid(x) - y.
// forward:  one workgroup: out[0] = mean of l over the n elements and acc[0] = the binary
//           accuracy (one tree reduction of both).
// backward: dx[i] = g[0] * (sigmoid(x[i]) - y[i]) / n, exactly (0.5 - y) / n at x = 0.
// This file holds the shared sigmoid; bce_logits_{forward,grad}.wgsl the two kernels.
fn sigmoid(x: f32) -> f32 {
    let e = exp(-abs(x));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

