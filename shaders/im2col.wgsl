// cols[(ci, ky, kx), (img, oy, ox)] = X[img, ci, oy*s + ky - pt, ox*s + kx - pl] (0 in padding):
// the explicit im2col matrix (m rows by n columns), for the im2col + matmul convolution variant.
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.m * p.n) {
        return;
    }
    let row = i / p.n;
    let col = i % p.n;
    let kk = p.kh * p.kw;
    let ci = row / kk;
    let r = row % kk;
    let ohw = p.oh * p.ow;
    let img = col / ohw;
    let q = col % ohw;
    let iy = i32((q / p.ow) * p.stride + r / p.kw) - i32(p.pt);
    let ix = i32((q % p.ow) * p.stride + r % p.kw) - i32(p.pl);
    var v = 0.0;
    if (iy >= 0 && ix >= 0 && iy < i32(p.h) && ix < i32(p.w)) {
        v = x[((img * p.cin + ci) * p.h + u32(iy)) * p.w + u32(ix)];
    }
    cols[i] = v;
}
