// Shared by the convolution modes of gemm.wgsl (params: ConvParams in src/ops/conv.rs).
// Images are NCHW, weights [cout, cin, kh, kw]; `batch` images of cin x h x w give
// cout x oh x ow; pt/pl are the top/left padding (bottom and right padding only change oh/ow,
// which the host computed).

// Input pixel (img, ci, oy * stride + ky - pt, ox * stride + kx - pl), 0 in the padding.
// The modes that read input images bind them as `b`. (An upsampling convolution runs by its
// phases instead, conv_phase.wgsl.)
fn input_at(img: u32, ci: u32, oy: u32, ox: u32, ky: u32, kx: u32) -> f32 {
    let iy = i32(oy * p.stride + ky) - i32(p.pt);
    let ix = i32(ox * p.stride + kx) - i32(p.pl);
    if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) {
        return 0.0;
    }
    return b[((img * p.cin + ci) * p.h + u32(iy)) * p.w + u32(ix)];
}
