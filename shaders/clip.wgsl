// In-place clipping to [-c, c] (WGAN's weight clipping), one element per thread.
struct Params { n: u32, c: f32 }
@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i < p.n) {
        w[i] = clamp(w[i], -p.c, p.c);
    }
}
