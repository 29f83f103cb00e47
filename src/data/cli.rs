//! `ganlab data ...`: where a dataset resolves and what it holds, an explicit download, or a
//! generated folder of shapes.

use std::path::PathBuf;

use super::cifar::fetch_archive_set;
use super::registry::{self, Entry};
use super::resolve::fetch_image_set;
use super::{load, shapes, DataError, LoadOptions, Result};

pub const USAGE: &str = "\
usage: ganlab data info NAME [--data-dir DIR] [--no-download] [--seed N]
                             [--image-size S] [--channels 1|3]
       ganlab data fetch NAME [--data-dir DIR]
       ganlab data shapes DIR [--count N] [--seed N]
NAME is one of: mnist, fashion-mnist, cifar10, folder, toy-bimodal, toy-ring
info    shows where NAME resolves (and loads it), counts, shape and classes
        (folder: the images under --data-dir, as S x S, RGB or grey)
fetch   downloads NAME from its public mirrors into DIR or the user cache, verified
shapes  writes N coloured circles, squares and triangles (PNG and JPEG, 32 to 64 px) into
        DIR/<shape>/, a folder to try --dataset folder on [N: 3000]";

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
    let mut count = 3000;
    let mut words = rest.iter();
    while let Some(word) = words.next() {
        let mut value = |flag: &str| {
            words
                .next()
                .ok_or_else(|| usage(&format!("{flag} needs a value")))
        };
        let number = |flag: &str, v: &str| {
            v.parse::<usize>()
                .map_err(|_| usage(&format!("{flag} wants a whole number, not '{v}'")))
        };
        match word.as_str() {
            "--data-dir" => opts.data_dir = Some(PathBuf::from(value("--data-dir")?)),
            "--no-download" => opts.allow_download = false,
            "--seed" => opts.toy.seed = number("--seed", value("--seed")?)? as u64,
            "--image-size" => opts.images.size = number(word, value(word)?)?,
            "--channels" => opts.images.channels = number(word, value(word)?)?,
            "--count" => count = number(word, value(word)?)?,
            "-h" | "--help" => return Ok(format!("{USAGE}\n")),
            flag if flag.starts_with('-') => return Err(usage(&format!("unknown option {flag}"))),
            word if name.is_none() => name = Some(word),
            word => return Err(usage(&format!("unexpected argument '{word}'"))),
        }
    }
    let name = name.ok_or_else(|| usage("missing dataset NAME"))?;
    match command.as_str() {
        "info" => {
            let dataset = load(name, &opts)?;
            Ok(dataset.info())
        }
        "fetch" => match registry::lookup(name)? {
            Entry::Images(spec) => Ok(fetch_image_set(&spec, &opts)?.info()),
            Entry::Archive(spec) => Ok(fetch_archive_set(&spec, &opts)?.info()),
            Entry::Folder => Ok("folder reads your own images: there is nothing to fetch\n".into()),
            Entry::Toy(_) => Ok(format!(
                "{name} is generated from a seed: there is nothing to fetch\n"
            )),
        },
        "shapes" => {
            let dir = PathBuf::from(name);
            let written = shapes::write_folder(&dir, count, 32, opts.toy.seed)?;
            Ok(format!(
                "wrote {} images into {}/{{{}}}/; train on them with \
                 `ganlab train dcgan64 --dataset folder --data-dir {}`\n",
                written.len(),
                dir.display(),
                shapes::SHAPES.join(","),
                dir.display()
            ))
        }
        other => Err(usage(&format!("unknown data command '{other}'"))),
    }
}
