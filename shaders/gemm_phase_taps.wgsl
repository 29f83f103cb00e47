// Shared by the GEMM modes whose batch is phases of their own depths (`k_limit`): a phase's K
// runs over (channel, tap row, tap column) with the phase's own taps `t` (rows, columns), not
// the fullest phase's.

// (channel, ty, tx) of K index `k` of a phase with taps `t`.
fn phase_k_parts(t: vec2<u32>, k: u32) -> vec3<u32> {
    let tt = t.x * t.y;
    let r = k % tt;
    return vec3<u32>(k / tt, r / t.y, r % t.y);
}
