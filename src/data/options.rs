//! How to load: where to look, whether to download, toy set sizes.
//!
//! Every environment lookup is a field, filled by [`LoadOptions::from_env`] in the binary and
//! left empty by `Default`, so tests point them at temporary folders and a loopback server
//! without touching the process environment.

use std::path::PathBuf;
use std::time::Duration;

/// Where the Debian dataset packages put their files.
pub const DEBIAN_DATASETS_ROOT: &str = "/usr/share/datasets";

#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// `--data-dir`: a folder holding the four files. When given, it is the only place looked.
    pub data_dir: Option<PathBuf>,
    /// `GANLAB_DATA`: a root with one folder per dataset (`$GANLAB_DATA/mnist/...`).
    pub ganlab_data: Option<PathBuf>,
    /// Cache root, overriding the XDG/HOME rule; datasets live in `<cache_dir>/<name>/`.
    pub cache_dir: Option<PathBuf>,
    /// `XDG_CACHE_HOME` (only an absolute path counts, as the XDG spec says).
    pub xdg_cache_home: Option<PathBuf>,
    /// `HOME`, for `~/.cache/ganlab` when `XDG_CACHE_HOME` is unset.
    pub home: Option<PathBuf>,
    /// Root of Debian's dataset packages; `None` skips that step.
    pub debian_root: Option<PathBuf>,
    /// Replaces every dataset's public mirrors (tests: a loopback server).
    pub mirrors: Option<Vec<String>>,
    pub allow_download: bool,
    /// Folder holding the subsets the project ships (`mnist-10k/`); `None` disables the fallback.
    pub fixtures_dir: Option<PathBuf>,
    pub download: DownloadConfig,
    /// No progress bars and no notice lines on stderr.
    pub quiet: bool,
    pub toy: ToyOptions,
    /// Size and channels of the images read from a folder.
    pub images: ImageOptions,
}

impl Default for LoadOptions {
    /// Nothing from the environment, no download, no fixtures, quiet.
    fn default() -> Self {
        LoadOptions {
            data_dir: None,
            ganlab_data: None,
            cache_dir: None,
            xdg_cache_home: None,
            home: None,
            debian_root: None,
            mirrors: None,
            allow_download: false,
            fixtures_dir: None,
            download: DownloadConfig::default(),
            quiet: true,
            toy: ToyOptions::default(),
            images: ImageOptions::default(),
        }
    }
}

impl LoadOptions {
    /// What the `ganlab` binary uses: the real environment, downloads on, and as the last
    /// resort the subset built into the binary.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        LoadOptions {
            ganlab_data: var("GANLAB_DATA"),
            xdg_cache_home: var("XDG_CACHE_HOME"),
            home: var("HOME"),
            debian_root: Some(PathBuf::from(DEBIAN_DATASETS_ROOT)),
            allow_download: true,
            // The shipped subset comes from the binary itself: no path of the build machine.
            fixtures_dir: None,
            download: DownloadConfig {
                proxy_from_env: true,
                ..DownloadConfig::default()
            },
            quiet: false,
            ..LoadOptions::default()
        }
    }

    /// The cache root: `cache_dir`, else `$XDG_CACHE_HOME/ganlab`, else `$HOME/.cache/ganlab`.
    pub fn cache_root(&self) -> Option<PathBuf> {
        self.cache_dir.clone().or_else(|| {
            self.xdg_cache_home
                .as_ref()
                .filter(|p| p.is_absolute())
                .map(|p| p.join("ganlab"))
                .or_else(|| self.home.as_ref().map(|h| h.join(".cache").join("ganlab")))
        })
    }
}

/// Network limits: short enough that an offline machine gives up in seconds, not minutes.
#[derive(Clone, Debug)]
pub struct DownloadConfig {
    pub connect_timeout: Duration,
    /// Longest silence while reading, so a stalled transfer fails instead of hanging.
    pub read_timeout: Duration,
    /// Whole-file limit.
    pub total_timeout: Duration,
    /// Honour `HTTP(S)_PROXY`/`NO_PROXY`; off by default so tests never leave loopback.
    pub proxy_from_env: bool,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        DownloadConfig {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(30 * 60),
            proxy_from_env: false,
        }
    }
}

/// What a folder's images become: `size` x `size` pixels (centre crop, then resize) with
/// `channels` 3 (RGB) or 1 (grey).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageOptions {
    pub size: usize,
    pub channels: usize,
}

impl Default for ImageOptions {
    /// 64x64 RGB: the DCGAN paper's setting.
    fn default() -> Self {
        ImageOptions {
            size: 64,
            channels: 3,
        }
    }
}

impl ImageOptions {
    /// The largest side accepted: past it one image outgrows what the models are built for.
    pub const MAX_SIZE: usize = 1024;

    pub fn item_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    pub fn validate(&self) -> super::Result<()> {
        if !(4..=Self::MAX_SIZE).contains(&self.size) {
            return Err(super::DataError::InvalidArgument(format!(
                "--image-size {} must be 4 to {}",
                self.size,
                Self::MAX_SIZE
            )));
        }
        if !matches!(self.channels, 1 | 3) {
            return Err(super::DataError::InvalidArgument(format!(
                "--channels {} must be 1 (grey) or 3 (RGB)",
                self.channels
            )));
        }
        Ok(())
    }
}

/// Size and seed of the generated toy sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToyOptions {
    pub seed: u64,
    pub train_size: usize,
    pub test_size: usize,
}

impl Default for ToyOptions {
    fn default() -> Self {
        ToyOptions {
            seed: 0,
            train_size: 10_000,
            test_size: 2_000,
        }
    }
}
