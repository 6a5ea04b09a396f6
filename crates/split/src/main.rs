//! ortl-split: class folders, or a label table, to manifest.csv.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use ortl_cli::{Output, usage};
use ortl_imaging::DecodeLimits;
use ortl_imaging::files::DEFAULT_EXTENSIONS;
use ortl_manifest::multilabel::{self, MultiLabelRow};
use ortl_manifest::{ManifestRow, Split, manifest, paths};
use ortl_split::grouped::split_groups;
use ortl_split::table::{self, Columns, LabelForm, Uncertain};
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
/// Multi-label tables: --label-separator '|' for findings joined in one column
/// (NIH ChestX-ray14), --label-columns A,B,… for one column per finding (CheXpert:
/// 1, 0, -1 uncertain by --uncertain, blank unknown). They give a multi-label
/// manifest (path,split,y_<finding>…: 1, 0 or empty for unknown), split so that
/// every finding's positives are spread over the splits in proportion; ortl-augment
/// and the stages after it train and evaluate a sigmoid per finding.
///
/// --group-by COLUMN splits by group (the patient): every image of a group lands
/// in one split or fold, stratified by class (or finding) as far as the groups
/// allow, so no patient's other radiographs leak into validation. Without a patient
/// column: --group-by-path REGEX (from each path) or --group-by-tag PatientID
/// (from each DICOM file), in either layout.
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
///     ortl-split --labels Data_Entry_2017.csv --images nih --label-separator '|' \
///         --group-by 'Patient ID' -o manifest.csv
///     ortl-split --labels CheXpert-v1.0-small/train.csv --images . --path-column Path \
///         --label-columns 'Cardiomegaly,Pleural Effusion' --uncertain zeros \
///         --group-by-path 'patient[0-9]+' -o manifest.csv
///     ortl-split dicom-export --group-by-tag PatientID --folds 5 -o manifest.csv
///     ortl-split --labels stage_2_train_labels.csv --images stage_2_train_images \
///         --path-column patientId --path-suffix .dcm --label-column Target \
///         --group-by patientId -o manifest.csv
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Folder with one sub-folder of images per class.
    // Not `conflicts_with = "labels"`: clap then skips every `requires = "labels"` (checked
    // in `run` instead).
    #[arg(required_unless_present = "labels")]
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
    /// The table's label column. [default: the first of label, class, target; with
    /// --label-separator: Finding Labels, findings, labels, label]
    #[arg(long, value_name = "NAME", requires = "labels")]
    label_column: Option<String>,
    /// Multi-label, one column per finding (CheXpert, MIMIC-CXR-JPG): 1 present, 0 absent,
    /// -1 uncertain (see --uncertain), blank not mentioned (unknown: masked, not negative).
    #[arg(
        long,
        value_name = "A,B,…",
        value_delimiter = ',',
        requires = "labels",
        conflicts_with_all = ["label_column", "label_separator"]
    )]
    label_columns: Vec<String>,
    /// Multi-label, the findings joined in the label column by SEP (NIH: '|'); the
    /// findings are every name met but --no-finding's.
    #[arg(long, value_name = "SEP", requires = "labels")]
    label_separator: Option<String>,
    /// With --label-separator: the word for no finding (any case). [default: No Finding]
    #[arg(long, value_name = "NAME")]
    no_finding: Option<String>,
    /// With --label-columns: what an uncertain mention (-1) becomes: ignore (unknown,
    /// masked out), zeros (absent) or ones (present): the CheXpert paper's policies.
    /// [default: ignore]
    #[arg(long, value_enum)]
    uncertain: Option<Uncertain>,
    /// Appended to every table path (RSNA lists patientIds whose files are ID.dcm: .dcm).
    #[arg(long, value_name = "SUFFIX", requires = "labels")]
    path_suffix: Option<String>,
    /// Split by group: the table column naming each image's group (e.g. 'Patient ID');
    /// a row without one is a group of its own.
    #[arg(long, value_name = "COLUMN", requires = "labels")]
    group_by: Option<String>,
    /// Split by group, the group read from each image's path (relative to DATA_DIR or
    /// --images) by a regular expression: its first capture group, else its whole match
    /// (CheXpert: 'patient[0-9]+'; files named PATIENT_VIEW.png in any folder:
    /// '([^/]+)_[^/]*$'). An image whose path does not match is a group of its own.
    #[arg(long, value_name = "REGEX", conflicts_with = "group_by")]
    group_by_path: Option<String>,
    /// Split by group, the group read from each DICOM file's attribute (PatientID,
    /// StudyInstanceUID, …). A file without it (or not DICOM) is a group of its own.
    #[arg(long, value_name = "KEYWORD", conflicts_with_all = ["group_by", "group_by_path"])]
    group_by_tag: Option<String>,
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
    /// Fail (exit 1) on the first unreadable image (or unusable table row) instead of
    /// leaving it out.
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
    if let (Some(dir), Some(table)) = (&args.data_dir, &args.labels) {
        return Err(usage(format!(
            "give a folder of class sub-folders ({}) or a label table (--labels {}), not both; a table's images folder is --images",
            dir.display(),
            table.display()
        )));
    }
    // Checked here, not by clap's `requires`: clap excuses a requirement on an argument
    // that conflicts with one given (--label-columns with --label-column).
    if args.uncertain.is_some() && args.label_columns.is_empty() {
        return Err(usage(
            "--uncertain maps CheXpert's -1 in --label-columns; give --label-columns",
        ));
    }
    if args.no_finding.is_some() && args.label_separator.is_none() {
        return Err(usage(
            "--no-finding names the no-finding word of --label-separator's joined findings; give --label-separator",
        ));
    }
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
    let mut data = match &args.labels {
        Some(table) => from_table(&args, table)?,
        None => from_folders(&args)?,
    };
    if let Some(pattern) = &args.group_by_path {
        data.groups = Some(groups_from_paths(pattern, &data)?);
    }
    if let Some(keyword) = &args.group_by_tag {
        data.groups = Some(groups_from_tags(keyword, &data.files)?);
    }
    if data.groups.is_none()
        && let Some(example) = ortl_split::grouped::patient_coded(&data.files)
    {
        eprintln!(
            "ortl-split: warning: file names look patient-coded ({example}) and no grouping was asked for: one patient's images may land in both training and validation; split by patient with --group-by-path (e.g. '([^/]+)_[^/]*$'), --group-by or --group-by-tag PatientID"
        );
    }
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
    if kept.is_empty() {
        return Err(usage(format!(
            "{}: no readable images left",
            data.source.display()
        )));
    }
    // Each kept image's group id, once: for the folds check and the assignment.
    let dense = data
        .groups
        .as_ref()
        .map(|groups| dense_groups(groups, &kept));
    if let (Some(k), Some(dense)) = (plan.folds, &dense) {
        let n_groups = dense.iter().max().map_or(0, |&g| g + 1);
        if n_groups < k as usize {
            return Err(usage(format!(
                "--folds {k} needs at least {k} groups; there are {n_groups}"
            )));
        }
    }
    if !data.findings.is_empty() {
        return write_multilabel(&args, &plan, &data, &kept, dense, out, errors.len());
    }
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

    let splits: Vec<Split> = match &dense {
        Some(dense) => {
            let labels: Vec<usize> = kept.iter().map(|&i| data.labels[i]).collect();
            assign_grouped(&labels, dense, data.classes.len(), &plan)
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

    warn_empty(&plan, rows.iter().map(|r| r.split), |split| {
        let present: Vec<usize> = rows
            .iter()
            .filter(|r| r.split == split)
            .map(|r| r.label)
            .collect();
        data.classes
            .iter()
            .enumerate()
            .filter(|(label, _)| !present.contains(label))
            .map(|(_, class)| format!("class '{class}'"))
            .collect()
    });
    manifest::write(&mut out, &rows).context("writing the manifest")?;
    out.flush().context("writing the manifest")?;
    out.finish()?;
    summarize(&data.classes, &rows, errors.len(), &data.note);
    Ok(())
}

/// Each file's group read from its path (relative to the data's root) by `pattern`.
fn groups_from_paths(pattern: &str, data: &Data) -> Result<Vec<Option<String>>> {
    let regex = regex_lite::Regex::new(pattern)
        .map_err(|e| usage(format!("--group-by-path '{pattern}': {e}")))?;
    let groups: Vec<Option<String>> = data
        .files
        .iter()
        .map(|file| {
            let relative = file.strip_prefix(&data.root).unwrap_or(file);
            let text = relative.to_string_lossy();
            regex
                .captures(&text)
                .and_then(|c| c.get(1).or_else(|| c.get(0)))
                .map(|m| m.as_str().to_string())
                .filter(|g| !g.is_empty())
        })
        .collect();
    let unmatched = groups.iter().filter(|g| g.is_none()).count();
    if unmatched == groups.len() {
        return Err(usage(format!(
            "--group-by-path '{pattern}' matches no image path (e.g. {}); every image would be its own group",
            data.files
                .first()
                .map(|f| f
                    .strip_prefix(&data.root)
                    .unwrap_or(f)
                    .display()
                    .to_string())
                .unwrap_or_default()
        )));
    }
    if unmatched > 0 {
        eprintln!(
            "ortl-split: warning: {unmatched} image paths do not match --group-by-path '{pattern}': each is a group of its own"
        );
    }
    Ok(groups)
}

/// Each file's group from its DICOM attribute `keyword`, read in parallel.
fn groups_from_tags(keyword: &str, files: &[PathBuf]) -> Result<Vec<Option<String>>> {
    use rayon::prelude::*;
    if !ortl_imaging::dicom::is_keyword(keyword) {
        return Err(usage(format!(
            "--group-by-tag '{keyword}' is not a DICOM attribute keyword (PatientID, StudyInstanceUID, AccessionNumber, …)"
        )));
    }
    // An unreadable file is reported (and left out) when it is decoded, below.
    let groups: Vec<Option<String>> = files
        .par_iter()
        .map(|file| ortl_imaging::dicom::attribute(file, keyword).ok().flatten())
        .collect();
    let missing = groups.iter().filter(|g| g.is_none()).count();
    if missing == groups.len() {
        return Err(usage(format!(
            "--group-by-tag {keyword}: no image has it (DICOM files only); every image would be its own group"
        )));
    }
    if missing > 0 {
        eprintln!(
            "ortl-split: warning: {missing} images have no {keyword}: each is a group of its own"
        );
    }
    Ok(groups)
}

/// Warns of each split the plan asks for that got no image, or lacks what `missing(split)`
/// lists (classes, or findings' positives): whole groups can leave a split short.
fn warn_empty(
    plan: &SplitPlan,
    splits: impl Iterator<Item = Split>,
    missing: impl Fn(Split) -> Vec<String>,
) {
    let got: std::collections::BTreeSet<Split> = splits.collect();
    let mut wanted: Vec<Split> = match plan.folds {
        Some(k) => (0..k).map(Split::Fold).collect(),
        None => [Split::Train]
            .into_iter()
            .chain((plan.val > 0.0).then_some(Split::Val))
            .collect(),
    };
    if plan.test > 0.0 {
        wanted.push(Split::Test);
    }
    for split in wanted {
        if !got.contains(&split) {
            eprintln!(
                "ortl-split: warning: split {split} got no image (the groups are too few or too large for the fractions asked)"
            );
            continue;
        }
        let lacking = missing(split);
        if !lacking.is_empty() {
            eprintln!(
                "ortl-split: warning: split {split} has no {}",
                lacking.join(", no ")
            );
        }
    }
}

/// Dense group ids over the kept images; an image without a group is a group of its own.
fn dense_groups(groups: &[Option<String>], kept: &[usize]) -> Vec<usize> {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut next = 0;
    kept.iter()
        .map(|&i| {
            let id = match &groups[i] {
                Some(g) => *ids.entry(g.as_str()).or_insert(next),
                None => next,
            };
            next = next.max(id + 1);
            id
        })
        .collect()
}

/// A multi-label table's manifest: split by group (each image its own group when not
/// grouped), balancing each finding's positives and the images per split.
fn write_multilabel(
    args: &Args,
    plan: &SplitPlan,
    data: &Data,
    kept: &[usize],
    dense: Option<Vec<usize>>,
    mut out: Output,
    unreadable: usize,
) -> Result<()> {
    // Not grouped: each image is a group of its own.
    let dense = dense.unwrap_or_else(|| (0..kept.len()).collect());
    let n_groups = dense.iter().max().map_or(0, |&g| g + 1);
    let width = if plan.stratify {
        data.findings.len() + 1
    } else {
        1
    };
    let mut counts = vec![vec![0usize; width]; n_groups];
    for (&i, &g) in kept.iter().zip(&dense) {
        counts[g][width - 1] += 1;
        if plan.stratify {
            for (f, target) in data.targets[i].iter().enumerate() {
                counts[g][f] += usize::from(*target == Some(true));
            }
        }
    }
    let of_group = split_groups(&counts, plan);
    let base = paths::base_dir(&args.output);
    let rows: Vec<MultiLabelRow> = kept
        .iter()
        .zip(&dense)
        .map(|(&i, &g)| MultiLabelRow {
            path: paths::relative_to(&base, &data.files[i]),
            split: of_group[g],
            targets: data.targets[i].clone(),
            group: data.groups.as_ref().map(|groups| {
                groups[i]
                    .clone()
                    .unwrap_or_else(|| paths::relative_to(&base, &data.files[i]))
            }),
        })
        .collect();
    for (f, finding) in data.findings.iter().enumerate() {
        if !rows.iter().any(|r| r.targets[f] == Some(true)) {
            eprintln!(
                "ortl-split: warning: finding '{finding}' is never positive: a classifier cannot learn it (check the column or --uncertain)"
            );
        }
    }
    warn_empty(plan, rows.iter().map(|r| r.split), |split| {
        data.findings
            .iter()
            .enumerate()
            .filter(|(f, _)| {
                rows.iter().any(|r| r.targets[*f] == Some(true))
                    && !rows
                        .iter()
                        .any(|r| r.split == split && r.targets[*f] == Some(true))
            })
            .map(|(_, finding)| format!("a positive '{finding}'"))
            .collect()
    });
    multilabel::write(&mut out, &data.findings, &rows).context("writing the manifest")?;
    out.flush().context("writing the manifest")?;
    out.finish()?;
    summarize_findings(&data.findings, &rows, unreadable, &data.note);
    Ok(())
}

/// Per finding and split, positives/negatives/unknown on stderr, and groups when grouped.
fn summarize_findings(findings: &[String], rows: &[MultiLabelRow], unreadable: usize, note: &str) {
    let mut splits: Vec<Split> = rows.iter().map(|r| r.split).collect();
    splits.sort();
    splits.dedup();
    let width = findings.iter().map(String::len).max().unwrap_or(7).max(7);
    let mut table = format!("{:width$}", "finding");
    for split in &splits {
        table += &format!(" {:>16}", format!("{split} +/-/?"));
    }
    table.push('\n');
    for (f, finding) in findings.iter().enumerate() {
        table += &format!("{finding:width$}");
        for split in &splits {
            let of_split = rows.iter().filter(|r| r.split == *split);
            let (mut pos, mut neg, mut unknown) = (0, 0, 0);
            for row in of_split {
                match row.targets[f] {
                    Some(true) => pos += 1,
                    Some(false) => neg += 1,
                    None => unknown += 1,
                }
            }
            table += &format!(" {:>16}", format!("{pos}/{neg}/{unknown}"));
        }
        table.push('\n');
    }
    table += &format!("{:width$}", "images");
    for split in &splits {
        table += &format!(" {:>16}", rows.iter().filter(|r| r.split == *split).count());
    }
    table.push('\n');
    if rows.iter().any(|r| r.group.is_some()) {
        table += &format!("{:width$}", "groups");
        let groups = rows.iter().map(|r| (r.split, r.group.as_deref()));
        for split in &splits {
            table += &format!(" {:>16}", distinct_groups(groups.clone(), Some(*split)));
        }
        table.push('\n');
    }
    eprintln!(
        "ortl-split: {} images with {} findings ({unreadable} unreadable left out, {note})\n{table}",
        rows.len(),
        findings.len()
    );
}

/// The candidate images and what is known of each, whichever layout they came in.
struct Data {
    /// The folder or table, for messages.
    source: PathBuf,
    /// What image paths are relative to (DATA_DIR, or the table's images folder).
    root: PathBuf,
    files: Vec<PathBuf>,
    classes: Vec<String>,
    labels: Vec<usize>,
    /// A multi-label table's findings (empty otherwise) and each file's targets.
    findings: Vec<String>,
    targets: Vec<Vec<Option<bool>>>,
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
        root: data_dir.clone(),
        files: found.files.concat(),
        classes: found.classes,
        labels,
        findings: Vec::new(),
        targets: Vec::new(),
        groups: None,
        note: format!("{} other files skipped", found.skipped),
    })
}

