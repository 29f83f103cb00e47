var<workgroup> part: array<f32, WG>;

@compute @workgroup_size(WG)
fn forward(@builtin(local_invocation_id) lid: vec3<u32>) {
    var s = 0.0;
    for (var i = lid.x; i < p.n; i += WG) {
        let v = x[i];
        s += max(v, 0.0) - v * y[i] + log(1.0 + exp(-abs(v)));
    }
    part[lid.x] = s;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k >>= 1u) {
        if (lid.x < k) {
            part[lid.x] += part[lid.x + k];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        out[0] = part[0] / f32(p.n);
    }
}
