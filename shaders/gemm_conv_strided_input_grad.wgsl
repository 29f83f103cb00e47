// gemm.wgsl mode: gradient of a strided convolution w.r.t. its input (also transposed
// convolution), by stride phases. dX[img, ci, y, x] = sum over (co, ky, kx) of W[co, ci, ky, kx] * dY[img, co, oy, ox]
// where y + pt - ky = oy * s (likewise x): only the taps ky = (y + pt) mod s + s * j meet it.
// So the input pixels fall into s x s phases z = ry * s + rx (y mod s, x mod s), each a
// stride-1 product over its own taps (`phase_taps`: ceil((kh - cy) / s) x ceil((kw - cx) / s),
// at most p.tpy x p.tpx), a batch of s * s products of their own depths (`k_limit`) with no
// multiply-adds of skipped taps (k3 s2: 9 taps over the four phases, not 4 x 4):
// C_z[ci, (img, qy, qx)] = sum over (co, j, i) of
//     W[co, ci, cy + s * j, cx + s * i] * dY[img, co, qy + ey - j, qx + ex - i]
// with (y, x) = (qy * s + ry, qx * s + rx), cy = (ry + pt) mod s, ey = (ry + pt) / s (likewise
// x). Written as a gather, so no atomics are needed; every input pixel is stored (0 where no
// output read it). a = weights [cout, cin, kh, kw], b = dY, c = dX.

// Phase z's first tap (cy, cx) and output offset (ey, ex).
fn phase_origin(z: u32) -> vec4<u32> {
    let y = z / p.stride + p.pt;
    let x = z % p.stride + p.pl;
    return vec4<u32>(y % p.stride, x % p.stride, y / p.stride, x / p.stride);
}

// The taps (rows, columns) of the phase whose origin is `o`: from its first tap on in steps of
// the stride, ceil(kh / s) = p.tpy of them, or one fewer where the last falls past the kernel
// (a first tap at or past the kernel's end leaves p.tpy - 1 = 0).
fn phase_taps(o: vec4<u32>) -> vec2<u32> {
    let last = o.xy + p.stride * (vec2<u32>(p.tpy, p.tpx) - 1u);
    return vec2<u32>(p.tpy, p.tpx) - select(vec2<u32>(0u), vec2<u32>(1u), last >= vec2<u32>(p.kh, p.kw));
}

// Phase z's depth: output channels times its taps (`k_limit`).
fn phase_depth(z: u32) -> u32 {
    let t = phase_taps(phase_origin(z));
    return p.cout * t.x * t.y;
}

fn load_a(z: u32, row: u32, col: u32) -> f32 {
    let o = phase_origin(z);
    let part = phase_k_parts(phase_taps(o), col);
    let ky = o.x + p.stride * part.y;
    let kx = o.y + p.stride * part.z;
    return a[((part.x * p.cin + row) * p.kh + ky) * p.kw + kx];
}

// Column (img, qy, qx) of phase z: the image, the output its tap (0, 0) reads, and the phase's
// taps. Phase outputs per image: p.ph x p.pw (the fullest phase's; the others skip the rest).
struct BCol {
    img: u32,
    oy: i32,
    ox: i32,
    taps: vec2<u32>,
}

fn b_col(z: u32, col: u32) -> BCol {
    let o = phase_origin(z);
    let qhw = p.ph * p.pw;
    let q = col % qhw;
    return BCol(col / qhw, i32(q / p.pw + o.z), i32(q % p.pw + o.w), phase_taps(o));
}

// Row (co, j, i) of column c: the output gradient at tap (j, i), 0 past the output.
fn load_b_at(z: u32, row: u32, c: BCol) -> f32 {
    let part = phase_k_parts(c.taps, row);
    let oy = c.oy - i32(part.y);
    let ox = c.ox - i32(part.z);
    if (oy < 0 || ox < 0 || oy >= i32(p.oh) || ox >= i32(p.ow)) {
        return 0.0;
    }
    return b[((c.img * p.cout + part.x) * p.oh + u32(oy)) * p.ow + u32(ox)];
}

fn store(z: u32, row: u32, col: u32, v: f32) {
    let qhw = p.ph * p.pw;
    let q = col % qhw;
    let y = (q / p.pw) * p.stride + z / p.stride;
    let x = (q % p.pw) * p.stride + z % p.stride;
    if (y < p.h && x < p.w) {
        c[(((col / qhw) * p.cin + row) * p.h + y) * p.w + x] = v;
    }
}
