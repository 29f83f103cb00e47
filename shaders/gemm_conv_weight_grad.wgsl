// gemm.wgsl mode: gradient of convolution w.r.t. its weights.
// dW[co, (ci, ky, kx)] = sum over (img, oy, ox) of dY[img, co, oy, ox] * X[img, ci, oy*s + ky - pt, ox*s + kx - pl].
// a = dY, b = input images, c = dW [cout, cin*kh*kw].
fn load_a(z: u32, row: u32, col: u32) -> f32 {
    let ohw = p.oh * p.ow;
    return a[((col / ohw) * p.cout + row) * ohw + col % ohw];
}

fn load_b(z: u32, row: u32, col: u32) -> f32 {
    let kk = p.kh * p.kw;
    let ohw = p.oh * p.ow;
    let q = row % ohw;
    let r = col % kk;
    return input_at(row / ohw, col / kk, q / p.ow, q % p.ow, r / p.kw, r % p.kw);
}

fn store(z: u32, row: u32, col: u32, v: f32) {
    c[row * p.n + col] = v;
}
