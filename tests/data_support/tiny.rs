//! The generator of `fixtures/tiny-idx/`: 32 train and 16 test 28x28 images with labels 0-9.
//!
//! Each image is a faint seeded noise background with a bright horizontal bar whose row depends
//! on the label, so that a classifier can tell the classes apart. Shared by the example that
//! writes the files and the test that checks the committed files still match it.

#![allow(dead_code)]

use ganlab::data::idx::{encode_idx, IdxKind};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const TRAIN: usize = 32;
pub const TEST: usize = 16;
pub const SIDE: usize = 28;
const SEED: u64 = 20_240_601;

/// One of the four files, decoded.
pub struct TinyFile {
    /// Standard name without `.gz`.
    pub name: &'static str,
    pub kind: IdxKind,
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

impl TinyFile {
    pub fn encode(&self, gzip: bool) -> Vec<u8> {
        encode_idx(self.kind, &self.dims, &self.data, gzip)
    }
}

/// The four files: train images, train labels, test images, test labels.
pub fn tiny_idx_files() -> Vec<TinyFile> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut files = Vec::new();
    for (split, n) in [("train", TRAIN), ("t10k", TEST)] {
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let mut pixels = Vec::with_capacity(n * SIDE * SIDE);
        for &label in &labels {
            let bar = 3 + 2 * usize::from(label);
            for row in 0..SIDE {
                for _ in 0..SIDE {
                    pixels.push(if row == bar || row == bar + 1 {
                        rng.random_range(200..=255u8)
                    } else {
                        rng.random_range(0..40u8)
                    });
                }
            }
        }
        let (images, labels_name) = match split {
            "train" => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            _ => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        };
        files.push(TinyFile {
            name: images,
            kind: IdxKind::Images,
            dims: vec![n, SIDE, SIDE],
            data: pixels,
        });
        files.push(TinyFile {
            name: labels_name,
            kind: IdxKind::Labels,
            dims: vec![n],
            data: labels,
        });
    }
    files
}
