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

fn load_b(z: u32, row: u32, col: u32) -> f32 {
    let kk = p.kh * p.kw;
    let co = row / kk;
    let r = row % kk;
    let hw = p.h * p.w;
    let img = col / hw;
    let q = col % hw;
    let ty = i32(q / p.w + p.pt) - i32(r / p.kw);
    let tx = i32(q % p.w + p.pl) - i32(r % p.kw);
    let s = i32(p.stride);
    if (ty < 0 || tx < 0 || ty % s != 0 || tx % s != 0) {
        return 0.0;
    }
    let oy = u32(ty / s);
    let ox = u32(tx / s);
    if (oy >= p.oh || ox >= p.ow) {
        return 0.0;
    }
    return b[((img * p.cout + co) * p.oh + oy) * p.ow + ox];
}

fn store(z: u32, row: u32, col: u32, v: f32) {
    let hw = p.h * p.w;
    c[((col / hw) * p.cin + row) * hw + col % hw] = v;
}
