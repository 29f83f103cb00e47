//! A loaded dataset: train and test splits as `f32`, labels, classes, and where it came from.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use super::idx::IdxArray;
use super::{DataError, Result};

/// A split's items, stored contiguously, `item_len()` values each, in `item_shape` order.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Image bytes 0-255, read as `x / 127.5 - 1` in [-1, 1] (as the book scales them): a
    /// quarter of the memory of floats, which is what lets a folder of 200,000 photos fit.
    Pixels(Vec<u8>),
    /// Values as they are (the toy sets' samples).
    Floats(Vec<f32>),
}

/// The value a stored pixel stands for.
pub fn pixel_value(x: u8) -> f32 {
    f32::from(x) / 127.5 - 1.0
}

/// One split.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub values: Values,
    pub labels: Vec<u8>,
    pub n: usize,
    /// `[C, H, W]` for images, `[1]` or `[2]` for the toy sets.
    pub item_shape: Vec<usize>,
}

impl Split {
    /// Values per item.
    pub fn item_len(&self) -> usize {
        self.item_shape.iter().product()
    }

    /// Item `i`'s values.
    pub fn item(&self, i: usize) -> Cow<'_, [f32]> {
        self.items(i..i + 1)
    }

    /// The values of items `range`, one after another.
    pub fn items(&self, range: std::ops::Range<usize>) -> Cow<'_, [f32]> {
        let len = self.item_len();
        let span = range.start * len..range.end * len;
        match &self.values {
            Values::Floats(v) => Cow::Borrowed(&v[span]),
            Values::Pixels(p) => Cow::Owned(p[span].iter().map(|&x| pixel_value(x)).collect()),
        }
    }

    /// Every item's values.
    pub fn all_values(&self) -> Cow<'_, [f32]> {
        self.items(0..self.n)
    }

    /// Appends item `i`'s values to `out` (a batch being filled).
    pub fn extend_with_item(&self, i: usize, out: &mut Vec<f32>) {
        let len = self.item_len();
        match &self.values {
            Values::Floats(v) => out.extend_from_slice(&v[i * len..(i + 1) * len]),
            Values::Pixels(p) => {
                out.extend(p[i * len..(i + 1) * len].iter().map(|&x| pixel_value(x)))
            }
        }
    }

    /// How many items carry each label `0..classes` (labels past the end are not counted).
    pub fn class_counts(&self, classes: usize) -> Vec<usize> {
        let mut counts = vec![0; classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
        counts
    }

    /// A split from decoded IDX images and labels (each with the path its errors name),
    /// checked: the image size, at least one image, as many labels, every label a class.
    pub fn from_idx(
        [(images_path, images), (labels_path, labels)]: [(&Path, IdxArray); 2],
        (rows, cols): (usize, usize),
        classes: usize,
    ) -> Result<Split> {
        let (n, shape) = (images.dims[0], [images.dims[1], images.dims[2]]);
        if shape != [rows, cols] {
            return Err(DataError::BadContent {
                path: images_path.to_owned(),
                what: format!(
                    "images are {}x{}, expected {rows}x{cols}",
                    shape[0], shape[1]
                ),
            });
        }
        if n == 0 {
            return Err(DataError::BadContent {
                path: images_path.to_owned(),
                what: "holds no images (a dataset needs at least one in each split)".into(),
            });
        }
        if labels.dims[0] != n {
            return Err(DataError::CountMismatch {
                images_path: images_path.to_owned(),
                images: n,
                labels_path: labels_path.to_owned(),
                labels: labels.dims[0],
            });
        }
        if let Some(i) = labels.data.iter().position(|&l| usize::from(l) >= classes) {
            return Err(DataError::BadContent {
                path: labels_path.to_owned(),
                what: format!(
                    "label {} at index {i} is not a class (0-{})",
                    labels.data[i],
                    classes - 1
                ),
            });
        }
        Ok(Split {
            values: Values::Pixels(images.data),
            labels: labels.data,
            n,
            item_shape: vec![1, rows, cols],
        })
    }
}

/// Which rule of the resolution order produced a dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    DataDir,
    GanlabData,
    Cache,
    Debian,
    Downloaded,
    Fixture,
    Embedded,
    Generated { seed: u64 },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::DataDir => f.write_str("--data-dir"),
            Rule::GanlabData => f.write_str("GANLAB_DATA"),
            Rule::Cache => f.write_str("user cache"),
            Rule::Debian => f.write_str("Debian dataset package"),
            Rule::Downloaded => f.write_str("downloaded into the user cache"),
            Rule::Fixture => f.write_str("fallback: subset shipped with ganlab"),
            Rule::Embedded => f.write_str("fallback: subset built into the ganlab binary"),
            Rule::Generated { seed } => write!(f, "generated from seed {seed}"),
        }
    }
}

/// Where a dataset came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub rule: Rule,
    /// The folder the files were read from; `None` for generated sets.
    pub dir: Option<PathBuf>,
    /// A line the user must see (the fallback notice) that a quiet load did not print.
    pub notice: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub name: String,
    pub train: Split,
    pub test: Split,
    pub classes: Vec<String>,
    pub source: Source,
}

impl Dataset {
    /// What identifies the data a run trains on, whatever folder it came from: the name, the
    /// split sizes, the item shape and a SHA-256 of every label and value (a hash that stays
    /// the same across builds, since checkpoints keep it).
    pub fn identity(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        // Pixels are hashed as the values they stand for, so a dataset keeps its identity
        // whichever way it is stored; in blocks, since one update per value is slow.
        let table: Vec<[u8; 4]> = (0..=255u8).map(|x| pixel_value(x).to_le_bytes()).collect();
        let mut block = Vec::with_capacity(1 << 16);
        for split in [&self.train, &self.test] {
            h.update(&split.labels);
            let values: Box<dyn Iterator<Item = [u8; 4]>> = match &split.values {
                Values::Floats(v) => Box::new(v.iter().map(|x| x.to_le_bytes())),
                Values::Pixels(p) => Box::new(p.iter().map(|&x| table[usize::from(x)])),
            };
            for bytes in values {
                block.extend_from_slice(&bytes);
                if block.len() == block.capacity() {
                    h.update(&block);
                    block.clear();
                }
            }
            h.update(&block);
            block.clear();
        }
        let digest = h.finalize();
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}: {} train + {} test items of {:?}, sha256 {hex}",
            self.name, self.train.n, self.test.n, self.train.item_shape,
        )
    }

    /// The `ganlab data info` report: source, counts, shape, classes with per-class counts.
    pub fn info(&self) -> String {
        let mut out = String::new();
        let s = &self.source;
        let place = s
            .dir
            .as_ref()
            .map(|d| format!("{} ", d.display()))
            .unwrap_or_default();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "dataset     {}", self.name);
        let _ = writeln!(out, "source      {place}({})", s.rule);
        if let Some(notice) = &s.notice {
            let _ = writeln!(out, "note        {notice}");
        }
        let _ = writeln!(out, "train       {} items", self.train.n);
        let _ = writeln!(out, "test        {} items", self.test.n);
        let _ = writeln!(out, "item shape  {:?}", self.train.item_shape);
        let _ = writeln!(out, "classes     {}", self.classes.len());
        let train = self.train.class_counts(self.classes.len());
        let test = self.test.class_counts(self.classes.len());
        let width = self.classes.iter().map(String::len).max().unwrap_or(0);
        for (i, name) in self.classes.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {i:>2} {name:<width$}  train {:>6}  test {:>6}",
                train[i], test[i]
            );
        }
        out
    }
}