/// Rows a table leaves out are named on stderr up to this many, then counted.
const NAMED_LEFT_OUT: usize = 10;

fn from_table(args: &Args, path: &std::path::Path) -> Result<Data> {
    let images = args.images.clone().unwrap_or_else(|| paths::base_dir(path));
    let labels = if !args.label_columns.is_empty() {
        LabelForm::PerColumn {
            columns: args.label_columns.clone(),
            uncertain: args.uncertain.unwrap_or(Uncertain::Ignore),
        }
    } else if let Some(separator) = &args.label_separator {
        LabelForm::Joined {
            column: args.label_column.clone(),
            separator: separator.clone(),
            none: args
                .no_finding
                .clone()
                .unwrap_or_else(|| "No Finding".into()),
        }
    } else {
        LabelForm::Single {
            column: args.label_column.clone(),
        }
    };
    let columns = Columns {
        path: args.path_column.clone(),
        labels,
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
    let labels = if read.findings.is_empty() {
        read.entries
            .iter()
            .map(|e| {
                read.classes
                    .binary_search(&e.class)
                    .expect("a listed class")
            })
            .collect()
    } else {
        Vec::new()
    };
    if read.uncertain > 0 {
        eprintln!(
            "ortl-split: {} uncertain mentions (-1) read as {}",
            read.uncertain,
            match args.uncertain.unwrap_or(Uncertain::Ignore) {
                Uncertain::Ignore => "unknown (--uncertain ignore: masked out of the loss)",
                Uncertain::Zeros => "absent (--uncertain zeros)",
                Uncertain::Ones => "present (--uncertain ones)",
            }
        );
    }
    let ungrouped = read.entries.iter().filter(|e| e.group.is_none()).count();
    if args.group_by.is_some() && ungrouped > 0 {
        eprintln!(
            "ortl-split: warning: {ungrouped} rows have no {}: each is a group of its own",
            args.group_by.as_deref().unwrap_or_default()
        );
    }
    Ok(Data {
        source: path.into(),
        root: images.clone(),
        files: read.entries.iter().map(|e| e.file.clone()).collect(),
        labels,
        targets: read.entries.iter().map(|e| e.targets.clone()).collect(),
        findings: read.findings,
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

/// How many groups the rows of `split` (every split: `None`) hold.
fn distinct_groups<'a>(
    rows: impl Iterator<Item = (Split, Option<&'a str>)>,
    split: Option<Split>,
) -> usize {
    let names: std::collections::BTreeSet<&str> = rows
        .filter(|(s, _)| split.is_none_or(|wanted| *s == wanted))
        .filter_map(|(_, group)| group)
        .collect();
    names.len()
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
        let groups = rows.iter().map(|r| (r.split, r.group.as_deref()));
        table += &format!("{:width$}", "groups");
        for split in &splits {
            table += &format!(" {:>6}", distinct_groups(groups.clone(), Some(*split)));
        }
        table += &format!(" {:>6}\n", distinct_groups(groups, None));
    }
    eprintln!(
        "ortl-split: {} images in {} classes ({unreadable} unreadable left out, {note})\n{table}",
        rows.len(),
        classes.len()
    );
}
