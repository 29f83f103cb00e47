// gemm.wgsl mode: the upsampling convolution's input gradient by phases, one product whose K
// runs over (co, phase z, tap t): stored pixel (y, x) takes from every phase the outputs whose
// tap t read it, dX[img, ci, y, x] = sum over (co, z, t) of Wz[co, ci, t] * dY[img, co, oy, ox]
// with oy = (y - first(ry) - ty) * up + ry (likewise ox). K = cout * up * up * tpy * tpx,
// N = batch * stored pixels. a = weights [cout, cin, kh, kw], b = dY, c = dX (stored size).

// (co, z, t) of K index `k`.
fn k_parts(k: u32) -> vec3<u32> {
    let tt = p.tpy * p.tpx;
    let per = p.up * p.up * tt;
    let rest = k % per;
    return vec3<u32>(k / per, rest / tt, rest % tt);
}

fn load_a(z: u32, row: u32, col: u32) -> f32 {
    let part = k_parts(col);
    return phase_weight(part.x, row, part.y, vec2<u32>(part.z / p.tpx, part.z % p.tpx));
}

// Column (img, y, x): a stored pixel.
struct BCol {
    img: u32,
    y: i32,
    x: i32,
}

fn b_col(z: u32, col: u32) -> BCol {
    let sw = p.w / p.up;
    let shw = (p.h / p.up) * sw;
    let q = col % shw;
    return BCol(col / shw, i32(q / sw), i32(q % sw));
}

// Row (co, phase, t) of column c: the output gradient that read the pixel at that phase's tap
// t, 0 where none did.
fn load_b_at(z: u32, row: u32, c: BCol) -> f32 {
    let part = k_parts(row);
    let co = part.x;
    let ph = part.y;
    let t = part.z;
    let qy = c.y - phase_first(ph / p.up, p.pt) - i32(t / p.tpx);
    let qx = c.x - phase_first(ph % p.up, p.pl) - i32(t % p.tpx);
    if (qy < 0 || qx < 0) {
        return 0.0;
    }
    let oy = u32(qy) * p.up + ph / p.up;
    let ox = u32(qx) * p.up + ph % p.up;
    if (oy >= p.oh || ox >= p.ow) {
        return 0.0;
    }
    return b[((c.img * p.cout + co) * p.oh + oy) * p.ow + ox];
}

fn store(z: u32, row: u32, col: u32, v: f32) {
    let shw = (p.h / p.up) * (p.w / p.up);
    c[((col / shw) * p.cin + row) * shw + col % shw] = v;
}
