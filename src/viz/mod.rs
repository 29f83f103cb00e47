//! Pictures users look at: sample grids and line/scatter charts, written as PNG.

mod canvas;
mod chart;
mod grid;

pub use canvas::{Canvas, Rgb};
pub use chart::{Chart, Panel, Series, SeriesStyle};
pub use grid::{save_grid, GridLayout};

use crate::Result;
use std::path::Path;

/// Writes RGB8 pixels as PNG, atomically (a reader never sees half an image, a failure leaves
/// no temporary behind).
pub fn write_png_rgb(path: &Path, width: u32, height: u32, rgb: &[u8]) -> Result<()> {
    crate::files::write_atomic(path, |file| {
        let mut encoder = png::Encoder::new(file, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
        writer
            .write_image_data(rgb)
            .map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)
    })
}
