//! ortl-split: class folders to manifest.csv.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use ortl_cli::{Output, usage};
use ortl_imaging::DecodeLimits;
use ortl_imaging::files::DEFAULT_EXTENSIONS;
use ortl_manifest::{ManifestRow, Split, manifest, paths};
use ortl_split::{SplitPlan, Verify, assign, scan, verify};

/// Lists the images of a class-folder data set and assigns each to a split.
///
/// DATA_DIR holds one sub-folder per class, as Keras'
/// image_dataset_from_directory reads it; class names are sorted and a class's
/// label is its index in that order. Every image is decoded once (in parallel) so
/// that corrupt files are caught now: each is reported on stderr and left out (or
/// fatal with --strict). Per-class counts per split go to stderr.
///
/// Output: manifest.csv with columns path,label,class,split. Paths are written
/// relative to the manifest's folder (to the working directory with -o -). The
/// same seed and files give a byte-identical manifest.
///
/// EXAMPLES:
///     ortl-split data/xray -o work/manifest.csv
///     ortl-split data/xray --val 0.2 --test 0.1 --seed 12 -o manifest.csv
///     ortl-split data/xray --folds 5 -o - | cut -d, -f3,4 | sort | uniq -c
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Folder with one sub-folder of images per class.
    data_dir: PathBuf,
    /// Output manifest (`-` for stdout).
    #[arg(short, long, default_value = "-")]
    output: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    force: bool,
    /// Fraction of each class for validation.
    #[arg(long, default_value_t = 0.2)]
    val: f64,
    /// Fraction of each class held out for testing.
    #[arg(long, default_value_t = 0.0)]
    test: f64,
    /// Seed of the shuffle (the tutorial uses 12).
    #[arg(long, default_value_t = 12)]
    seed: u64,
    /// Shuffle all images together instead of per class.
    #[arg(long)]
    no_stratify: bool,
    /// K-fold cross-validation: the split column holds the fold number 0..K-1 (after
    /// holding out --test); --val is not used.
    #[arg(long, value_name = "K")]
    folds: Option<u32>,
    /// Image extensions to include, comma-separated, case-insensitive.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_EXTENSIONS.map(String::from))]
    ext: Vec<String>,
    /// How much of each file to read to check it.
    #[arg(long, value_enum, default_value_t = Verify::Full)]
    verify: Verify,
    /// Fail (exit 1) on the first unreadable image instead of leaving it out.
    #[arg(long)]
    strict: bool,
    /// Largest image accepted, in pixels (width × height).
    #[arg(long, default_value_t = DecodeLimits::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    /// Worker threads for decoding (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> std::process::ExitCode {
    ortl_cli::main_with("ortl-split", run)
}

fn run(args: Args) -> Result<()> {
    let plan = SplitPlan {
        val: if args.folds.is_some() { 0.0 } else { args.val },
        test: args.test,
        seed: args.seed,
        stratify: !args.no_stratify,
        folds: args.folds,
    };
    plan.validate().map_err(usage)?;
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()?;
    }

    // Refused before any image is read when it exists and --force is not given.
    let mut out = Output::create(&args.output, args.force)?;
    let found = scan(&args.data_dir, &args.ext).map_err(|e| {
        if e.is_usage() {
            usage(e.to_string())
        } else {
            e.into()
        }
    })?;
    let candidates: Vec<PathBuf> = found.files.concat();
    let progress = ortl_cli::progress::bar(candidates.len() as u64, "checking");
    let limits = DecodeLimits {
        max_pixels: args.max_pixels,
    };
    let (readable, errors) = verify(&candidates, args.verify, limits, || progress.inc(1));
    progress.finish_and_clear();
    if args.strict
        && let Some(first) = errors.first()
    {
        anyhow::bail!("{first} (--strict; {} unreadable in all)", errors.len());
    }
    for err in &errors {
        eprintln!("ortl-split: warning: left out {err}");
    }

    let mut readable = readable.into_iter();
    let kept: Vec<Vec<PathBuf>> = found
        .files
        .iter()
        .map(|files| {
            files
                .iter()
                .filter(|_| readable.next() == Some(true))
                .cloned()
                .collect()
        })
        .collect();
    if let Some(class) = kept.iter().position(Vec::is_empty) {
        return Err(usage(format!(
            "{}: no readable images left in class '{}'",
            args.data_dir.display(),
            found.classes[class]
        )));
    }

    let counts: Vec<usize> = kept.iter().map(Vec::len).collect();
    let splits = assign(&counts, &plan);
    let base = paths::base_dir(&args.output);
    let mut rows = Vec::with_capacity(candidates.len());
    for (label, (files, splits)) in kept.iter().zip(&splits).enumerate() {
        for (file, &split) in files.iter().zip(splits) {
            rows.push(ManifestRow {
                path: paths::relative_to(&base, file),
                label,
                class: found.classes[label].clone(),
                split,
            });
        }
    }

    manifest::write(&mut out, &rows).context("writing the manifest")?;
    out.flush().context("writing the manifest")?;
    out.finish()?;
    summarize(&found.classes, &rows, errors.len(), found.skipped);
    Ok(())
}

/// The per-class, per-split table on stderr.
fn summarize(classes: &[String], rows: &[ManifestRow], unreadable: usize, skipped: usize) {
    let mut splits: Vec<Split> = rows.iter().map(|r| r.split).collect();
    splits.sort();
    splits.dedup();
    let width = classes.iter().map(String::len).max().unwrap_or(5).max(5);
    let mut table = format!("{:width$}", "class");
    for split in &splits {
        table += &format!(" {:>6}", split.to_string());
    }
    table += &format!(" {:>6}\n", "total");
    for (label, class) in classes.iter().enumerate() {
        table += &format!("{class:width$}");
        let of_class: Vec<&ManifestRow> = rows.iter().filter(|r| r.label == label).collect();
        for split in &splits {
            table += &format!(
                " {:>6}",
                of_class.iter().filter(|r| r.split == *split).count()
            );
        }
        table += &format!(" {:>6}\n", of_class.len());
    }
    eprintln!(
        "ortl-split: {} images in {} classes ({unreadable} unreadable left out, {skipped} other files skipped)\n{table}",
        rows.len(),
        classes.len()
    );
}
