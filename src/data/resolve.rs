//! Where an image dataset's files come from, in this order:
//!
//! 1. `--data-dir DIR` (the files directly in DIR). When given it is the only place looked: a
//!    typo must not silently train on some other copy.
//! 2. `$GANLAB_DATA/<name>/`
//! 3. the user cache, `$XDG_CACHE_HOME/ganlab/<name>/` or `~/.cache/ganlab/<name>/`
//! 4. the Debian package folder (`/usr/share/datasets/fashion-mnist` for Fashion-MNIST)
//! 5. a download from the public mirrors into the cache (see [`super::download`])
//! 6. the subset the project ships, when the dataset has one (MNIST: `fixtures/mnist-10k/`),
//!    checked against its known SHA-256 sums and announced in one line.
//!
//! A folder counts when it holds all four files, gzip or unpacked. A folder that counts but holds
//! bad files is an error, not a reason to move on: silently skipping a corrupt copy would hide it.
//! When nothing works the error lists every place and what was wrong there.

use std::path::{Path, PathBuf};

use super::dataset::{Dataset, Rule, Source, Split};
use super::download::{check_sha256, sha256_bytes, sha256_file, Downloader};
use super::idx::{parse_idx, read_idx_file, IdxArray, IdxKind};
use super::options::LoadOptions;
use super::registry::{FileRole, FileSpec, ImageSetSpec};
use super::{DataError, Result};

/// Loads `spec` from the first place of the resolution order that has it.
pub fn load_image_set(spec: &ImageSetSpec, opts: &LoadOptions) -> Result<Dataset> {
    if let Some(dir) = &opts.data_dir {
        return load_explicit(spec, dir);
    }
    // What each place lacked, for the error when none works.
    let mut looked = Vec::new();
    let mut asked = Vec::new();
    for (rule, label, dir, unset) in local_places(spec, opts) {
        let Some(dir) = dir else {
            looked.push(format!("{label}: {unset}"));
            continue;
        };
        match find_files(&dir, &spec.files) {
            Ok(paths) => return load_dir(spec, &paths, source(rule, &dir)),
            Err(why) => {
                let why = format!("{label} {}: {why}", dir.display());
                // A folder the user named and we could not use is said, not skipped silently.
                if rule == Rule::GanlabData {
                    asked.push(why.clone());
                }
                looked.push(why);
            }
        }
    }
    // Short reasons for the one-line fallback notice; the full ones go in the list.
    let why_no_download = match (opts.cache_root(), opts.allow_download) {
        (_, false) => {
            looked.push("download: disabled".into());
            "download disabled"
        }
        (None, true) => {
            looked.push("download: no cache folder to download into".into());
            "no cache folder to download into"
        }
        (Some(root), true) => {
            let cache = root.join(&spec.name);
            match download(spec, opts, &cache) {
                Ok(paths) => return load_dir(spec, &paths, source(Rule::Downloaded, &cache)),
                Err(e) => {
                    looked.push(format!("download into {}: {e}", cache.display()));
                    "download failed"
                }
            }
        }
    };
    if spec.fallback.is_some() {
        asked.push(why_no_download.into());
        match load_fallback(spec, opts, &asked.join("; ")) {
            Ok(ds) => return Ok(ds),
            Err(why) => looked.push(why),
        }
    }
    Err(not_found(spec, &looked))
}

fn load_explicit(spec: &ImageSetSpec, dir: &Path) -> Result<Dataset> {
    match find_files(dir, &spec.files) {
        Ok(paths) => load_dir(spec, &paths, source(Rule::DataDir, dir)),
        Err(why) => Err(DataError::NotFound(format!(
            "{} ({}) not found in --data-dir {}: {why}.\nFix: that folder must hold {}; \
             or leave out --data-dir to use GANLAB_DATA, the user cache or a download.",
            spec.title,
            spec.name,
            dir.display(),
            file_list(spec)
        ))),
    }
}

/// Steps 2-4: (rule, label, folder if configured, why it is not).
fn local_places(
    spec: &ImageSetSpec,
    opts: &LoadOptions,
) -> Vec<(Rule, &'static str, Option<PathBuf>, &'static str)> {
    let in_root = |root: Option<&PathBuf>| root.map(|r| r.join(&spec.name));
    let mut places = vec![
        (
            Rule::GanlabData,
            "GANLAB_DATA",
            in_root(opts.ganlab_data.as_ref()),
            "not set",
        ),
        (
            Rule::Cache,
            "user cache",
            in_root(opts.cache_root().as_ref()),
            "neither XDG_CACHE_HOME nor HOME is set",
        ),
    ];
    if let Some(sub) = &spec.debian_subdir {
        let dir = opts.debian_root.as_ref().map(|root| root.join(sub));
        places.push((Rule::Debian, "Debian package folder", dir, "disabled"));
    }
    places
}

