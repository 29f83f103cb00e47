//! A generated image folder: coloured circles, squares and triangles on coloured grounds, as
//! PNG and JPEG files of assorted sizes, one subfolder per shape (`ImageFolder` classes).
//!
//! It is what the tests and `ganlab data shapes DIR` use to exercise `--dataset folder`
//! end-to-end without shipping photos: a set simple enough that a short DCGAN run learns it,
//! and whose samples anyone can judge (a round, a square or a pointed shape, or a smudge).

use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::{ImageEncoder, Rgb, RgbImage};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{DataError, Result};

/// The classes, in label order (sorted, as the folder loader sorts subfolders).
pub const SHAPES: [&str; 3] = ["circle", "square", "triangle"];

/// Writes `count` images under `dir/<shape>/`, sides from `min_side` to `2 * min_side`, every
/// other one a JPEG; returns their paths. The same seed writes the same pixels.
pub fn write_folder(dir: &Path, count: usize, min_side: u32, seed: u64) -> Result<Vec<PathBuf>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut paths = Vec::with_capacity(count);
    for shape in SHAPES {
        let sub = dir.join(shape);
        std::fs::create_dir_all(&sub).map_err(|e| DataError::io(&sub, e))?;
    }
    for i in 0..count {
        let kind = i % SHAPES.len();
        let w = rng.random_range(min_side..=2 * min_side);
        let h = rng.random_range(min_side..=2 * min_side);
        let img = render(kind, w, h, &mut rng);
        let jpeg = i % 2 == 1;
        let name = format!("{i:05}.{}", if jpeg { "jpg" } else { "png" });
        let path = dir.join(SHAPES[kind]).join(name);
        let written = if jpeg {
            let file = std::fs::File::create(&path).map_err(|e| DataError::io(&path, e))?;
            JpegEncoder::new_with_quality(std::io::BufWriter::new(file), 92)
                .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
                .map_err(|e| e.to_string())
        } else {
            img.save(&path).map_err(|e| e.to_string())
        };
        written.map_err(|what| DataError::BadContent {
            path: path.clone(),
            what,
        })?;
        paths.push(path);
    }
    Ok(paths)
}

/// Shape `kind` (an index into [`SHAPES`]) in a random colour, size and place inside the
/// image's central square (which survives the loader's centre crop), on a random ground.
pub fn render(kind: usize, w: u32, h: u32, rng: &mut ChaCha8Rng) -> RgbImage {
    let side = w.min(h) as f32;
    let (x0, y0) = ((w as f32 - side) / 2.0, (h as f32 - side) / 2.0);
    let r = side * rng.random_range(0.22..0.34);
    let margin = r * 1.1;
    let cx = x0 + rng.random_range(margin..side - margin);
    let cy = y0 + rng.random_range(margin..side - margin);
    let ground: [f32; 3] = std::array::from_fn(|_| rng.random_range(0.0..0.45));
    let hue = rng.random_range(0.0..1.0f32);
    let ink = bright(hue);
    RgbImage::from_fn(w, h, |x, y| {
        // Four samples a pixel, so the edges are smooth as a photo's would be.
        let cover = [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]
            .iter()
            .filter(|(dx, dy)| inside(kind, x as f32 + dx - cx, y as f32 + dy - cy, r))
            .count() as f32
            / 4.0;
        Rgb(std::array::from_fn(|c| {
            ((ground[c] * (1.0 - cover) + ink[c] * cover) * 255.0).round() as u8
        }))
    })
}

/// Whether offset (dx, dy) from a shape's centre is inside it.
fn inside(kind: usize, dx: f32, dy: f32, r: f32) -> bool {
    match kind {
        0 => dx * dx + dy * dy <= r * r,
        1 => dx.abs() <= r * 0.85 && dy.abs() <= r * 0.85,
        // Upward triangle: apex at -r, base at r/2 (the circumscribed circle's proportions).
        _ => {
            let t = (dy + r) / (1.5 * r);
            (0.0..=1.0).contains(&t) && dx.abs() <= t * r * 0.866
        }
    }
}

/// A saturated, light colour of `hue` in [0, 1).
fn bright(hue: f32) -> [f32; 3] {
    std::array::from_fn(|c| {
        let x = (hue * 6.0 + [0.0, 4.0, 2.0][c]) % 6.0;
        let level = (x - 3.0).abs() - 1.0;
        0.55 + 0.45 * level.clamp(0.0, 1.0)
    })
}
