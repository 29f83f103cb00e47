// Shared by the upsampling convolution's phase kernels (src/ops/conv/upsampled.rs). The input
// is stored `up` times smaller than the h x w its geometry names, the stride is 1, and the
// output pixels fall into up x up phases z = ry * up + rx (oy mod up, ox mod up). Phase z is a
// stride-1 convolution of the stored input with a tpy x tpx kernel whose taps are the original
// taps that read the same stored pixel, added: its output (qy, qx) is output pixel
// (qy * up + ry, qx * up + rx), and its tap (ty, tx) reads stored pixel
// (qy + first(ry) + ty, qx + first(rx) + tx). Phases with fewer taps than tpy x tpx have zero
// taps at the end; each phase has at most p.ph x p.pw outputs per image (ceil(oh / up) x
// ceil(ow / up)), and one with fewer skips the rest.

// floor(a / s) (WGSL's integer division truncates toward zero).
fn floor_div(a: i32, s: u32) -> i32 {
    let d = i32(s);
    return select(a / d, (a - d + 1) / d, a < 0);
}

// The stored row (or column) that tap 0 of phase r reads, relative to the output's quotient.
fn phase_first(r: u32, pad: u32) -> i32 {
    return floor_div(i32(r) - i32(pad), p.up);
}

// The phase kernel's tap of original tap `k` (along one axis) in phase r.
fn phase_tap(r: u32, k: u32, pad: u32) -> u32 {
    return u32(floor_div(i32(r + k) - i32(pad), p.up) - phase_first(r, pad));
}

// Phase z's own taps (rows, columns): the tap of its last original tap, plus one (at most
// p.tpy x p.tpx, which the fullest phase has).
fn phase_taps(z: u32) -> vec2<u32> {
    return vec2<u32>(phase_tap(z / p.up, p.kh - 1u, p.pt), phase_tap(z % p.up, p.kw - 1u, p.pl)) + 1u;
}
