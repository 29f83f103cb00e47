// gemm.wgsl mode: the upsampling convolution's forward pass as a batch of up x up products, one
// per phase z (conv_phase.wgsl): C[co, (img, qy, qx)] = sum over (ci, t) of
// Wz[co, ci, t] * X[img, ci, qy + first(ry) + ty, qx + first(rx) + tx].
// Each phase sums over its own taps (`phase_taps`; K = cin x its taps, `k_limit`), not the
// fullest phase's: a k4 layer's phases have 25 taps in all, not 4 x 9.
// a = weights [cout, cin, kh, kw], b = stored input images, c = output images.

// Phase z's depth (`k_limit`).
fn phase_depth(z: u32) -> u32 {
    let t = phase_taps(z);
    return p.cin * t.x * t.y;
}

fn load_a(z: u32, row: u32, col: u32) -> f32 {
    let part = phase_k_parts(phase_taps(z), col);
    return phase_weight(row, part.x, z, part.yz);
}

// Column (img, qy, qx) of phase z: the image, the stored pixel its tap 0 reads, and the
// phase's taps.
struct BCol {
    img: u32,
    y: i32,
    x: i32,
    taps: vec2<u32>,
}

fn b_col(z: u32, col: u32) -> BCol {
    let qhw = p.ph * p.pw;
    let q = col % qhw;
    let y = i32(q / p.pw) + phase_first(z / p.up, p.pt);
    let x = i32(q % p.pw) + phase_first(z % p.up, p.pl);
    return BCol(col / qhw, y, x, phase_taps(z));
}

// Row (ci, (ty, tx)) of column c: the stored pixel the tap reads.
fn load_b_at(z: u32, row: u32, c: BCol) -> f32 {
    let part = phase_k_parts(c.taps, row);
    return stored_at(c.img, part.x, c.y + i32(part.y), c.x + i32(part.z));
}

fn store(z: u32, row: u32, col: u32, v: f32) {
    let at = phase_output(z, row, col);
    if (at >= 0) {
        c[at] = v;
    }
}
