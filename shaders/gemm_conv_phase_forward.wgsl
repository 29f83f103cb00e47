// gemm.wgsl mode: the upsampling convolution's forward pass as a batch of up x up products, one
// per phase z (conv_phase.wgsl): C[co, (img, qy, qx)] = sum over (ci, t) of
// Wz[co, ci, t] * X[img, ci, qy + first(ry) + ty, qx + first(rx) + tx].
// a = weights [cout, cin, kh, kw], b = stored input images, c = output images.
fn load_a(z: u32, row: u32, col: u32) -> f32 {
    let tt = p.tpy * p.tpx;
    return phase_weight(row, col / tt, z, col % tt);
}

// Column (img, qy, qx) of phase z: the image and the stored pixel its tap 0 reads.
struct BCol {
    img: u32,
    y: i32,
    x: i32,
}

fn b_col(z: u32, col: u32) -> BCol {
    let qhw = p.ph * p.pw;
    let q = col % qhw;
    let y = i32(q / p.pw) + phase_first(z / p.up, p.pt);
    let x = i32(q % p.pw) + phase_first(z % p.up, p.pl);
    return BCol(col / qhw, y, x);
}

// Row (ci, t) of column c: the stored pixel tap t reads.
fn load_b_at(z: u32, row: u32, c: BCol) -> f32 {
    let tt = p.tpy * p.tpx;
    let t = row % tt;
    return stored_at(c.img, row / tt, c.y + i32(t / p.tpx), c.x + i32(t % p.tpx));
}

fn store(z: u32, row: u32, col: u32, v: f32) {
    let at = phase_output(z, row, col);
    if (at >= 0) {
        c[at] = v;
    }
}
