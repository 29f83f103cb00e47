// gemm.wgsl mode: gradient of convolution w.r.t. its input (also transposed convolution).
// dX[img, ci, y, x] = sum over (co, ky, kx) of W[co, ci, ky, kx] * dY[img, co, oy, ox] where
// y + pt - ky = oy * s and x + pl - kx = ox * s. Written as a gather, so no atomics are needed.
// a = weights [cout, cin, kh, kw], b = dY, c = dX.
//
// An upsampling convolution's input is stored `up` times smaller (h x w is the upsampled
// size): each stored pixel's gradient is the sum over its up x up copies, so K also runs over
// the copy (sy, sx): K = cout * kh * kw * up * up, N = batch * (h / up) * (w / up).

// (co, tap, sy * up + sx) of K index `k`.
fn k_parts(k: u32) -> vec3<u32> {
    let kk = p.kh * p.kw;
    if (p.up == 1u) {
        return vec3<u32>(k / kk, k % kk, 0u);
    }
    let uu = p.up * p.up;
    let rest = k % (kk * uu);
    return vec3<u32>(k / (kk * uu), rest / uu, rest % uu);
}

fn load_a(z: u32, row: u32, col: u32) -> f32 {
    let kk = p.kh * p.kw;
    let part = k_parts(col);
    return a[(part.x * p.cin + row) * kk + part.y];
}

fn load_b(z: u32, row: u32, col: u32) -> f32 {
    let part = k_parts(row);
    let co = part.x;
    let r = part.y;
    let sw = p.w / p.up;
    let shw = (p.h / p.up) * sw;
    let img = col / shw;
    let q = col % shw;
    // The upsampled pixel: the stored one's copy (sy, sx).
    let y = (q / sw) * p.up + part.z / p.up;
    let x = (q % sw) * p.up + part.z % p.up;
    let ty = i32(y + p.pt) - i32(r / p.kw);
    let tx = i32(x + p.pl) - i32(r % p.kw);
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
    let shw = (p.h / p.up) * (p.w / p.up);
    c[((col / shw) * p.cin + row) * shw + col % shw] = v;
}