/// Step 6: the shipped subset, from the fixtures folder where one is configured, else the copy
/// built into the binary; checked against its checksums and announced; or why not.
fn load_fallback(
    spec: &ImageSetSpec,
    opts: &LoadOptions,
    why_no_download: &str,
) -> std::result::Result<Dataset, String> {
    let fallback = spec.fallback.as_ref().ok_or("no shipped subset")?;
    let notice = format!(
        "full {} not available ({why_no_download}); {}",
        spec.name, fallback.notice
    );
    let announce = |mut src: Source| {
        if opts.quiet {
            src.notice = Some(notice.clone());
        } else {
            eprintln!("note: {notice}");
        }
        src
    };
    let folder = match &opts.fixtures_dir {
        Some(fixtures) => {
            let dir = fixtures.join(&fallback.subdir);
            find_files(&dir, &fallback.files)
                .and_then(|p| verify(&fallback.files, p))
                .map(|paths| (dir.clone(), paths))
                .map_err(|why| format!("shipped subset {}: {why}", dir.display()))
        }
        None => Err("shipped subset: no fixtures folder configured".into()),
    };
    match (folder, fallback.embedded) {
        // Files matching their checksums load; should they not, the reason joins the list.
        (Ok((dir, paths)), _) => {
            load_dir(spec, &paths, announce(source(Rule::Fixture, &dir))).map_err(|e| e.to_string())
        }
        (Err(_), Some(bytes)) => {
            let src = announce(Source {
                rule: Rule::Embedded,
                dir: None,
                notice: None,
            });
            load_embedded(spec, &fallback.files, bytes, src)
                .map_err(|e| format!("built-in subset: {e}"))
        }
        (Err(why), None) => Err(why),
    }
}

/// The subset compiled into the binary, checked against its checksums like any file.
fn load_embedded(
    spec: &ImageSetSpec,
    files: &[FileSpec],
    bytes: [&[u8]; 4],
    source: Source,
) -> Result<Dataset> {
    assemble(spec, source, |role| {
        let (file, data) = files
            .iter()
            .zip(bytes)
            .find(|(f, _)| f.role == role)
            .ok_or_else(|| no_file(spec, role))?;
        check_sha256(&file.name, &sha256_bytes(data), &file.sha256)?;
        let path = PathBuf::from(format!("<built-in>/{}", file.name));
        match parse_idx(data, idx_kind(role)) {
            Ok(array) => Ok((path, array)),
            Err(source) => Err(DataError::Idx { path, source }),
        }
    })
}

/// `ganlab data fetch`: downloads into `--data-dir` or the user cache (keeping files already
/// there and verified), then loads the result.
pub fn fetch_image_set(spec: &ImageSetSpec, opts: &LoadOptions) -> Result<Dataset> {
    let (dest, rule) = fetch_destination(&spec.name, opts)?;
    let paths = download(spec, opts, &dest)?;
    load_dir(spec, &paths, source(rule, &dest))
}

/// Where `ganlab data fetch NAME` downloads to: `--data-dir`, else the user cache's folder for
/// the dataset; and the rule the loaded set then reports.
pub(super) fn fetch_destination(name: &str, opts: &LoadOptions) -> Result<(PathBuf, Rule)> {
    match (&opts.data_dir, opts.cache_root()) {
        (Some(dir), _) => Ok((dir.clone(), Rule::DataDir)),
        (None, Some(root)) => Ok((root.join(name), Rule::Downloaded)),
        (None, None) => Err(DataError::Usage(
            "no cache folder (neither XDG_CACHE_HOME nor HOME is set); pass --data-dir DIR".into(),
        )),
    }
}

/// Each file's role and where it is.
type Found = Vec<(FileRole, PathBuf)>;

fn download(spec: &ImageSetSpec, opts: &LoadOptions, dest: &Path) -> Result<Found> {
    let mirrors = opts.mirrors.as_ref().unwrap_or(&spec.mirrors);
    Downloader::new(&opts.download, !opts.quiet).fetch_set(mirrors, &spec.files, dest)?;
    Ok(spec
        .files
        .iter()
        .map(|f| (f.role, dest.join(&f.name)))
        .collect())
}

