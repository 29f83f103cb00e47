// Dropout mask from a counter-based generator (Philox4x32-10, Salmon et al. 2011): element i
// takes word i % 4 of the block at counter (i / 4, offset, 0, 0) under key (seed_lo, seed_hi),
// so the mask depends only on (seed, offset, i): the same on every device and in every launch
// order (the CPU computes each block once for its four elements).
// mask(i) = 1 / keep if u < keep else 0, with u the top 24 bits of the element's word.
// This file holds the generator; dropout_mask.wgsl writes the mask, dropout_apply.wgsl
// multiplies by it without storing it (the forward pass and, with the same seed, the backward).

// (hi, lo) words of the 64-bit product a * b, from 16-bit halves (WGSL has no mulhi).
fn mul_hi_lo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    let hi = a_hi * b_hi + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var r = 0; r < 10; r++) {
        let p0 = mul_hi_lo(0xD2511F53u, c.x);
        let p1 = mul_hi_lo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
        k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
    }
    return c;
}

fn mask_value(i: u32) -> f32 {
    let word = philox(vec4<u32>(i >> 2u, p.offset, 0u, 0u), vec2<u32>(p.seed[0], p.seed[1]))[i & 3u];
    let u = f32(word >> 8u) * (1.0 / 16777216.0);
    return select(0.0, 1.0 / p.keep, u < p.keep);
}
