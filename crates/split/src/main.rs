//! ortl-split: class folders, or a label table, to manifest.csv.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use ortl_cli::{Output, usage};
use ortl_imaging::DecodeLimits;
use ortl_imaging::files::DEFAULT_EXTENSIONS;
use ortl_manifest::{ManifestRow, Split, manifest, paths};
use ortl_split::table::{self, Columns};
use ortl_split::{SplitPlan, Verify, assign, assign_grouped, scan, verify};

/// Lists the images of a data set and assigns each to a split.
///
/// DATA_DIR holds one sub-folder per class, as Keras'
/// image_dataset_from_directory reads it. Or --labels names a label table (CSV,
/// or TSV when named .tsv): one row per image with its path (relative to
/// --images) and its label; rows without a label, or whose image is missing, are
/// reported and left out (fatal with --strict). Class names are sorted and a
/// class's label is its index in that order. Every image is decoded once (in
/// parallel) so that corrupt files are caught now: each is reported on stderr and
/// left out (or fatal with --strict). Per-class counts per split go to stderr.
///
/// --group-by COLUMN splits by group (the patient): every image of a group lands
/// in one split or fold, stratified by class as far as the groups allow, so no
/// patient's other radiographs leak into validation.
///
/// Output: manifest.csv with columns path,label,class,split (and group, when
/// grouped). Paths are written relative to the manifest's folder (to the working
/// directory with -o -). The same seed and files give a byte-identical manifest.
///
/// EXAMPLES:
///     ortl-split data/xray -o work/manifest.csv
///     ortl-split data/xray --val 0.2 --test 0.1 --seed 12 -o manifest.csv
///     ortl-split data/xray --folds 5 -o - | cut -d, -f3,4 | sort | uniq -c
///     ortl-split --labels labels.csv --images images --label-column Finding \
///         --group-by 'Patient ID' --folds 5 -o manifest.csv
///     ortl-split --labels stage_2_train_labels.csv --images stage_2_train_images \
///         --path-column patientId --path-suffix .dcm --label-column Target \
///         --group-by patientId -o manifest.csv
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Folder with one sub-folder of images per class.
    #[arg(required_unless_present = "labels", conflicts_with = "labels")]
    data_dir: Option<PathBuf>,
    /// A label table instead of class folders: one row per image.
    #[arg(long, value_name = "TABLE")]
    labels: Option<PathBuf>,
    /// Where the table's paths are relative to; a bare file name not found there is
    /// looked up in its sub-folders. [default: the table's folder]
    #[arg(long, value_name = "DIR", requires = "labels")]
    images: Option<PathBuf>,
    /// The table's image path column. [default: the first of path, image, image_path,
    /// filename, file, Image Index]
    #[arg(long, value_name = "NAME", requires = "labels")]
    path_column: Option<String>,
    /// The table's label column. [default: the first of label, class, target]
    #[arg(long, value_name = "NAME", requires = "labels")]
    label_column: Option<String>,
    /// Appended to every table path (RSNA lists patientIds whose files are ID.dcm: .dcm).
    #[arg(long, value_name = "SUFFIX", requires = "labels")]
    path_suffix: Option<String>,
    /// Split by group: the table column naming each image's group (e.g. 'Patient ID');
    /// a row without one is a group of its own.
    #[arg(long, value_name = "COLUMN", requires = "labels")]
    group_by: Option<String>,
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
    let data = match &args.labels {
        Some(table) => from_table(&args, table)?,
        None => from_folders(&args)?,
    };
    let progress = ortl_cli::progress::bar(data.files.len() as u64, "checking");
    let limits = DecodeLimits {
        max_pixels: args.max_pixels,
    };
    let (readable, errors) = verify(&data.files, args.verify, limits, || progress.inc(1));
    progress.finish_and_clear();
    if args.strict
        && let Some(first) = errors.first()
    {
        anyhow::bail!("{first} (--strict; {} unreadable in all)", errors.len());
    }
    for err in &errors {
        eprintln!("ortl-split: warning: left out {err}");
    }
    let kept: Vec<usize> = (0..data.files.len()).filter(|&i| readable[i]).collect();
    let mut per_class = vec![0usize; data.classes.len()];
    for &i in &kept {
        per_class[data.labels[i]] += 1;
    }
    if let Some(class) = per_class.iter().position(|&n| n == 0) {
        return Err(usage(format!(
            "{}: no readable images left in class '{}'",
            data.source.display(),
            data.classes[class]
        )));
    }

    let splits: Vec<Split> = match &data.groups {
        Some(groups) => {
            // Dense group ids over the kept images; a row without a group is its own.
            let mut ids: HashMap<&str, usize> = HashMap::new();
            let mut next = 0;
            let mut dense = Vec::with_capacity(kept.len());
            for &i in &kept {
                let id = match &groups[i] {
                    Some(g) => *ids.entry(g.as_str()).or_insert(next),
                    None => next,
                };
                next = next.max(id + 1);
                dense.push(id);
            }
            let labels: Vec<usize> = kept.iter().map(|&i| data.labels[i]).collect();
            assign_grouped(&labels, &dense, data.classes.len(), &plan)
        }
        None => {
            // Each class's images in order, dealt by the per-class assignment.
            let by_class = assign(&per_class, &plan);
            let mut next = vec![0usize; data.classes.len()];
            kept.iter()
                .map(|&i| {
                    let label = data.labels[i];
                    next[label] += 1;
                    by_class[label][next[label] - 1]
                })
                .collect()
        }
    };
    let base = paths::base_dir(&args.output);
    let rows: Vec<ManifestRow> = kept
        .iter()
        .zip(splits)
        .map(|(&i, split)| ManifestRow {
            path: paths::relative_to(&base, &data.files[i]),
            label: data.labels[i],
            class: data.classes[data.labels[i]].clone(),
            split,
            group: data.groups.as_ref().map(|groups| {
                groups[i]
                    .clone()
                    .unwrap_or_else(|| paths::relative_to(&base, &data.files[i]))
            }),
        })
        .collect();

    manifest::write(&mut out, &rows).context("writing the manifest")?;
    out.flush().context("writing the manifest")?;
    out.finish()?;
    summarize(&data.classes, &rows, errors.len(), &data.note);
    Ok(())
}

