// Nearest-neighbour upsampling by an integer factor and its adjoint, the sum over each
// factor x factor block (average pooling is that sum scaled). Tensors are NCHW; `planes` is
// N*C and (h, w) the small (pooled) size.

// y[plane, i, j] = x[plane, i / f, j / f] over the large (h*f, w*f) output.
@compute @workgroup_size(WG)
fn upsample(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    let big_w = p.w * p.f;
    let big_plane = p.h * p.f * big_w;
    if (i >= p.planes * big_plane) {
        return;
    }
    let plane = i / big_plane;
    let q = i % big_plane;
    y[i] = x[(plane * p.h + (q / big_w) / p.f) * p.w + (q % big_w) / p.f];
}

// y[plane, i, j] = sum of x over the block (i*f.., j*f..) of the large input.
@compute @workgroup_size(WG)
fn block_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.planes * p.h * p.w) {
        return;
    }
    let plane = i / (p.h * p.w);
    let oy = (i % (p.h * p.w)) / p.w;
    let ox = i % p.w;
    let big_w = p.w * p.f;
    let base = plane * p.h * p.f * big_w + oy * p.f * big_w + ox * p.f;
    var s = 0.0;
    for (var dy = 0u; dy < p.f; dy++) {
        for (var dx = 0u; dx < p.f; dx++) {
            s += x[base + dy * big_w + dx];
        }
    }
    y[i] = s;
}
