//! Writes `fixtures/tiny-idx/{gz,plain}/` and their SHA256SUMS:
//! `cargo run --example make_tiny_idx`.

#[path = "../tests/data_support/tiny.rs"]
mod tiny;

use std::fs;
use std::path::Path;

use ganlab::data::download::sha256_file;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tiny-idx");
    let mut sums = String::new();
    for file in tiny::tiny_idx_files() {
        for (sub, name, gzip) in [
            ("gz", format!("{}.gz", file.name), true),
            ("plain", file.name.to_owned(), false),
        ] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir)?;
            let path = dir.join(&name);
            fs::write(&path, file.encode(gzip))?;
            sums.push_str(&format!("{}  {sub}/{name}\n", sha256_file(&path)?));
        }
    }
    fs::write(root.join("SHA256SUMS"), sums)?;
    println!("wrote {}", root.display());
    Ok(())
}