/// The candidate images and what is known of each, whichever layout they came in.
struct Data {
    /// The folder or table, for messages.
    source: PathBuf,
    files: Vec<PathBuf>,
    classes: Vec<String>,
    labels: Vec<usize>,
    /// Each file's group, when splitting by group.
    groups: Option<Vec<Option<String>>>,
    /// What was skipped or left out before decoding, for the summary.
    note: String,
}

fn from_folders(args: &Args) -> Result<Data> {
    let data_dir = args.data_dir.as_ref().expect("clap: DATA_DIR or --labels");
    let found = scan(data_dir, &args.ext).map_err(|e| {
        if e.is_usage() {
            usage(e.to_string())
        } else {
            e.into()
        }
    })?;
    let labels = found
        .files
        .iter()
        .enumerate()
        .flat_map(|(label, files)| std::iter::repeat_n(label, files.len()))
        .collect();
    Ok(Data {
        source: data_dir.clone(),
        files: found.files.concat(),
        classes: found.classes,
        labels,
        groups: None,
        note: format!("{} other files skipped", found.skipped),
    })
}

/// Rows a table leaves out are named on stderr up to this many, then counted.
const NAMED_LEFT_OUT: usize = 10;

fn from_table(args: &Args, path: &std::path::Path) -> Result<Data> {
    let images = args.images.clone().unwrap_or_else(|| paths::base_dir(path));
    let columns = Columns {
        path: args.path_column.clone(),
        label: args.label_column.clone(),
        group: args.group_by.clone(),
        path_suffix: args.path_suffix.clone(),
    };
    let read = table::read(path, &images, &columns).map_err(|e| {
        if e.is_usage() {
            usage(e.to_string())
        } else {
            e.into()
        }
    })?;
    if args.strict
        && let Some(first) = read.left_out.first()
    {
        anyhow::bail!(
            "{}, line {}: {} (--strict; {} rows left out in all)",
            path.display(),
            first.line,
            first.reason,
            read.left_out.len()
        );
    }
    for left in read.left_out.iter().take(NAMED_LEFT_OUT) {
        eprintln!(
            "ortl-split: warning: left out {}, line {}: {}",
            path.display(),
            left.line,
            left.reason
        );
    }
    if read.left_out.len() > NAMED_LEFT_OUT {
        eprintln!(
            "ortl-split: warning: … and {} more rows left out",
            read.left_out.len() - NAMED_LEFT_OUT
        );
    }
    let labels = read
        .entries
        .iter()
        .map(|e| {
            read.classes
                .binary_search(&e.class)
                .expect("a listed class")
        })
        .collect();
    let ungrouped = read.entries.iter().filter(|e| e.group.is_none()).count();
    if args.group_by.is_some() && ungrouped > 0 {
        eprintln!(
            "ortl-split: warning: {ungrouped} rows have no {}: each is a group of its own",
            args.group_by.as_deref().unwrap_or_default()
        );
    }
    Ok(Data {
        source: path.into(),
        files: read.entries.iter().map(|e| e.file.clone()).collect(),
        labels,
        groups: args
            .group_by
            .as_ref()
            .map(|_| read.entries.iter().map(|e| e.group.clone()).collect()),
        note: format!(
            "{} table rows left out, {} repeating an image merged; path column '{}', label column '{}'",
            read.left_out.len(),
            read.repeats,
            read.path_column,
            read.label_column
        ),
        classes: read.classes,
    })
}

/// The per-class, per-split table on stderr, with the groups in each split when grouped.
fn summarize(classes: &[String], rows: &[ManifestRow], unreadable: usize, note: &str) {
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
    if rows.iter().any(|r| r.group.is_some()) {
        let groups_in = |split: Option<Split>| {
            let mut names: Vec<&str> = rows
                .iter()
                .filter(|r| split.is_none_or(|s| r.split == s))
                .filter_map(|r| r.group.as_deref())
                .collect();
            names.sort_unstable();
            names.dedup();
            names.len()
        };
        table += &format!("{:width$}", "groups");
        for split in &splits {
            table += &format!(" {:>6}", groups_in(Some(*split)));
        }
        table += &format!(" {:>6}\n", groups_in(None));
    }
    eprintln!(
        "ortl-split: {} images in {} classes ({unreadable} unreadable left out, {note})\n{table}",
        rows.len(),
        classes.len()
    );
}
