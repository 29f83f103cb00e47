// One workgroup: out[0] = mean loss, acc[0] = Keras' binary accuracy (the share of elements
// whose predicted class, 1 where x > 0 else 0, equals y), both by one tree reduction.
var<workgroup> part: array<vec2<f32>, WG>;

@compute @workgroup_size(WG)
fn forward(@builtin(local_invocation_id) lid: vec3<u32>) {
    var s = vec2(0.0);
    for (var i = lid.x; i < p.n; i += WG) {
        let v = x[i];
        let predicted = select(0.0, 1.0, v > 0.0);
        s += vec2(max(v, 0.0) - v * y[i] + log(1.0 + exp(-abs(v))), select(0.0, 1.0, predicted == y[i]));
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
        out[0] = part[0].x / f32(p.n);
        acc[0] = part[0].y / f32(p.n);
    }
}
