//! The candidate images of a data set, from class folders or a label table, each with its
//! label (or findings) and, when splitting by group, its group.

use std::path::{Path, PathBuf};

use anyhow::Result;
use ortl_cli::usage;
use rayon::prelude::*;

use crate::scan;
use crate::settings::{Grouping, Settings, Source};
use crate::table::{self, Columns, LabelForm, Uncertain};

/// The candidate images and what is known of each, whichever layout they came in.
pub struct Data {
    /// The folder or table, for messages.
    pub source: PathBuf,
    /// What image paths are relative to (DATA_DIR, or the table's images folder).
    pub root: PathBuf,
    pub files: Vec<PathBuf>,
    pub classes: Vec<String>,
    pub labels: Vec<usize>,
    /// A multi-label table's findings (empty otherwise) and each file's targets.
    pub findings: Vec<String>,
    pub targets: Vec<Vec<Option<bool>>>,
    /// Each file's group, when splitting by group.
    pub groups: Option<Vec<Option<String>>>,
    /// What was skipped or left out before decoding, for the summary.
    pub note: String,
}

impl Data {
    /// The candidates `settings` name, with their groups; what is left out is said to `say`.
    pub fn gather(settings: &Settings, say: &mut dyn FnMut(&str)) -> Result<Self> {
        let mut data = match &settings.source {
            Source::Folders { dir, extensions } => from_folders(dir, extensions)?,
            Source::Table {
                table,
                images,
                path_column,
                labels,
                path_suffix,
            } => {
                let group = match &settings.grouping {
                    Some(Grouping::Column(column)) => Some(column.clone()),
                    _ => None,
                };
                let columns = Columns {
                    path: path_column.clone(),
                    labels: labels.clone(),
                    group,
                    path_suffix: path_suffix.clone(),
                };
                from_table(table, images, &columns, settings.strict, say)?
            }
        };
        match &settings.grouping {
            Some(Grouping::Path(pattern)) => {
                data.groups = Some(groups_from_paths(pattern, &data, say)?)
            }
            Some(Grouping::Tag(keyword)) => {
                data.groups = Some(groups_from_tags(keyword, &data.files, say)?)
            }
            Some(Grouping::Column(_)) | None => {}
        }
        Ok(data)
    }
}

fn from_folders(data_dir: &Path, extensions: &[String]) -> Result<Data> {
    let found = scan(data_dir, extensions).map_err(|e| {
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
        source: data_dir.into(),
        root: data_dir.into(),
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

fn from_table(
    path: &Path,
    images: &Path,
    columns: &Columns,
    strict: bool,
    say: &mut dyn FnMut(&str),
) -> Result<Data> {
    let read = table::read(path, images, columns).map_err(|e| {
        if e.is_usage() {
            usage(e.to_string())
        } else {
            e.into()
        }
    })?;
    if strict && let Some(first) = read.left_out.first() {
        anyhow::bail!(
            "{}, line {}: {} (--strict; {} rows left out in all)",
            path.display(),
            first.line,
            first.reason,
            read.left_out.len()
        );
    }
    for left in read.left_out.iter().take(NAMED_LEFT_OUT) {
        say(&format!(
            "warning: left out {}, line {}: {}",
            path.display(),
            left.line,
            left.reason
        ));
    }
    if read.left_out.len() > NAMED_LEFT_OUT {
        say(&format!(
            "warning: … and {} more rows left out",
            read.left_out.len() - NAMED_LEFT_OUT
        ));
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
    // Only a table with a column per finding has uncertain mentions.
    if let LabelForm::PerColumn { uncertain, .. } = &columns.labels
        && read.uncertain > 0
    {
        say(&format!(
            "{} uncertain mentions (-1) read as {}",
            read.uncertain,
            match uncertain {
                Uncertain::Ignore => "unknown (--uncertain ignore: masked out of the loss)",
                Uncertain::Zeros => "absent (--uncertain zeros)",
                Uncertain::Ones => "present (--uncertain ones)",
            }
        ));
    }
    let ungrouped = read.entries.iter().filter(|e| e.group.is_none()).count();
    if let Some(group) = &columns.group
        && ungrouped > 0
    {
        say(&format!(
            "warning: {ungrouped} rows have no {group}: each is a group of its own"
        ));
    }
    Ok(Data {
        source: path.into(),
        root: images.into(),
        files: read.entries.iter().map(|e| e.file.clone()).collect(),
        labels,
        targets: read.entries.iter().map(|e| e.targets.clone()).collect(),
        findings: read.findings,
        groups: columns
            .group
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

/// Each file's group read from its path (relative to the data's root) by `pattern`.
fn groups_from_paths(
    pattern: &str,
    data: &Data,
    say: &mut dyn FnMut(&str),
) -> Result<Vec<Option<String>>> {
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
        say(&format!(
            "warning: {unmatched} image paths do not match --group-by-path '{pattern}': each is a group of its own"
        ));
    }
    Ok(groups)
}

/// Each file's group from its DICOM attribute `keyword`, read in parallel.
fn groups_from_tags(
    keyword: &str,
    files: &[PathBuf],
    say: &mut dyn FnMut(&str),
) -> Result<Vec<Option<String>>> {
    if !ortl_imaging::dicom::is_keyword(keyword) {
        return Err(usage(format!(
            "--group-by-tag '{keyword}' is not a DICOM attribute keyword (PatientID, StudyInstanceUID, AccessionNumber, …)"
        )));
    }
    // An unreadable file is reported (and left out) when it is decoded, later.
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
        say(&format!(
            "warning: {missing} images have no {keyword}: each is a group of its own"
        ));
    }
    Ok(groups)
}
