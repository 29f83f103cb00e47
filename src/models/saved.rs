//! The checkpoint layout every model shares: its parts under their prefixes, the run state
//! (`run.step`, `run.rng`), and metadata naming the model kind, its config, the wall time and
//! the run's settings (what the command line started it with).

use super::RunState;
use crate::checkpoint::{Checkpoint, Stateful, Targets};
use crate::{Error, Result};
use std::path::Path;

/// Writes `parts` and `state` atomically to `path`.
pub fn save(
    path: &Path,
    kind: &str,
    config: &str,
    parts: &[(&str, &dyn Stateful)],
    state: &RunState,
) -> Result<()> {
    let mut ck = Checkpoint::new();
    for (prefix, part) in parts {
        ck.put(prefix, *part)?;
    }
    ck.put_u64s("run.rng", &state.rng)?;
    ck.put_u64s("run.step", &[state.step])?;
    ck.set_metadata("model", kind)?;
    ck.set_metadata("config", config)?;
    ck.set_metadata("wall_s", &state.wall_s.to_string())?;
    ck.set_metadata(SETTINGS, &state.settings)?;
    ck.save(path)
}

const SETTINGS: &str = "run";

/// The model kind a checkpoint holds, read without restoring anything.
pub fn kind(path: &Path) -> Result<String> {
    required(path, "model", "model kind")
}

/// The config string a checkpoint was saved with.
pub fn config(path: &Path) -> Result<String> {
    required(path, "config", "model config")
}

/// The run settings a checkpoint was saved with (`None` from versions that saved none).
pub fn settings(path: &Path) -> Result<Option<String>> {
    Ok(Checkpoint::load(path)?
        .metadata(SETTINGS)
        .map(str::to_string))
}

fn required(path: &Path, key: &str, what: &str) -> Result<String> {
    let ck = Checkpoint::load(path)?;
    ck.metadata(key)
        .map(str::to_string)
        .ok_or_else(|| Error::Checkpoint(format!("{}: no {what} in its metadata", path.display())))
}

/// A string from a file, fit to print: quoted, control characters escaped, at most 60
/// characters (a hostile checkpoint's metadata can be megabytes of terminal escapes).
pub fn quoted(text: &str) -> String {
    const MAX: usize = 60;
    let shown: String = text.chars().take(MAX).collect();
    let more = if text.chars().nth(MAX).is_some() {
        "..."
    } else {
        ""
    };
    format!("\"{}{more}\"", shown.escape_debug())
}

/// Restores what `save` wrote into `parts` (every entry must match), after checking that the
/// checkpoint holds a `kind` model.
pub fn load(path: &Path, kind: &str, parts: Vec<(&str, &mut dyn Stateful)>) -> Result<RunState> {
    let ck = Checkpoint::load(path)?;
    // The kind first, for a clearer message than a list of mismatched names.
    if ck.metadata("model") != Some(kind) {
        let found = match ck.metadata("model") {
            Some(model) => format!("holds the model {}", quoted(model)),
            None => "names no model (not a ganlab checkpoint?)".into(),
        };
        return Err(Error::Checkpoint(format!(
            "{}: {found}, not {kind}",
            path.display()
        )));
    }
    let (mut rng, mut step) = ([0u64; 7], 0u64);
    {
        let mut targets = Targets::new();
        for (prefix, part) in parts {
            targets.add(prefix, part);
        }
        targets.u64s("run.rng".into(), 7, |v| rng.copy_from_slice(v));
        targets.u64s("run.step".into(), 1, |v| step = v[0]);
        ck.restore(targets)?;
    }
    let wall_s = ck
        .metadata("wall_s")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let settings = ck.metadata(SETTINGS).unwrap_or_default().to_string();
    Ok(RunState {
        step,
        rng,
        wall_s,
        settings,
    })
}

/// `save_checkpoint` and `load_checkpoint` of a `Trainable` whose checkpoint is the listed
/// fields under the listed prefixes, from one list so the two cannot drift apart:
/// `checkpoint_methods!(self, kind: &self.kind, config: self.config(), parts: ["generator" =>
/// generator])` (`self` is passed in so the expressions may use it).
macro_rules! checkpoint_methods {
    ($self:ident, kind: $kind:expr, config: $config:expr, parts: [$($name:literal => $field:ident),+ $(,)?]) => {
        fn save_checkpoint(
            &$self,
            path: &std::path::Path,
            state: &$crate::models::RunState,
        ) -> $crate::Result<()> {
            $crate::models::saved::save(
                path,
                $kind,
                &$config,
                &[$(($name, &$self.$field)),+],
                state,
            )
        }

        fn load_checkpoint(
            &mut $self,
            path: &std::path::Path,
        ) -> $crate::Result<$crate::models::RunState> {
            let kind = $kind.to_string();
            $crate::models::saved::load(path, &kind, vec![$(($name, &mut $self.$field)),+])
        }
    };
}
pub(crate) use checkpoint_methods;

#[cfg(test)]
mod tests {
    use super::quoted;

    #[test]
    fn metadata_is_quoted_escaped_and_truncated() {
        assert_eq!(quoted("dcgan"), "\"dcgan\"");
        assert_eq!(quoted("a\u{1b}[2Jb"), "\"a\\u{1b}[2Jb\"");
        let long = quoted(&"x".repeat(50_000_000));
        assert!(
            long.len() < 70 && long.ends_with("...\""),
            "{}",
            &long[..20]
        );
    }
}
