// The second kernel of a split-K GEMM: C = the sum of the `splits` partial products, added in
// order (deterministic), stored through the mode (after its epilogue) as the plain GEMM would;
// a thread per element of each of the `products` batches.
@compute @workgroup_size(WG)
fn reduce_splits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    let mn = p.m * p.n;
    if (i >= p.products * mn) {
        return;
    }
    let b = i / mn;
    let e = i % mn;
    var s = 0.0;
    for (var z = 0u; z < p.splits; z++) {
        s += partial[(b * p.splits + z) * mn + e];
    }
    let row = e / p.n;
    let col = e % p.n;
    store(b, row, col, epilogue(row, col, s));
}
