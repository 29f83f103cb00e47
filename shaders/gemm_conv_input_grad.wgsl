// gemm.wgsl mode: gradient of convolution w.r.t. its input (also transposed convolution).
// dX[img, ci, y, x] = sum over (co, ky, kx) of W[co, ci, ky, kx] * dY[img, co, oy, ox] where
// y + pt - ky = oy * s and x + pl - kx = ox * s. Written as a gather, so no atomics are needed.
// The launcher runs it at stride 1; a strided convolution's skips the taps that miss by stride
// phases instead (gemm_conv_strided_input_grad.wgsl). a = weights [cout, cin, kh, kw], b = dY,
// c = dX.
fn load_a(z: u32, row: u32, col: u32) -> f32 {
    let kk = p.kh * p.kw;
    return a[((col / kk) * p.cin + row) * kk + col % kk];
}

// Column (img, y, x): the image's offset in dY and the input pixel shifted by the padding.
struct BCol {
    image: u32,
    ty: i32,
    tx: i32,
}

fn b_col(z: u32, col: u32) -> BCol {
    let hw = p.h * p.w;
    let q = col % hw;
    return BCol((col / hw) * p.cout * p.oh * p.ow, i32(q / p.w + p.pt), i32(q % p.w + p.pl));
}

// Row (co, ky, kx) of column c: the output gradient whose window put that tap on the pixel,
// 0 where none did.
fn load_b_at(z: u32, row: u32, c: BCol) -> f32 {
    let kk = p.kh * p.kw;
    let r = row % kk;
    let ty = c.ty - i32(r / p.kw);
    let tx = c.tx - i32(r % p.kw);
    let s = i32(p.stride);
    if (ty < 0 || tx < 0 || ty % s != 0 || tx % s != 0) {
        return 0.0;
    }
    let oy = u32(ty / s);
    let ox = u32(tx / s);
    if (oy >= p.oh || ox >= p.ow) {
        return 0.0;
    }
    return b[c.image + ((row / kk) * p.oh + oy) * p.ow + ox];
}

fn store(z: u32, row: u32, col: u32, v: f32) {
    let hw = p.h * p.w;
    c[((col / hw) * p.cin + row) * hw + col % hw] = v;
}
