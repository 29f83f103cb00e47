// gemm.wgsl mode: strided matrices (any transpose is a choice of strides), C contiguous.
fn a_k_fast() -> bool {
    return p.a_cs == 1u;
}

fn b_n_fast() -> bool {
    return p.b_cs == 1u;
}

fn k_limit(z: u32) -> u32 {
    return p.k;
}

fn load_a(z: u32, row: u32, col: u32) -> f32 {
    return a[z * p.a_bs + row * p.a_rs + col * p.a_cs];
}

// B's column needs no splitting: it is its own part of the address.
alias BCol = u32;

fn b_col(z: u32, col: u32) -> BCol {
    return col;
}

fn load_b_at(z: u32, row: u32, col: BCol) -> f32 {
    return b[z * p.b_bs + row * p.b_rs + col * p.b_cs];
}

fn store(z: u32, row: u32, col: u32, v: f32) {
    c[(z * p.m + row) * p.n + col] = v;
}
