// gemm_stage.wgsl's per-column part of B for a mode that keeps none: the column itself.
alias BCol = u32;

fn b_col(z: u32, col: u32) -> BCol {
    return col;
}

fn load_b_at(z: u32, row: u32, col: BCol) -> f32 {
    return load_b(z, row, col);
}
