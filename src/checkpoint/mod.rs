//! Checkpoints as safetensors files, which PyTorch (`safetensors.torch.load_file`) and every
//! other safetensors reader open as they are.
//!
//! A checkpoint holds named entries: f32 tensors (parameters, buffers, optimiser state) and
//! u64 vectors (step counters, generator states), plus string metadata (the model's config).
//! The metadata also carries a format tag and a SHA-256 of everything else, so a corrupted file
//! is refused instead of loaded with wrong values. Files are replaced atomically.
//!
//! Restoring is checked as a whole before anything is written: every expected entry must be in
//! the file with the right dtype and shape, and the file must hold nothing else; the error lists
//! every difference.
//!
//! ```no_run
//! # use ganlab::{checkpoint::{Checkpoint, Targets}, nn::{Ctx, Linear}, optim::{Adam, Optimizer}, Device, Rng};
//! # fn main() -> ganlab::Result<()> {
//! # let mut rng = Rng::seed(0);
//! # let mut g = Linear::new(2, 2, &mut rng, &Device::Cpu)?;
//! # let mut opt = Optimizer::new(Adam::default(), 1e-3, ganlab::nn::Module::named_parameters(&g, "generator"))?;
//! let mut ck = Checkpoint::new();
//! ck.put("generator", &g)?;
//! ck.put("opt_g", &opt)?;
//! ck.put("rng", &rng)?;
//! ck.set_metadata("config", "{\"model\": \"dcgan\"}")?;
//! ck.save("run/checkpoint.safetensors")?;
//!
//! let ck = Checkpoint::load("run/checkpoint.safetensors")?;
//! let mut targets = Targets::new();
//! targets.add("generator", &mut g).add("opt_g", &mut opt).add("rng", &mut rng);
//! ck.restore(targets)?;
//! # Ok(()) }
//! ```

mod stateful;

pub use stateful::{Stateful, Targets};

use crate::{DType, Error, Result, Tensor};
use safetensors::{Dtype, SafeTensors, View};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::Path;

/// Metadata key and value that mark a file as ours.
const FORMAT_KEY: &str = "format";
const FORMAT: &str = "ganlab-checkpoint/1";
/// Metadata key of the SHA-256 over every entry and every other metadata pair.
const CHECKSUM_KEY: &str = "sha256";
/// Mismatches listed in one error before the rest are counted.
const MAX_LISTED: usize = 40;

#[derive(Clone, Debug, PartialEq)]
struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Entry {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// Named tensors and metadata, in memory; `save` and `load` move them to and from a file.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// Where it came from, for messages.
    source: String,
    entries: BTreeMap<String, Entry>,
    metadata: BTreeMap<String, String>,
    /// Read from a file without our format tag.
    foreign: bool,
}

impl Default for Checkpoint {
    fn default() -> Self {
        Checkpoint::new()
    }
}

impl Checkpoint {
    pub fn new() -> Checkpoint {
        Checkpoint {
            source: "(in memory)".into(),
            entries: BTreeMap::new(),
            metadata: BTreeMap::new(),
            foreign: false,
        }
    }

    /// Adds everything `item` saves (a module's parameters and buffers, an optimiser's state
    /// and step, a generator's state) under `prefix`.
    pub fn put(&mut self, prefix: &str, item: &(impl Stateful + ?Sized)) -> Result<()> {
        item.save_state(prefix, self)
    }

    /// Adds an f32 tensor's current values (read back from the GPU if it lives there).
    pub fn put_tensor(&mut self, name: &str, t: &Tensor) -> Result<()> {
        if t.dtype() != DType::F32 {
            return Err(Error::DType {
                op: "checkpoint",
                dtype: t.dtype(),
                hint: "checkpoints store f32 tensors",
            });
        }
        let data = t.to_vec()?.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.insert(name, Dtype::F32, t.shape().to_vec(), data)
    }

