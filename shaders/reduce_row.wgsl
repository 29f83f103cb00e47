// Thread t's share of output o's row in a per-workgroup reduction: every WG-th element from
// the t-th, combined (init() past the last output).
fn row_part(o: u32, t: u32) -> f32 {
    var acc = init();
    if (o < p.outer * p.inner) {
        let base = (o / p.inner) * p.r * p.inner + o % p.inner;
        for (var j = t; j < p.r; j += WG) {
            acc = combine(acc, x[base + j * p.inner]);
        }
    }
    return acc;
}
