// gemm.wgsl mode: gradient of convolution w.r.t. its weights.
// dW[co, (ci, ky, kx)] = sum over (img, oy, ox) of dY[img, co, oy, ox] * X[img, ci, oy*s + ky - pt, ox*s + kx - pl].
// a = dY, b = input images, c = dW [cout, cin*kh*kw].
fn load_a(z: u32, row: u32, col: u32) -> f32 {
    let ohw = p.oh * p.ow;
    return a[((col / ohw) * p.cout + row) * ohw + col % ohw];
}

// Column (ci, ky, kx): the channel's offset in an image and the tap.
struct BCol {
    channel: u32,
    ky: i32,
    kx: i32,
}

fn b_col(z: u32, col: u32) -> BCol {
    let kk = p.kh * p.kw;
    let r = col % kk;
    return BCol((col / kk) * p.h * p.w, i32(r / p.kw) - i32(p.pt), i32(r % p.kw) - i32(p.pl));
}

// Row (img, oy, ox) of column c: the input pixel the tap reads there, 0 in the padding.
fn load_b_at(z: u32, row: u32, c: BCol) -> f32 {
    let ohw = p.oh * p.ow;
    let q = row % ohw;
    let iy = i32((q / p.ow) * p.stride) + c.ky;
    let ix = i32((q % p.ow) * p.stride) + c.kx;
    if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) {
        return 0.0;
    }
    return b[(row / ohw) * p.cin * p.h * p.w + c.channel + u32(iy) * p.w + u32(ix)];
}

fn store(z: u32, row: u32, col: u32, v: f32) {
    c[row * p.n + col] = v;
}
