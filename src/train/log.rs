//! The metrics log: one CSV row per logged step, appended across resumed runs, flushed as it
//! goes so a crash loses at most the current row.

use crate::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// A log read back: column names, the steps, and one value vector per column.
pub type LogContents = (Vec<String>, Vec<f64>, Vec<Vec<f64>>);

pub struct MetricsLog {
    path: PathBuf,
    file: File,
    columns: Vec<String>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        context: format!("metrics log {}", path.display()),
        source: e,
    }
}

impl MetricsLog {
    /// Opens `path`; a new file gets the header `step,wall_s,<columns>`. Resuming at `from_step`
    /// drops rows logged after it (work the checkpoint does not contain), and refuses a log of
    /// other columns. A symbolic link is refused, not followed. The kept rows are rewritten
    /// atomically, so a crash here loses none.
    pub fn open(path: &Path, columns: &[&str], from_step: u64) -> Result<Self> {
        if path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(Error::Invalid(format!(
                "{} is a symbolic link; the metrics log is written only as a regular file (remove the link)",
                path.display()
            )));
        }
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let header = format!("step,wall_s,{}", columns.join(","));
        let mut kept = vec![header.clone()];
        if from_step > 0 && path.exists() {
            let mut old = BufReader::new(File::open(path).map_err(io(path))?).lines();
            let old_header = old
                .next()
                .transpose()
                .map_err(io(path))?
                .unwrap_or_default();
            if old_header != header {
                return Err(Error::Invalid(format!(
                    "{} has the columns `{old_header}`, this run logs `{header}`: resume with the settings it was started with (e.g. the same evaluation), or move the log away",
                    path.display()
                )));
            }
            for line in old {
                let line = line.map_err(io(path))?;
                let step: Option<u64> = line.split(',').next().and_then(|s| s.parse().ok());
                if step.is_some_and(|s| s <= from_step) {
                    kept.push(line);
                }
            }
        }
        crate::files::write_atomic(path, |f| {
            kept.iter().try_for_each(|line| writeln!(f, "{line}"))
        })?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io(path))?;
        Ok(MetricsLog {
            path: path.to_path_buf(),
            file,
            columns,
        })
    }

    /// Appends one row; `values` in the order of the columns (NaN for "not measured").
    pub fn row(&mut self, step: u64, wall_s: f64, values: &[f64]) -> Result<()> {
        let cells: Vec<String> = values
            .iter()
            .map(|v| {
                if v.is_nan() {
                    String::new()
                } else {
                    format!("{v:.6}")
                }
            })
            .collect();
        writeln!(self.file, "{step},{wall_s:.3},{}", cells.join(",")).map_err(io(&self.path))?;
        self.file.flush().map_err(io(&self.path))
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Reads a log back (NaN where a cell is empty).
    pub fn read(path: &Path) -> Result<LogContents> {
        let file = BufReader::new(File::open(path).map_err(io(path))?);
        let mut lines = file.lines();
        let header = lines
            .next()
            .transpose()
            .map_err(io(path))?
            .unwrap_or_default();
        let names: Vec<String> = header.split(',').skip(2).map(str::to_string).collect();
        let (mut steps, mut cols) = (Vec::new(), vec![Vec::new(); names.len()]);
        for line in lines {
            let line = line.map_err(io(path))?;
            let cells: Vec<&str> = line.split(',').collect();
            let Some(step) = cells.first().and_then(|s| s.parse::<f64>().ok()) else {
                continue;
            };
            steps.push(step);
            for (i, col) in cols.iter_mut().enumerate() {
                col.push(
                    cells
                        .get(i + 2)
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(f64::NAN),
                );
            }
        }
        Ok((names, steps, cols))
    }
}
