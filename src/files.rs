//! Files a run writes: each replaced atomically (a crash at any point leaves either the old
//! file or the new one) through a temporary of our own naming, `.<name>.tmp-<pid>`, which any
//! failure removes and a new run sweeps up after a killed one.

use crate::{Error, Result};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `path` through `write` into a temporary file beside it, flushes it to disk, renames
/// it over `path` and flushes the directory. On any failure the temporary file is removed and
/// `path` is untouched.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<()> {
    let io_err = |source| Error::Io {
        context: format!("writing {}", path.display()),
        source,
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("path {} does not name a file", path.display())))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!("{TMP_MARK}{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        write(&mut file)?;
        file.flush()?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err)
}

const TMP_MARK: &str = ".tmp-";

/// Removes the temporaries that writers killed mid-write left in `dir` (ours: `.<name>.tmp-<pid>`
/// of another process); returns how many. A folder that cannot be listed has none.
pub(crate) fn remove_stale_temporaries(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let own = format!("{TMP_MARK}{}", std::process::id());
    let stale = |name: &str| {
        name.starts_with('.')
            && !name.ends_with(&own)
            && name
                .rsplit_once(TMP_MARK)
                .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| e.file_name().to_str().is_some_and(stale))
        .filter(|e| fs::remove_file(e.path()).is_ok())
        .count()
}

/// Makes the rename itself durable (POSIX: a directory entry is data of the directory).
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::write_atomic;
    use std::io::{self, Write};

    #[test]
    fn a_failure_mid_write_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck.safetensors");
        write_atomic(&path, |f| f.write_all(b"old checkpoint")).unwrap();
        let err = write_atomic(&path, |f| {
            f.write_all(b"half of a new")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old checkpoint");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            ["ck.safetensors"],
            "a temporary file was left behind"
        );

        write_atomic(&path, |f| f.write_all(b"new checkpoint")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new checkpoint");
    }

    #[test]
    fn stale_temporaries_of_other_processes_are_swept_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let own = format!(".ck.safetensors.tmp-{}", std::process::id());
        let names = [
            ".checkpoint.safetensors.tmp-12345",
            ".step_0000050.png.tmp-7",
            own.as_str(),
            "checkpoint.safetensors",
            ".hidden.tmp-notapid",
            "notes.tmp-3",
        ];
        for n in names {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        assert_eq!(super::remove_stale_temporaries(dir.path()), 2);
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want = vec![
            own.clone(),
            "checkpoint.safetensors".into(),
            ".hidden.tmp-notapid".into(),
            "notes.tmp-3".into(),
        ];
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn a_path_without_a_file_name_is_an_error() {
        assert!(write_atomic(std::path::Path::new("/"), |_| Ok(())).is_err());
    }
}
