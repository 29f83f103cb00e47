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

// Column (ci, t) of phase z: the channel and the stored pixel's offset from the output's
// quotient (qy, qx) that tap t reads.
struct BCol {
    ci: u32,
    dy: i32,
    dx: i32,
}

fn b_col(z: u32, col: u32) -> BCol {
    let tt = p.tpy * p.tpx;
    let t = col % tt;
    let dy = phase_first(z / p.up, p.pt) + i32(t / p.tpx);
    let dx = phase_first(z % p.up, p.pl) + i32(t % p.tpx);
    return BCol(col / tt, dy, dx);
}

// Row (img, qy, qx) of column c: the stored pixel its tap reads there.
fn load_b_at(z: u32, row: u32, c: BCol) -> f32 {
    let qhw = p.ph * p.pw;
    let q = row % qhw;
    return stored_at(row / qhw, c.ci, i32(q / p.pw) + c.dy, i32(q % p.pw) + c.dx);
}

fn store(z: u32, row: u32, col: u32, v: f32) {
    c[(z * p.m + row) * p.n + col] = v;
}
