// The phase GEMM modes' reads (after conv_phase.wgsl).

// The first of the (up to `up`) original taps along one axis added into phase r's tap t.
fn first_tap(r: u32, t: u32, pad: u32) -> i32 {
    return i32(p.up) * (phase_first(r, pad) + i32(t)) + i32(pad) - i32(r);
}

// Tap t = (ty, tx) of phase z's kernel for (co, ci), added from the weights bound as `a`
// ([cout, cin, kh, kw]) as it is read: never stored, at most up x up loads of a small tensor.
fn phase_weight(co: u32, ci: u32, z: u32, t: vec2<u32>) -> f32 {
    let y0 = first_tap(z / p.up, t.x, p.pt);
    let x0 = first_tap(z % p.up, t.y, p.pl);
    let base = (co * p.cin + ci) * p.kh;
    var s = 0.0;
    for (var ky = max(y0, 0); ky < min(y0 + i32(p.up), i32(p.kh)); ky++) {
        for (var kx = max(x0, 0); kx < min(x0 + i32(p.up), i32(p.kw)); kx++) {
            s += a[(base + u32(ky)) * p.kw + u32(kx)];
        }
    }
    return s;
}

// Stored input pixel (img, ci, y, x) of the images bound as `b`, 0 outside them.
fn stored_at(img: u32, ci: u32, y: i32, x: i32) -> f32 {
    let sh = p.h / p.up;
    let sw = p.w / p.up;
    if (y < 0 || x < 0 || y >= i32(sh) || x >= i32(sw)) {
        return 0.0;
    }
    return b[((img * p.cin + ci) * sh + u32(y)) * sw + u32(x)];
}

// Where phase z's output column `col` = (img, qy, qx) sits in the output images (channel
// `co`), or -1 past the output (a phase with fewer outputs than the fullest).
fn phase_output(z: u32, co: u32, col: u32) -> i32 {
    let qw = p.pw;
    let qhw = p.ph * qw;
    let q = col % qhw;
    let oy = (q / qw) * p.up + z / p.up;
    let ox = (q % qw) * p.up + z % p.up;
    if (oy >= p.oh || ox >= p.ow) {
        return -1;
    }
    return i32((((col / qhw) * p.cout + co) * p.oh + oy) * p.ow + ox);
}
