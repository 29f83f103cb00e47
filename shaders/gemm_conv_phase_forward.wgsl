// gemm.wgsl mode: the upsampling convolution's forward pass as a batch of up x up products, one
// per phase z (conv_phase.wgsl): C[co, (img, qy, qx)] = sum over (ci, t) of
// Wz[co, ci, t] * X[img, ci, qy + first(ry) + ty, qx + first(rx) + tx].
// a = weights [cout, cin, kh, kw], b = stored input images, c = output images.
fn load_a(z: u32, row: u32, col: u32) -> f32 {
    let tt = p.tpy * p.tpx;
    return phase_weight(row, col / tt, z, col % tt);
}

fn load_b(z: u32, row: u32, col: u32) -> f32 {
    let tt = p.tpy * p.tpx;
    return phase_input(z, row / tt, col, row % tt);
}

fn store(z: u32, row: u32, col: u32, v: f32) {
    let at = phase_output(z, row, col);
    if (at >= 0) {
        c[at] = v;
    }
}
