//! Line and scatter charts in stacked panels: loss curves, FID/IS over training, toy-data
//! samples against the data.

use super::canvas::{Canvas, Rgb};
use crate::Result;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeriesStyle {
    Line,
    Points,
}

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub style: SeriesStyle,
}

impl Series {
    pub fn line(name: &str, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            style: SeriesStyle::Line,
        }
    }
    pub fn points(name: &str, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            style: SeriesStyle::Points,
        }
    }
}

pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub series: Vec<Series>,
}

/// Panels stacked vertically, each with axes, tick labels and a legend.
pub struct Chart {
    pub width: usize,
    pub panel_height: usize,
    pub panels: Vec<Panel>,
}

const MARGIN_L: i64 = 80;
const MARGIN_R: i64 = 20;
const MARGIN_T: i64 = 30;
const MARGIN_B: i64 = 40;

/// Compact tick label: 3 significant digits, scientific outside [1e-3, 1e5).
fn label(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = (hi - lo) * 0.05;
    (lo - pad, hi + pad)
}

impl Chart {
    pub fn new(width: usize, panel_height: usize) -> Self {
        Chart {
            width,
            panel_height,
            panels: Vec::new(),
        }
    }

    pub fn panel(mut self, title: &str, x_label: &str, series: Vec<Series>) -> Self {
        self.panels.push(Panel {
            title: title.into(),
            x_label: x_label.into(),
            series,
        });
        self
    }

    pub fn render(&self) -> Canvas {
        let mut canvas = Canvas::new(
            self.width,
            self.panel_height * self.panels.len().max(1),
            Rgb::WHITE,
        );
        for (i, panel) in self.panels.iter().enumerate() {
            self.draw_panel(&mut canvas, panel, (i * self.panel_height) as i64);
        }
        canvas
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let c = self.render();
        super::write_png_rgb(path, c.width as u32, c.height as u32, &c.pixels)
    }

    fn draw_panel(&self, c: &mut Canvas, panel: &Panel, top: i64) {
        let (w, h) = (self.width as i64, self.panel_height as i64);
        let (x0, x1) = (MARGIN_L, w - MARGIN_R);
        let (y0, y1) = (top + MARGIN_T, top + h - MARGIN_B);
        let all = || panel.series.iter().flat_map(|s| s.points.iter());
        let (xmin, xmax) = range(all().map(|p| p.0));
        let (ymin, ymax) = range(all().map(|p| p.1));
        let px = |x: f64| x0 + ((x - xmin) / (xmax - xmin) * (x1 - x0) as f64) as i64;
        let py = |y: f64| y1 - ((y - ymin) / (ymax - ymin) * (y1 - y0) as f64) as i64;

        c.text(x0, top + 8, &panel.title, Rgb::BLACK, 2);
        for t in 0..=4 {
            let (fx, fy) = (
                xmin + (xmax - xmin) * t as f64 / 4.0,
                ymin + (ymax - ymin) * t as f64 / 4.0,
            );
            c.line((px(fx), y0), (px(fx), y1), Rgb::GREY, 1);
            c.line((x0, py(fy)), (x1, py(fy)), Rgb::GREY, 1);
            let xl = label(fx);
            c.text(
                px(fx) - Canvas::text_width(&xl, 1) / 2,
                y1 + 6,
                &xl,
                Rgb::BLACK,
                1,
            );
            let yl = label(fy);
            c.text(
                x0 - 6 - Canvas::text_width(&yl, 1),
                py(fy) - 4,
                &yl,
                Rgb::BLACK,
                1,
            );
        }
        c.line((x0, y0), (x0, y1), Rgb::BLACK, 1);
        c.line((x0, y1), (x1, y1), Rgb::BLACK, 1);
        c.text(
            x1 - Canvas::text_width(&panel.x_label, 1),
            y1 + 20,
            &panel.x_label,
            Rgb::BLACK,
            1,
        );

        let legend_w = panel
            .series
            .iter()
            .map(|s| Canvas::text_width(&s.name, 1))
            .max()
            .unwrap_or(0)
            + 36;
        c.fill_rect(
            x1 - 6 - legend_w,
            y0 + 2,
            legend_w,
            14 * panel.series.len() as i64 + 6,
            Rgb::WHITE,
        );
        for (i, s) in panel.series.iter().enumerate() {
            let color = Rgb::PALETTE[i % Rgb::PALETTE.len()];
            let pts: Vec<(i64, i64)> = s
                .points
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .map(|&(x, y)| (px(x), py(y)))
                .collect();
            match s.style {
                SeriesStyle::Line => {
                    for pair in pts.windows(2) {
                        c.line(pair[0], pair[1], color, 2);
                    }
                    if let [only] = pts[..] {
                        c.fill_rect(only.0 - 2, only.1 - 2, 5, 5, color);
                    }
                }
                SeriesStyle::Points => pts
                    .iter()
                    .for_each(|&(x, y)| c.fill_rect(x - 1, y - 1, 3, 3, color)),
            }
            // Legend, top right, one row per series.
            let ly = y0 + 6 + i as i64 * 14;
            let lx = x1 - legend_w;
            c.fill_rect(lx, ly + 2, 18, 4, color);
            c.text(lx + 24, ly, &s.name, Rgb::BLACK, 1);
        }
    }
}