    /// Adds a vector of u64 (counters, generator states) as a 1-D U64 tensor.
    pub fn put_u64s(&mut self, name: &str, values: &[u64]) -> Result<()> {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.insert(name, Dtype::U64, vec![values.len()], data)
    }

    fn insert(&mut self, name: &str, dtype: Dtype, shape: Vec<usize>, data: Vec<u8>) -> Result<()> {
        if self.entries.contains_key(name) {
            return Err(Error::Checkpoint(format!(
                "entry {name} is written twice (two modules or layers share a name)"
            )));
        }
        self.entries
            .insert(name.to_string(), Entry { dtype, shape, data });
        Ok(())
    }

    /// Removes an entry; true if it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        self.entries.remove(name).is_some()
    }

    /// Entry names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.entries.keys().map(String::as_str).collect()
    }

    /// A free-form string, e.g. the model's config as JSON under "config".
    pub fn set_metadata(&mut self, key: &str, value: &str) -> Result<()> {
        if key == FORMAT_KEY || key == CHECKSUM_KEY {
            return Err(Error::Invalid(format!(
                "checkpoint metadata key \"{key}\" is reserved"
            )));
        }
        self.metadata.insert(key.to_string(), value.to_string());
        Ok(())
    }

    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// The file's bytes: safetensors with our format tag and checksum in `__metadata__`.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut meta: HashMap<String, String> = self.metadata.clone().into_iter().collect();
        meta.insert(FORMAT_KEY.into(), FORMAT.into());
        meta.insert(CHECKSUM_KEY.into(), self.checksum(FORMAT));
        safetensors::serialize(self.entries.iter(), Some(meta))
            .map_err(|e| Error::Checkpoint(format!("could not be serialised: {e}")))
    }

    /// Writes the checkpoint to `path` atomically: a crash mid-save leaves the previous file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let bytes = self.to_bytes()?;
        crate::files::write_atomic(path.as_ref(), |f| f.write_all(&bytes))
    }

    pub fn load(path: impl AsRef<Path>) -> Result<Checkpoint> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            context: format!("reading checkpoint {}", path.display()),
            source,
        })?;
        Checkpoint::from_bytes(&bytes, &path.display().to_string())
    }

    /// Parses a file's bytes; `source` names it in errors. Never panics on bad input.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Checkpoint> {
        let bad = |why: String| Error::Checkpoint(format!("{source}: {why}"));
        check_offsets(bytes).map_err(&bad)?;
        let unreadable = |e: safetensors::SafeTensorError| {
            bad(format!(
                "not a readable safetensors file ({e}); it is truncated, corrupted or not a checkpoint"
            ))
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(unreadable)?;
        let tensors = SafeTensors::deserialize(bytes).map_err(unreadable)?;
        let mut metadata: BTreeMap<String, String> = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let format = metadata.remove(FORMAT_KEY);
        let checksum = metadata.remove(CHECKSUM_KEY);
        match (&format, &checksum) {
            (Some(f), _) if f != FORMAT => {
                return Err(bad(format!(
                    "format \"{f}\" is not one this build reads (\"{FORMAT}\")"
                )))
            }
            // We always write both: one without the other is a damaged header.
            (Some(_), None) | (None, Some(_)) => {
                return Err(bad(format!(
                    "the header has one of \"{FORMAT_KEY}\" and \"{CHECKSUM_KEY}\" without the other: the file is corrupted"
                )))
            }
            _ => {}
        }
        let entries = tensors
            .iter()
            .map(|(name, view)| {
                let entry = Entry {
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    data: view.data().to_vec(),
                };
                (name.to_string(), entry)
            })
            .collect();
        let ck = Checkpoint {
            source: source.to_string(),
            entries,
            metadata,
            foreign: format.is_none(),
        };
        if let (Some(want), Some(f)) = (checksum, &format) {
            if ck.checksum(f) != want {
                return Err(bad(
                    "checksum mismatch: the file is corrupted (its values differ from what was saved)"
                        .into(),
                ));
            }
        }
        Ok(ck)
    }

    /// SHA-256 (hex) over the format tag, every entry and every metadata pair, each field
    /// length-prefixed so that no two different checkpoints hash the same bytes.
    fn checksum(&self, format: &str) -> String {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(format.as_bytes());
        for (name, e) in &self.entries {
            field(name.as_bytes());
            field(e.dtype.to_string().as_bytes());
            let shape: Vec<u8> = e
                .shape
                .iter()
                .flat_map(|&d| (d as u64).to_le_bytes())
                .collect();
            field(&shape);
            field(&e.data);
        }
        for (k, v) in &self.metadata {
            field(k.as_bytes());
            field(v.as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Checks that the file holds exactly what `targets` expect (names, dtypes, shapes), listing
    /// every difference in one error; only then writes the values into them.
    pub fn restore(&self, targets: Targets<'_>) -> Result<()> {
        let mut problems = Vec::new();
        let mut expected = HashSet::new();
        for (name, target) in targets.iter() {
            if !expected.insert(name) {
                problems.push(format!(
                    "{name} is expected twice (two targets share a name)"
                ));
                continue;
            }
            let (dtype, shape) = target.expected();
            match self.entries.get(name) {
                None => problems.push(format!("missing {name} ({dtype} {shape:?})")),
                Some(e) if e.dtype != dtype => problems.push(format!(
                    "{name} is {} in the file, {dtype} expected",
                    e.dtype
                )),
                Some(e) if e.shape != shape => problems.push(format!(
                    "{name} has shape {:?} in the file, {shape:?} expected",
                    e.shape
                )),
                Some(_) => {}
            }
        }
        for (name, e) in &self.entries {
            if !expected.contains(name.as_str()) {
                problems.push(format!("unexpected {name} ({} {:?})", e.dtype, e.shape));
            }
        }
        if !problems.is_empty() {
            return Err(self.mismatch_report(problems));
        }
        for (name, target) in targets.into_iter() {
            // Present with the right dtype and shape: checked above.
            if let Some(e) = self.entries.get(&name) {
                target.apply(&e.data, &e.shape)?;
            }
        }
        Ok(())
    }

    fn mismatch_report(&self, problems: Vec<String>) -> Error {
        let total = problems.len();
        let mut msg = format!(
            "{} does not match what is being restored ({total} difference{}):",
            self.source,
            if total == 1 { "" } else { "s" }
        );
        for p in problems.iter().take(MAX_LISTED) {
            msg.push_str("\n  - ");
            msg.push_str(p);
        }
        if total > MAX_LISTED {
            msg.push_str(&format!("\n  ... and {} more", total - MAX_LISTED));
        }
        if self.foreign {
            msg.push_str("\n(the file has no ganlab format tag: it was not written by ganlab)");
        }
        Error::Checkpoint(msg)
    }
}

/// Rejects a header whose data offsets point past the end of the file, before the
/// safetensors parser adds them up (crafted offsets near usize::MAX would overflow there).
fn check_offsets(bytes: &[u8]) -> std::result::Result<(), String> {
    let Some(len) = bytes.get(..8) else {
        return Ok(()); // too short: the parser reports it
    };
    let mut n = [0u8; 8];
    n.copy_from_slice(len);
    let n = u64::from_le_bytes(n);
    let Some(header) = usize::try_from(n)
        .ok()
        .and_then(|n| bytes.get(8..8usize.checked_add(n)?))
    else {
        return Ok(()); // the parser reports a bad length
    };
    let Ok(text) = std::str::from_utf8(header) else {
        return Ok(());
    };
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) else {
        return Ok(());
    };
    let data_len = (bytes.len() - 8 - header.len()) as u64;
    for (name, info) in &map {
        let end = info
            .get("data_offsets")
            .and_then(|o| o.get(1))
            .and_then(serde_json::Value::as_u64);
        if matches!(end, Some(end) if end > data_len) {
            return Err(format!(
                "entry {name} claims data past the end of the file (truncated or corrupted)"
            ));
        }
    }
    Ok(())
}
