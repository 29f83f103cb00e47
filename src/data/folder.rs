//! `--dataset folder`: every PNG and JPEG under a folder, as PyTorch's `ImageFolder` with
//! `Resize` and `CenterCrop` would give them.
//!
//! Images are decoded in parallel, once: each is centre-cropped to a square of its shorter
//! side and resized (a triangle filter, so bilinear when enlarging and an area-like average
//! when shrinking) to `size` x `size`, RGB or grey. The pixels are kept as bytes and written
//! to a cache file keyed by the folder's file list, sizes and modification times, so the next
//! run decodes nothing. Training draws its batches out of memory, on a thread of its own
//! ([`super::batch::prefetch`]), two batches ahead of the step.
//!
//! Classes follow `ImageFolder`: when every image sits in a subfolder, each first-level
//! subfolder is a class (sorted by name); otherwise the folder is one class.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, UNIX_EPOCH};

use image::imageops::FilterType;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::dataset::{Dataset, Rule, Source, Split, Values};
use super::options::{ImageOptions, LoadOptions};
use super::{DataError, Result};

/// Extensions read as images (case-insensitive); any other file is counted and ignored.
pub const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// How many unreadable files the report names (the count covers all of them).
const NAMED_SKIPS: usize = 5;

/// Bumped whenever decoding changes what a cached file holds.
const CACHE_VERSION: u32 = 1;
const CACHE_MAGIC: &[u8; 10] = b"GANLABIMG\n";

/// What loading a folder found and did, for the run's report and for tests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FolderReport {
    /// Images loaded.
    pub images: usize,
    /// Images decoded by this load: 0 when the cache served them.
    pub decoded: usize,
    pub from_cache: bool,
    /// Image files that could not be read or decoded, relative to the folder.
    pub skipped: Vec<String>,
    /// Files that are not PNG or JPEG.
    pub ignored: usize,
    /// The cache file, when there is a cache folder.
    pub cache: Option<PathBuf>,
    pub seconds: f64,
}

impl FolderReport {
    /// One line for the person running `ganlab`.
    pub fn summary(&self, dir: &Path) -> String {
        let how = if self.from_cache {
            "from the decoded cache".to_owned()
        } else {
            format!("decoded in {:.1} s", self.seconds)
        };
        let mut line = format!("{}: {} images, {how}", dir.display(), self.images);
        if !self.skipped.is_empty() {
            let named: Vec<&str> = self
                .skipped
                .iter()
                .take(NAMED_SKIPS)
                .map(String::as_str)
                .collect();
            let more = if self.skipped.len() > NAMED_SKIPS {
                ", ..."
            } else {
                ""
            };
            line += &format!(
                "; skipped {} unreadable ({}{more})",
                self.skipped.len(),
                named.join(", ")
            );
        }
        if self.ignored > 0 {
            line += &format!("; ignored {} files that are not PNG or JPEG", self.ignored);
        }
        line
    }
}

/// An image file found under the folder.
struct Entry {
    path: PathBuf,
    /// Relative to the folder, with `/` separators (for names and the cache key).
    name: String,
    class: usize,
    len: u64,
    mtime_ns: u128,
}

/// The folder's images as a dataset (every image in the train split; the test split is empty:
/// a folder has no held-out set) and what loading it did.
pub fn load_folder(dir: &Path, opts: &LoadOptions) -> Result<(Dataset, FolderReport)> {
    let image = opts.images;
    image.validate()?;
    let start = Instant::now();
    let (entries, classes, ignored) = scan(dir)?;
    if entries.is_empty() {
        return Err(DataError::NotFound(format!(
            "{} holds no PNG or JPEG images (looked in every subfolder; {ignored} other files \
             ignored)",
            dir.display()
        )));
    }
    let key = cache_key(&entries, &classes, image);
    let cache = opts
        .cache_root()
        .map(|root| root.join("folders").join(format!("{key}.bin")));
    let cached = cache
        .as_deref()
        .and_then(|path| read_cache(path, image, &key));
    let (pixels, labels, skipped, from_cache) = match cached {
        Some(c) => (c.pixels, c.labels, c.header.skipped, true),
        None => {
            let bar = decode_bar(entries.len(), opts.quiet);
            let (pixels, labels, skipped) = decode_all(&entries, image, &bar);
            bar.finish_and_clear();
            (pixels, labels, skipped, false)
        }
    };
    let n = labels.len();
    if n == 0 {
        return Err(DataError::BadContent {
            path: dir.to_owned(),
            what: format!(
                "none of its {} image files could be decoded (first: {})",
                entries.len(),
                skipped.first().map_or("", String::as_str)
            ),
        });
    }
    let report = FolderReport {
        images: n,
        decoded: if from_cache { 0 } else { entries.len() },
        from_cache,
        skipped,
        ignored,
        cache: cache.clone(),
        seconds: start.elapsed().as_secs_f64(),
    };
    if let (Some(path), false) = (&cache, from_cache) {
        // A cache that cannot be written only costs the next run a decode.
        if let Err(e) = write_cache(path, &key, image, &classes, &report, &labels, &pixels) {
            if !opts.quiet {
                eprintln!("note: the decoded images were not cached: {e}");
            }
        }
    }
    let item_shape = vec![image.channels, image.size, image.size];
    let dataset = Dataset {
        name: "folder".into(),
        train: Split {
            values: Values::Pixels(pixels),
            labels,
            n,
            item_shape: item_shape.clone(),
        },
        test: Split {
            values: Values::Pixels(Vec::new()),
            labels: Vec::new(),
            n: 0,
            item_shape,
        },
        classes,
        source: Source {
            rule: Rule::DataDir,
            dir: Some(dir.to_owned()),
            notice: None,
        },
    };
    Ok((dataset, report))
}

