//! Sample grids: a batch of images in [-1, 1] tiled into one PNG.

use crate::{Error, Result};
use std::path::Path;

#[derive(Clone, Copy, Debug)]
pub struct GridLayout {
    pub rows: usize,
    pub cols: usize,
    /// Pixels of background between tiles.
    pub gap: usize,
    /// Each image pixel becomes `scale` x `scale` output pixels.
    pub scale: usize,
}

impl GridLayout {
    pub fn square(n: usize) -> Self {
        let cols = (n as f64).sqrt().ceil().max(1.0) as usize;
        GridLayout {
            rows: n.div_ceil(cols),
            cols,
            gap: 2,
            scale: 2,
        }
    }
}

/// Writes `images` (N x C x H x W values in [-1, 1], C = 1 or 3) as a grid PNG; missing tiles
/// stay background.
pub fn save_grid(path: &Path, images: &[f32], shape: &[usize], layout: GridLayout) -> Result<()> {
    let &[n, c, h, w] = shape else {
        return Err(Error::shape(
            "save_grid",
            format!("needs NCHW, got {shape:?}"),
        ));
    };
    if c != 1 && c != 3 || images.len() != n * c * h * w {
        return Err(Error::shape(
            "save_grid",
            format!("{} values for {shape:?} (1 or 3 channels)", images.len()),
        ));
    }
    let GridLayout {
        rows,
        cols,
        gap,
        scale,
    } = layout;
    let (tw, th) = (w * scale, h * scale);
    let (width, height) = (cols * (tw + gap) + gap, rows * (th + gap) + gap);
    let mut rgb = vec![40u8; width * height * 3];
    let to_byte = |v: f32| (((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round()) as u8;
    for i in 0..n.min(rows * cols) {
        let (ty, tx) = (i / cols, i % cols);
        let img = &images[i * c * h * w..(i + 1) * c * h * w];
        for y in 0..th {
            for x in 0..tw {
                let (sy, sx) = (y / scale, x / scale);
                let px = |ch: usize| to_byte(img[(ch.min(c - 1) * h + sy) * w + sx]);
                let o = ((gap + ty * (th + gap) + y) * width + gap + tx * (tw + gap) + x) * 3;
                rgb[o..o + 3].copy_from_slice(&[px(0), px(1), px(2)]);
            }
        }
    }
    super::write_png_rgb(path, width as u32, height as u32, &rgb)
}
