//! Checkpoints in the safetensors format (readable by `safetensors.torch.load_file`): every
//! named tensor as f32, and the run's scalars (step, RNG state, config, optimiser step) as
//! string metadata. Written atomically; loading validates every name, dtype and shape and
//! reports all mismatches at once.

use crate::{Error, Result, Tensor};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

/// Marks our files, so a foreign safetensors file is reported as such.
pub const FORMAT_KEY: &str = "format";
pub const FORMAT: &str = "ganlab-checkpoint-1";

fn err(path: &Path, detail: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.display().to_string(),
        detail: detail.into(),
    }
}

/// Writes `tensors` and `metadata` to `path` through a temporary file in the same folder,
/// fsynced and renamed over the old file: a crash mid-save leaves the previous checkpoint.
pub fn save(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let host: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(name, t)| {
            Ok((
                name.clone(),
                bytemuck::cast_slice(&t.to_vec()?).to_vec(),
                t.shape().to_vec(),
            ))
        })
        .collect::<Result<_>>()?;
    let views = host
        .iter()
        .map(|(name, bytes, shape)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| err(path, format!("tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut meta: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    meta.insert(FORMAT_KEY.into(), FORMAT.into());
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| err(path, e.to_string()))?;

    let io = |e: std::io::Error| err(path, format!("write failed: {e}"));
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("checkpoint"),
        std::process::id()
    ));
    {
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    // Persist the rename itself.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The metadata of a checkpoint (validating the file and its format tag), without its tensors.
pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    let bytes = std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| {
        err(
            path,
            format!("not a valid safetensors file (truncated or corrupt?): {e}"),
        )
    })?;
    let metadata: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    if metadata.get(FORMAT_KEY).map(String::as_str) != Some(FORMAT) {
        return Err(err(
            path,
            "not a ganlab checkpoint (safetensors file without ganlab's format tag)",
        ));
    }
    Ok(metadata)
}

/// Reads `path` into the given tensors (in place, on their devices) and returns the metadata.
/// Nothing is written unless every expected tensor is present with the right dtype and shape
/// and nothing unexpected is there.
pub fn load(path: &Path, into: &[(String, Tensor)]) -> Result<BTreeMap<String, String>> {
    let bytes = std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| {
        err(
            path,
            format!("not a valid safetensors file (truncated or corrupt?): {e}"),
        )
    })?;
    let metadata = read_metadata(path)?;
    let mut problems = Vec::new();
    let mut found = Vec::new();
    for (name, t) in into {
        match st.tensor(name) {
            Err(_) => problems.push(format!("missing {name} (expected shape {:?})", t.shape())),
            Ok(view) if view.dtype() != Dtype::F32 => {
                problems.push(format!("{name}: dtype {:?}, expected F32", view.dtype()))
            }
            Ok(view) if view.shape() != t.shape() => problems.push(format!(
                "{name}: shape {:?}, expected {:?}",
                view.shape(),
                t.shape()
            )),
            Ok(view) => found.push((t, view)),
        }
    }
    let expected: std::collections::HashSet<&str> = into.iter().map(|(n, _)| n.as_str()).collect();
    let mut unexpected: Vec<&str> = st
        .names()
        .into_iter()
        .filter(|n| !expected.contains(n))
        .collect();
    unexpected.sort_unstable();
    problems.extend(unexpected.iter().map(|n| format!("unexpected {n}")));
    if !problems.is_empty() {
        return Err(err(
            path,
            format!(
                "does not match this model ({} problems): {}",
                problems.len(),
                problems.join("; ")
            ),
        ));
    }
    for (t, view) in found {
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        t.assign(&Tensor::from_vec(values, t.shape(), &t.device())?)?;
    }
    Ok(metadata)
}

/// A metadata value parsed, or a clear error naming the key.
pub fn meta_value<T: std::str::FromStr>(
    path: &Path,
    meta: &BTreeMap<String, String>,
    key: &str,
) -> Result<T> {
    meta.get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| err(path, format!("metadata {key} missing or malformed")))
}
