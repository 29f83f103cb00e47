// Element-wise y[i] = op(x[i]); `op` (an expression in x and the scalars p.a, p.b) is declared
// per kernel in src/ops/unary.rs, the bindings and Params are generated there.

// x^e with real-valued results for negative bases and integer exponents, as on the CPU.
fn pow_real(x: f32, e: f32) -> f32 {
    if (e == 0.0) { return 1.0; }
    if (e == 1.0) { return x; }
    if (e == 2.0) { return x * x; }
    if (e == round(e)) {
        let m = pow(abs(x), e);
        let odd = abs(e % 2.0) == 1.0;
        return select(m, -m, odd && x < 0.0);
    }
    return pow(x, e);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        y[i] = op(x[i]);
    }
}
