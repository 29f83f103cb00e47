//! Grids and charts decode as PNG with the promised sizes and show what they should.

use ganlab::viz::{save_grid, Chart, GridLayout, Series};

fn decode(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[test]
fn a_grid_tiles_images_with_the_right_size_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.png");
    // 25 images of 28x28: image i is uniformly (i / 12 - 1), so tile 24 is white, tile 12 mid-grey.
    let images: Vec<f32> = (0..25)
        .flat_map(|i| std::iter::repeat_n(i as f32 / 12.0 - 1.0, 784))
        .collect();
    let layout = GridLayout::square(25);
    save_grid(&path, &images, &[25, 1, 28, 28], layout).unwrap();
    let (w, h, rgb) = decode(&path);
    assert_eq!((layout.rows, layout.cols), (5, 5));
    assert_eq!((w, h), (5 * 58 + 2, 5 * 58 + 2));
    let px = |x: usize, y: usize| rgb[(y * w as usize + x) * 3];
    assert_eq!(px(2, 2), 0); // tile 0: -1 -> black
    assert_eq!(px(2 + 4 * 58 + 10, 2 + 4 * 58 + 10), 255); // tile 24: +1 -> white
    assert_eq!(px(2 + 2 * 58 + 10, 2 + 2 * 58 + 10), 128); // tile 12: 0 -> mid grey
    assert!(save_grid(&path, &images[..10], &[25, 1, 28, 28], layout).is_err());
}

#[test]
fn a_chart_draws_every_series_in_its_colour() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("losses.png");
    let d: Vec<(f64, f64)> = (0..100)
        .map(|i| (i as f64, (i as f64 / 10.0).sin()))
        .collect();
    let g: Vec<(f64, f64)> = (0..100)
        .map(|i| (i as f64, 1.0 + i as f64 / 100.0))
        .collect();
    Chart::new(640, 240)
        .panel(
            "losses",
            "step",
            vec![Series::line("D loss", d), Series::line("G loss", g)],
        )
        .panel(
            "accuracy",
            "step",
            vec![Series::points("D acc", vec![(0.0, 0.5), (50.0, 0.9)])],
        )
        .save(&path)
        .unwrap();
    let (w, h, rgb) = decode(&path);
    assert_eq!((w, h), (640, 480));
    let count = |c: [u8; 3]| rgb.chunks(3).filter(|p| *p == c).count();
    // Blue (first series) and orange (second) both drawn, in quantity.
    assert!(count([31, 119, 180]) > 300, "first series missing");
    assert!(count([255, 127, 14]) > 300, "second series missing");
}

#[test]
fn the_metrics_log_appends_and_truncates_on_resume() {
    use ganlab::train::MetricsLog;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.csv");
    let mut log = MetricsLog::open(&path, &["d_loss", "g_loss"], 0).unwrap();
    for step in 1..=4 {
        log.row(step, step as f64 * 0.5, &[step as f64, f64::NAN])
            .unwrap();
    }
    drop(log);
    // Resuming from a checkpoint at step 2 forgets rows 3 and 4, then appends.
    let mut log = MetricsLog::open(&path, &["d_loss", "g_loss"], 2).unwrap();
    log.row(3, 9.0, &[30.0, 1.0]).unwrap();
    let (names, steps, cols) = MetricsLog::read(&path).unwrap();
    assert_eq!(names, ["d_loss", "g_loss"]);
    assert_eq!(steps, [1.0, 2.0, 3.0]);
    assert_eq!(cols[0], [1.0, 2.0, 30.0]);
    assert!(cols[1][0].is_nan() && cols[1][2] == 1.0);
}