/// Every image file under `dir` (sorted by path), the class names, and how many other files.
fn scan(dir: &Path) -> Result<(Vec<Entry>, Vec<String>, usize)> {
    if !dir.is_dir() {
        return Err(DataError::NotFound(format!(
            "--data-dir {} is not a folder: --dataset folder reads every PNG and JPEG under it",
            dir.display()
        )));
    }
    let mut files = Vec::new();
    let mut ignored = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        let listing = std::fs::read_dir(&folder).map_err(|e| DataError::io(&folder, e))?;
        for item in listing {
            let item = item.map_err(|e| DataError::io(&folder, e))?;
            let path = item.path();
            // Follows links, as a user pointing at a folder of links expects.
            let Ok(meta) = std::fs::metadata(&path) else {
                ignored += 1;
                continue;
            };
            if meta.is_dir() {
                pending.push(path);
            } else if is_image(&path) {
                let mtime_ns = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                files.push((path, meta.len(), mtime_ns));
            } else {
                ignored += 1;
            }
        }
    }
    files.sort();
    let relative = |path: &Path| -> Vec<String> {
        path.strip_prefix(dir)
            .unwrap_or(path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect()
    };
    // ImageFolder's classes: first-level subfolders, when every image is in one (and they fit
    // in a byte label).
    let parts: Vec<Vec<String>> = files.iter().map(|(p, ..)| relative(p)).collect();
    let subfolders: BTreeSet<&str> = parts
        .iter()
        .filter(|p| p.len() > 1)
        .map(|p| p[0].as_str())
        .collect();
    let by_folder = parts.iter().all(|p| p.len() > 1) && subfolders.len() <= 256;
    let classes: Vec<String> = if by_folder {
        subfolders.iter().map(|s| (*s).to_owned()).collect()
    } else {
        vec![dir
            .file_name()
            .map_or_else(|| "images".into(), |n| n.to_string_lossy().into_owned())]
    };
    let entries = files
        .into_iter()
        .zip(parts)
        .map(|((path, len, mtime_ns), parts)| Entry {
            class: if by_folder {
                classes.binary_search(&parts[0]).unwrap_or(0)
            } else {
                0
            },
            name: parts.join("/"),
            path,
            len,
            mtime_ns,
        })
        .collect();
    Ok((entries, classes, ignored))
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Decodes every entry in parallel: the pixels and labels of those that decode, in entry
/// order, and the names of those that do not. In chunks, so that the decoded images waiting
/// to be appended never hold more than a chunk's worth of memory.
fn decode_all(
    entries: &[Entry],
    image: ImageOptions,
    bar: &ProgressBar,
) -> (Vec<u8>, Vec<u8>, Vec<String>) {
    const CHUNK: usize = 4096;
    let mut pixels = Vec::with_capacity(entries.len() * image.item_len());
    let mut labels = Vec::with_capacity(entries.len());
    let mut skipped = Vec::new();
    for chunk in entries.chunks(CHUNK) {
        let decoded: Vec<std::result::Result<Vec<u8>, String>> = chunk
            .par_iter()
            .map(|e| decode(&e.path, image))
            .inspect(|_| bar.inc(1))
            .collect();
        for (entry, result) in chunk.iter().zip(decoded) {
            match result {
                Ok(p) => {
                    pixels.extend_from_slice(&p);
                    labels.push(entry.class as u8);
                }
                Err(why) => skipped.push(format!("{}: {why}", entry.name)),
            }
        }
    }
    (pixels, labels, skipped)
}

/// A bar over the images to decode (hidden when quiet): a folder of photos takes minutes the
/// first time.
fn decode_bar(images: usize, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let style =
        ProgressStyle::with_template("decoding images [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .map_or_else(
                |_| ProgressStyle::default_bar(),
                |s| s.progress_chars("=> "),
            );
    ProgressBar::new(images as u64).with_style(style)
}

/// One image, centre-cropped to a square, resized to `size` x `size`, as CHW bytes.
pub fn decode(path: &Path, image: ImageOptions) -> std::result::Result<Vec<u8>, String> {
    let img = image::ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| e.to_string())?;
    let (w, h) = (img.width(), img.height());
    let side = w.min(h);
    let square = img.crop_imm((w - side) / 2, (h - side) / 2, side, side);
    let s = image.size as u32;
    let resized = if side == s {
        square
    } else {
        square.resize_exact(s, s, FilterType::Triangle)
    };
    Ok(match image.channels {
        1 => resized.to_luma8().into_raw(),
        _ => planar(&resized.to_rgb8().into_raw(), 3),
    })
}

