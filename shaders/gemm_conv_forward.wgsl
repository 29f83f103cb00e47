// gemm.wgsl mode: convolution as an implicit GEMM. C[co, (img, oy, ox)] =
// sum over (ci, ky, kx) of W[co, (ci, ky, kx)] * X[img, ci, oy*s + ky - pt, ox*s + kx - pl].
// a = weights [cout, cin*kh*kw], b = input images, c = output images.
fn load_a(z: u32, row: u32, col: u32) -> f32 {
    return a[row * p.k + col];
}

fn load_b(z: u32, row: u32, col: u32) -> f32 {
    let kk = p.kh * p.kw;
    let r = row % kk;
    let q = col % (p.oh * p.ow);
    return input_at(col / (p.oh * p.ow), row / kk, q / p.ow, q % p.ow, r / p.kw, r % p.kw);
}

fn store(z: u32, row: u32, col: u32, v: f32) {
    let ohw = p.oh * p.ow;
    c[((col / ohw) * p.cout + row) * ohw + col % ohw] = v;
}