/// Where each of `files` is in `dir` (published gzip name first, then unpacked), in `files`
/// order; or what is missing, as text for the "looked in" list.
fn find_files(dir: &Path, files: &[FileSpec]) -> std::result::Result<Found, String> {
    if !dir.is_dir() {
        return Err("no such folder".into());
    }
    // A folder we may not list is not "missing files".
    if let Err(e) = std::fs::read_dir(dir) {
        return Err(format!("cannot be read ({e})"));
    }
    let mut found = Vec::with_capacity(files.len());
    let mut missing = Vec::new();
    for f in files {
        let candidates = [dir.join(&f.name), dir.join(f.plain_name())];
        match candidates.into_iter().find(|p| p.is_file()) {
            Some(p) => found.push((f.role, p)),
            None => missing.push(f.name.as_str()),
        }
    }
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(format!("missing {}", missing.join(", ")))
    }
}

/// Checks found files (in `files` order, as [`find_files`] gives them) against their sums.
fn verify(files: &[FileSpec], found: Found) -> std::result::Result<Found, String> {
    for (spec, (_, path)) in files.iter().zip(&found) {
        sha256_file(path)
            .and_then(|actual| check_sha256(&spec.name, &actual, &spec.sha256))
            .map_err(|e| e.to_string())?;
    }
    Ok(found)
}

fn load_dir(spec: &ImageSetSpec, found: &Found, source: Source) -> Result<Dataset> {
    assemble(spec, source, |role| {
        let path = found
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, p)| p)
            .ok_or_else(|| no_file(spec, role))?;
        Ok((path.clone(), read_idx_file(path, idx_kind(role))?))
    })
}

/// A dataset from its four IDX arrays, each got by role from `read` with the path its errors
/// name.
fn assemble(
    spec: &ImageSetSpec,
    source: Source,
    read: impl Fn(FileRole) -> Result<(PathBuf, IdxArray)>,
) -> Result<Dataset> {
    let split = |images, labels| -> Result<Split> {
        let (images_path, images) = read(images)?;
        let (labels_path, labels) = read(labels)?;
        Split::from_idx(
            [(&images_path, images), (&labels_path, labels)],
            (spec.rows, spec.cols),
            spec.classes.len(),
        )
    };
    Ok(Dataset {
        name: spec.name.clone(),
        train: split(FileRole::TrainImages, FileRole::TrainLabels)?,
        test: split(FileRole::TestImages, FileRole::TestLabels)?,
        classes: spec.classes.clone(),
        source,
    })
}

fn idx_kind(role: FileRole) -> IdxKind {
    match role {
        FileRole::TrainLabels | FileRole::TestLabels => IdxKind::Labels,
        // An archive is not an IDX file; `idx_kind` is only asked about the four roles.
        FileRole::TrainImages | FileRole::TestImages | FileRole::Archive => IdxKind::Images,
    }
}

fn no_file(spec: &ImageSetSpec, role: FileRole) -> DataError {
    DataError::InvalidArgument(format!("{}: no {role:?} file", spec.name))
}

fn source(rule: Rule, dir: &Path) -> Source {
    Source {
        rule,
        dir: Some(dir.to_owned()),
        notice: None,
    }
}

fn file_list(spec: &ImageSetSpec) -> String {
    let names: Vec<&str> = spec.files.iter().map(|f| f.name.as_str()).collect();
    format!("{} (gzip, or unpacked without .gz)", names.join(", "))
}

fn not_found(spec: &ImageSetSpec, looked: &[String]) -> DataError {
    let places: Vec<String> = looked
        .iter()
        .enumerate()
        .map(|(i, place)| format!("  {}. {place}\n", i + 1))
        .collect();
    let apt = spec
        .debian_package
        .as_ref()
        .map(|pkg| format!(", or `apt-get install {pkg}`"))
        .unwrap_or_default();
    DataError::NotFound(format!(
        "{title} ({name}) not found. Looked in:\n{places}Fix: pass --data-dir DIR with {files}, \
         or put them in $GANLAB_DATA/{name}/, or run `ganlab data fetch {name}` with network \
         access{apt}.",
        title = spec.title,
        name = spec.name,
        places = places.concat(),
        files = file_list(spec),
    ))
}
