// The multi-tensor launch every optimiser shares: up to three parameters per dispatch, thread
// i updating element i - ends[k-1] of pair k, whose state sits at offs[k] in the flat `state`
// buffer. The rule's `update(w, g, s)` precedes this body; WGAN's clip follows it in the same
// pass. src/optim/mod.rs has the CPU twin.

fn clipped(w: f32) -> f32 {
    return select(w, clamp(w, -p.clip, p.clip), p.clipped != 0u);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < p.ends[0]) {
        w0[i] = clipped(update(w0[i], g0[i], p.offs[0] + i));
    } else if (i < p.ends[1]) {
        let j = i - p.ends[0];
        w1[j] = clipped(update(w1[j], g1[j], p.offs[1] + j));
    } else if (i < p.ends[2]) {
        let j = i - p.ends[1];
        w2[j] = clipped(update(w2[j], g2[j], p.offs[2] + j));
    }
}
