//! Downloads from the public mirrors into the cache.
//!
//! A file is streamed into a hidden `.<name>.<pid>.partial` beside its destination while being
//! hashed, checked for size and SHA-256, synced, and only then renamed into place: a file under
//! its real name is always a complete, verified one, and an interrupted download leaves at most a
//! `.partial` that nothing reads.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use super::options::DownloadConfig;
use super::registry::FileSpec;
use super::{DataError, Result};

pub struct Downloader {
    agent: ureq::Agent,
    progress: bool,
}

impl Downloader {
    pub fn new(cfg: &DownloadConfig, progress: bool) -> Self {
        let mut config = ureq::Agent::config_builder()
            .timeout_connect(Some(cfg.connect_timeout))
            .timeout_resolve(Some(cfg.connect_timeout))
            .timeout_per_read(Some(cfg.read_timeout))
            .timeout_global(Some(cfg.total_timeout))
            .user_agent(concat!("ganlab/", env!("CARGO_PKG_VERSION")));
        if !cfg.proxy_from_env {
            config = config.proxy(None);
        }
        Downloader {
            agent: config.build().into(),
            progress,
        }
    }

    /// Makes sure `dest_dir` holds every file of `files`, verified: files already there with the
    /// right checksum are kept, the others fetched from the first mirror that serves them. Stops
    /// at the first file no mirror could provide, so an offline machine fails after one file.
    pub fn fetch_set(&self, mirrors: &[String], files: &[FileSpec], dest_dir: &Path) -> Result<()> {
        fs::create_dir_all(dest_dir).map_err(|e| DataError::io(dest_dir, e))?;
        for spec in files {
            let dest = dest_dir.join(&spec.name);
            if dest.is_file() && sha256_file(&dest)? == spec.sha256 {
                continue;
            }
            self.fetch_any(mirrors, spec, dest_dir)?;
        }
        Ok(())
    }

    /// Fetches one file from the first mirror that delivers it intact; the error lists what each
    /// mirror did.
    pub fn fetch_any(
        &self,
        mirrors: &[String],
        spec: &FileSpec,
        dest_dir: &Path,
    ) -> Result<PathBuf> {
        let mut failures = Vec::new();
        for mirror in mirrors {
            match self.fetch(&file_url(mirror, &spec.name), spec, dest_dir) {
                Ok(path) => return Ok(path),
                Err(e) => failures.push(e),
            }
        }
        if failures.len() == 1 {
            return Err(failures.remove(0));
        }
        let reasons: Vec<String> = failures.iter().map(ToString::to_string).collect();
        Err(DataError::Download {
            what: spec.name.clone(),
            reason: if reasons.is_empty() {
                "no mirror configured".into()
            } else {
                format!("every mirror failed: {}", reasons.join("; "))
            },
        })
    }

    /// Fetches `url` into `dest_dir/<spec.name>`, verified against `spec`.
    pub fn fetch(&self, url: &str, spec: &FileSpec, dest_dir: &Path) -> Result<PathBuf> {
        let dest = dest_dir.join(&spec.name);
        let partial = dest_dir.join(format!(".{}.{}.partial", spec.name, std::process::id()));
        let result = self
            .stream_to(url, spec, &partial)
            .and_then(|()| fs::rename(&partial, &dest).map_err(|e| DataError::io(&dest, e)));
        match result {
            Ok(()) => {
                // Persist the rename too; failure here only risks a re-download after a crash.
                if let Ok(dir) = File::open(dest_dir) {
                    let _ = dir.sync_all();
                }
                Ok(dest)
            }
            Err(e) => {
                let _ = fs::remove_file(&partial);
                Err(e)
            }
        }
    }

    fn stream_to(&self, url: &str, spec: &FileSpec, partial: &Path) -> Result<()> {
        let failed = |reason: String| DataError::Download {
            what: url.to_owned(),
            reason,
        };
        let response = self
            .agent
            .get(url)
            .call()
            .map_err(|e| failed(e.to_string()))?;
        if let Some(len) = response.body().content_length() {
            if len != spec.size {
                return Err(failed(format!(
                    "the server announces {len} bytes, the published file has {}",
                    spec.size
                )));
            }
        }
        // The limit stops a server that keeps sending past the published size.
        let mut body = response
            .into_body()
            .into_with_config()
            .limit(spec.size)
            .reader();
        let file = File::create(partial).map_err(|e| DataError::io(partial, e))?;
        let mut out = BufWriter::new(file);
        let bar = self.progress_bar(spec);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut received = 0u64;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(failed(format!("after {received} bytes: {e}"))),
            };
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| DataError::io(partial, e))?;
            received += n as u64;
            bar.inc(n as u64);
        }
        bar.finish_and_clear();
        if received != spec.size {
            return Err(failed(format!(
                "received {received} of {} bytes",
                spec.size
            )));
        }
        check_sha256(url, &hex(hasher.finalize().as_slice()), &spec.sha256)?;
        let file = out
            .into_inner()
            .map_err(|e| DataError::io(partial, e.into_error()))?;
        file.sync_all().map_err(|e| DataError::io(partial, e))
    }

    fn progress_bar(&self, spec: &FileSpec) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let style = ProgressStyle::with_template(
            "{msg:28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .map_or_else(
            |_| ProgressStyle::default_bar(),
            |s| s.progress_chars("=> "),
        );
        ProgressBar::new(spec.size)
            .with_style(style)
            .with_message(spec.name.clone())
    }
}

/// `base` joined with a file name, whether or not `base` ends in `/`.
pub fn file_url(base: &str, name: &str) -> String {
    format!("{}/{name}", base.trim_end_matches('/'))
}

/// Lower-case hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).map_err(|e| DataError::io(path, e))?;
    Ok(hex(hasher.finalize().as_slice()))
}

/// SHA-256 of bytes in memory, as lowercase hex.
pub fn sha256_bytes(data: &[u8]) -> String {
    hex(Sha256::digest(data).as_slice())
}

/// Errors with [`DataError::Checksum`] unless `actual` is `expected`.
pub fn check_sha256(what: &str, actual: &str, expected: &str) -> Result<()> {
    if actual.eq_ignore_ascii_case(expected) {
        return Ok(());
    }
    Err(DataError::Checksum {
        what: what.to_owned(),
        expected: expected.to_owned(),
        actual: actual.to_owned(),
    })
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]])
        .map(char::from)
        .collect()
}
