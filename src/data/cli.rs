//! `ganlab data ...`: where a dataset resolves and what it holds, or an explicit download.

use std::path::PathBuf;

use super::registry::{self, Entry};
use super::resolve::fetch_image_set;
use super::{load, DataError, LoadOptions, Result};

pub const USAGE: &str = "\
usage: ganlab data info NAME [--data-dir DIR] [--no-download] [--seed N]
       ganlab data fetch NAME [--data-dir DIR]
NAME is one of: mnist, fashion-mnist, toy-bimodal, toy-ring
info   shows where NAME resolves (and loads it), counts, shape and classes
fetch  downloads NAME from its public mirrors into DIR or the user cache, verified";

/// Runs `ganlab data ARGS...` (`args` are the words after `data`) and prints the report.
pub fn data_command(args: &[String]) -> Result<()> {
    print!("{}", run(args, LoadOptions::from_env())?);
    Ok(())
}

/// [`data_command`] with the options given and the report returned rather than printed.
pub fn run(args: &[String], mut opts: LoadOptions) -> Result<String> {
    let usage = |msg: &str| DataError::Usage(format!("{msg}\n{USAGE}"));
    let Some((command, rest)) = args.split_first() else {
        return Err(usage("missing command"));
    };
    if matches!(command.as_str(), "help" | "-h" | "--help") {
        return Ok(format!("{USAGE}\n"));
    }
    let mut name = None;
    let mut words = rest.iter();
    while let Some(word) = words.next() {
        let mut value = |flag: &str| {
            words
                .next()
                .ok_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match word.as_str() {
            "--data-dir" => opts.data_dir = Some(PathBuf::from(value("--data-dir")?)),
            "--no-download" => opts.allow_download = false,
            "--seed" => {
                let v = value("--seed")?;
                opts.toy.seed = v
                    .parse()
                    .map_err(|_| usage(&format!("--seed wants a whole number, not '{v}'")))?;
            }
            "-h" | "--help" => return Ok(format!("{USAGE}\n")),
            flag if flag.starts_with('-') => return Err(usage(&format!("unknown option {flag}"))),
            word if name.is_none() => name = Some(word),
            word => return Err(usage(&format!("unexpected argument '{word}'"))),
        }
    }
    let name = name.ok_or_else(|| usage("missing dataset NAME"))?;
    match command.as_str() {
        "info" => Ok(load(name, &opts)?.info()),
        "fetch" => match registry::lookup(name)? {
            Entry::Images(spec) => Ok(fetch_image_set(&spec, &opts)?.info()),
            Entry::Toy(_) => Ok(format!(
                "{name} is generated from a seed: there is nothing to fetch\n"
            )),
        },
        other => Err(usage(&format!("unknown data command '{other}'"))),
    }
}