/// Interleaved (HWC) bytes to planes (CHW).
fn planar(hwc: &[u8], channels: usize) -> Vec<u8> {
    let plane = hwc.len() / channels;
    let mut chw = vec![0; hwc.len()];
    for (i, px) in hwc.chunks_exact(channels).enumerate() {
        for (c, &v) in px.iter().enumerate() {
            chw[c * plane + i] = v;
        }
    }
    chw
}

/// A digest of everything the decoded pixels depend on: each file's name, size and
/// modification time, the classes, the output size and channels, and the decoder's version.
fn cache_key(entries: &[Entry], classes: &[String], image: ImageOptions) -> String {
    let mut h = Sha256::new();
    h.update(CACHE_VERSION.to_le_bytes());
    h.update((image.size as u64).to_le_bytes());
    h.update((image.channels as u64).to_le_bytes());
    for c in classes {
        h.update(c.as_bytes());
        h.update([0]);
    }
    for e in entries {
        h.update(e.name.as_bytes());
        h.update([0]);
        h.update(e.len.to_le_bytes());
        h.update(e.mtime_ns.to_le_bytes());
        h.update([e.class as u8]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The cache file's header (JSON, after the magic and its length).
#[derive(Serialize, Deserialize)]
struct CacheHeader {
    version: u32,
    key: String,
    n: usize,
    channels: usize,
    size: usize,
    classes: Vec<String>,
    skipped: Vec<String>,
}

struct Cached {
    header: CacheHeader,
    labels: Vec<u8>,
    pixels: Vec<u8>,
}

/// The cached images, or `None` when there are none or they do not match (a damaged or
/// stale cache is decoded again, never trusted).
fn read_cache(path: &Path, image: ImageOptions, key: &str) -> Option<Cached> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut magic = [0u8; CACHE_MAGIC.len()];
    file.read_exact(&mut magic).ok()?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).ok()?;
    let len = usize::try_from(u64::from_le_bytes(len)).ok()?;
    if magic != *CACHE_MAGIC || len > 1 << 30 {
        return None;
    }
    let mut text = vec![0; len];
    file.read_exact(&mut text).ok()?;
    let header: CacheHeader = serde_json::from_slice(&text).ok()?;
    let fits = header.version == CACHE_VERSION
        && header.key == key
        && header.size == image.size
        && header.channels == image.channels;
    let bytes = header.n.checked_mul(image.item_len())?;
    if !fits {
        return None;
    }
    let mut labels = vec![0; header.n];
    file.read_exact(&mut labels).ok()?;
    let mut pixels = Vec::new();
    file.read_to_end(&mut pixels).ok()?;
    let in_range = labels
        .iter()
        .all(|&l| usize::from(l) < header.classes.len());
    (pixels.len() == bytes && in_range).then_some(Cached {
        header,
        labels,
        pixels,
    })
}

fn write_cache(
    path: &Path,
    key: &str,
    image: ImageOptions,
    classes: &[String],
    report: &FolderReport,
    labels: &[u8],
    pixels: &[u8],
) -> crate::Result<()> {
    let header = CacheHeader {
        version: CACHE_VERSION,
        key: key.to_owned(),
        n: labels.len(),
        channels: image.channels,
        size: image.size,
        classes: classes.to_vec(),
        skipped: report.skipped.clone(),
    };
    let text = serde_json::to_vec(&header).expect("a header is plain data");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| crate::Error::Io {
            context: format!("creating {}", dir.display()),
            source,
        })?;
    }
    crate::files::write_atomic(path, |f| {
        let mut out = std::io::BufWriter::new(f);
        out.write_all(CACHE_MAGIC)?;
        out.write_all(&(text.len() as u64).to_le_bytes())?;
        out.write_all(&text)?;
        out.write_all(labels)?;
        out.write_all(pixels)?;
        out.flush()
    })
}
