// gemm.wgsl mode: convolution as an implicit GEMM. C[co, (img, oy, ox)] =
// sum over (ci, ky, kx) of W[co, (ci, ky, kx)] * X[img, ci, oy*s + ky - pt, ox*s + kx - pl].
// a = weights [cout, cin*kh*kw], b = input images, c = output images. Images are NCHW
// (params: ConvParams in src/ops/conv/mod.rs); pt/pl are the top/left padding (bottom and
// right padding only change oh/ow, which the host computed).
fn load_a(z: u32, row: u32, col: u32) -> f32 {
    return a[row * p.k + col];
}

// Column (img, oy, ox): the image's offset and the top-left input pixel its window reads.
struct BCol {
    image: u32,
    iy: i32,
    ix: i32,
}

fn b_col(z: u32, col: u32) -> BCol {
    let ohw = p.oh * p.ow;
    let q = col % ohw;
    let iy = i32((q / p.ow) * p.stride) - i32(p.pt);
    let ix = i32((q % p.ow) * p.stride) - i32(p.pl);
    return BCol((col / ohw) * p.cin * p.h * p.w, iy, ix);
}

// Row (ci, ky, kx) of column c: the input pixel, 0 in the padding.
fn load_b_at(z: u32, row: u32, c: BCol) -> f32 {
    let kk = p.kh * p.kw;
    let r = row % kk;
    let iy = c.iy + i32(r / p.kw);
    let ix = c.ix + i32(r % p.kw);
    if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) {
        return 0.0;
    }
    return b[c.image + ((row / kk) * p.h + u32(iy)) * p.w + u32(ix)];
}

fn store(z: u32, row: u32, col: u32, v: f32) {
    let ohw = p.oh * p.ow;
    c[((col / ohw) * p.cout + row) * ohw + col % ohw] = v;
}
