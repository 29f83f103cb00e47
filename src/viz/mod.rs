//! Pictures users look at: sample grids and line/scatter charts, written as PNG.

mod canvas;
mod chart;
mod grid;

pub use canvas::{Canvas, Rgb};
pub use chart::{Chart, Panel, Series, SeriesStyle};
pub use grid::{save_grid, GridLayout};

use crate::{Error, Result};
use std::path::Path;

/// Writes RGB8 pixels as PNG, through a temporary file renamed into place, so a reader never
/// sees half an image.
pub fn write_png_rgb(path: &Path, width: u32, height: u32, rgb: &[u8]) -> Result<()> {
    let io = |e: std::io::Error| Error::Io {
        context: format!("writing {}", path.display()),
        source: e,
    };
    let tmp = path.with_extension("png.tmp");
    {
        let file = std::fs::File::create(&tmp).map_err(io)?;
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| Error::Invalid(format!("PNG {}: {e}", path.display())))?;
        writer
            .write_image_data(rgb)
            .map_err(|e| Error::Invalid(format!("PNG {}: {e}", path.display())))?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}
