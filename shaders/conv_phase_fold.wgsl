// The upsampling convolution's weight gradient from its phase kernels' (after
// conv_phase.wgsl): each original tap takes, from every phase, the gradient of the phase tap it
// was added into, in phase order. partial = [up * up, cout, cin * tpy * tpx] (the phase GEMM's
// output), dw = [cout, cin, kh, kw].
@compute @workgroup_size(WG)
fn fold_phases(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    let kk = p.kh * p.kw;
    let pairs = p.cout * p.cin;
    if (i >= pairs * kk) {
        return;
    }
    let ky = (i % kk) / p.kw;
    let kx = i % p.kw;
    let tt = p.tpy * p.tpx;
    var s = 0.0;
    for (var z = 0u; z < p.up * p.up; z++) {
        let t = phase_tap(z / p.up, ky, p.pt) * p.tpx + phase_tap(z % p.up, kx, p.pl);
        s += partial[(z * pairs + i / kk) * tt + t];
    }
    dw[i] = s;
}
