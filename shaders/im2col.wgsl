// cols[(ci, ky, kx), (img, oy, ox)] = X[img, ci, oy*s + ky - pt, ox*s + kx - pl] (0 in padding):
// the explicit im2col matrix, for the im2col + matmul convolution variant.
struct Params {
    n: u32,
    batch: u32, cin: u32, h: u32, w: u32,
    kh: u32, kw: u32, oh: u32, ow: u32,
    stride: u32, pt: u32, pl: u32,
}
@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) {
        return;
    }
    let ncols = p.batch * p.oh * p.ow;
    let row = i / ncols;
    let col = i % ncols;
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
