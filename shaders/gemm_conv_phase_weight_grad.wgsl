// gemm.wgsl mode: the gradients of the phase kernels, a batch of up x up products (one per
// phase z), which conv_phase_fold.wgsl then adds into the original taps:
// dWz[co, (ci, t)] = sum over (img, qy, qx) of dY[img, co, oy, ox] * X[img, ci, qy + first(ry) + ty, ...]
// with (oy, ox) = (qy * up + ry, qx * up + rx). a = dY, b = stored input images,
// c = [up * up, cout, cin * tpy * tpx].
fn load_a(z: u32, row: u32, col: u32) -> f32 {
    let at = phase_output(z, row, col);
    if (at < 0) {
        return 0.0;
    }
    return a[at];
}

fn load_b(z: u32, row: u32, col: u32) -> f32 {
    let tt = p.tpy * p.tpx;
    return phase_input(z, col / tt, row, col % tt);
}

fn store(z: u32, row: u32, col: u32, v: f32) {
    c[(z * p.m + row) * p.n + col] = v;
}
