//! Data sets published as a label table rather than class folders: one row per image with
//! its path and its label (RSNA Pneumonia's `patientId,Target`, a site's own export), or
//! its findings — joined in one column (NIH ChestX-ray14's `Effusion|Infiltration`, `No
//! Finding`) or one column per finding (CheXpert, MIMIC-CXR-JPG: 1, 0, −1 uncertain, blank
//! not mentioned) — optionally with a group column such as the patient. Paths are relative to the images folder; a bare file name not found there is
//! looked up anywhere below it (NIH ChestX-ray14 spreads its images over `images_001/` …
//! `images_012/` and lists bare names).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Column names tried, in order and ignoring case, when none is given.
const PATH_COLUMNS: &[&str] = &[
    "path",
    "image",
    "image_path",
    "filename",
    "file",
    "image index",
];
const LABEL_COLUMNS: &[&str] = &["label", "class", "target"];
const JOINED_COLUMNS: &[&str] = &["finding labels", "findings", "labels", "label"];

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{}: cannot read: {source}", file.display())]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", file.display())]
    Usage { file: PathBuf, message: String },
    #[error("{}, line {line}: {message}", file.display())]
    Row {
        file: PathBuf,
        line: u64,
        message: String,
    },
}

impl TableError {
    /// Whether the arguments or the table are at fault (exit 2), not the disk.
    pub fn is_usage(&self) -> bool {
        !matches!(self, TableError::Io { .. })
    }
}

/// How a table gives each image's label or findings.
#[derive(Clone, Debug)]
pub enum LabelForm {
    /// One class per row, in a column (`None`: the usual names).
    Single { column: Option<String> },
    /// Findings joined in one column by `separator`; `none` (NIH's `No Finding`) means none.
    Joined {
        column: Option<String>,
        separator: String,
        none: String,
    },
    /// One column per finding: 1 present, 0 absent, −1 uncertain (mapped by `uncertain`),
    /// blank not mentioned (unknown).
    PerColumn {
        columns: Vec<String>,
        uncertain: Uncertain,
    },
}

impl Default for LabelForm {
    fn default() -> Self {
        LabelForm::Single { column: None }
    }
}

/// What an uncertain mention (CheXpert's −1) becomes: the CheXpert paper's policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Uncertain {
    /// Left out of the loss, as a label not mentioned (U-Ignore).
    Ignore,
    /// Negative (U-Zeros).
    Zeros,
    /// Positive (U-Ones).
    Ones,
}

/// Which columns hold what; `None` picks the usual names.
#[derive(Clone, Debug, Default)]
pub struct Columns {
    pub path: Option<String>,
    pub labels: LabelForm,
    pub group: Option<String>,
    /// Appended to every path: RSNA lists `patientId`s whose files are `patientId.dcm`.
    pub path_suffix: Option<String>,
}

/// One usable row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub file: PathBuf,
    /// The class (single label), or the row's findings in words (multi-label).
    pub class: String,
    /// Per finding of [`Table::findings`]: present, absent or unknown (multi-label only).
    pub targets: Vec<Option<bool>>,
    pub group: Option<String>,
    /// The row's line in the table (header = 1).
    pub line: u64,
}

/// A row left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftOut {
    pub line: u64,
    pub reason: String,
}

#[derive(Clone, Debug)]
pub struct Table {
    pub entries: Vec<Entry>,
    /// Sorted: a class's label is its index here (single label; empty otherwise).
    pub classes: Vec<String>,
    /// The findings, for a multi-label table (empty otherwise).
    pub findings: Vec<String>,
    /// Uncertain mentions met (mapped by the policy).
    pub uncertain: usize,
    pub left_out: Vec<LeftOut>,
    /// Rows that repeat an earlier row's image and label, merged into it.
    pub repeats: usize,
    /// The columns used, as the table spells them (for messages and the summary).
    pub path_column: String,
    pub label_column: String,
}

/// Reads `table` (comma-separated, or tab-separated when named `.tsv`/`.tab`) with images
/// under `images`.
pub fn read(table: &Path, images: &Path, columns: &Columns) -> Result<Table, TableError> {
    let usage = |message: String| TableError::Usage {
        file: table.into(),
        message,
    };
    if !images.is_dir() {
        return Err(usage(format!(
            "the images folder {} does not exist; give it with --images",
            images.display()
        )));
    }
    if let LabelForm::Joined { separator, .. } = &columns.labels
        && separator.is_empty()
    {
        return Err(usage("--label-separator is empty; NIH's is '|'".into()));
    }
    let tab = table
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv") || e.eq_ignore_ascii_case("tab"));
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(if tab { b'\t' } else { b',' })
        .flexible(false)
        .from_path(table)
        .map_err(|e| match e.into_kind() {
            csv::ErrorKind::Io(source) => TableError::Io {
                file: table.into(),
                source,
            },
            other => usage(format!("{other:?}")),
        })?;
    let header: Vec<String> = csv
        .headers()
        .map_err(|e| usage(e.to_string()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(usage(
            "no header line: the first line must name the columns".into(),
        ));
    }
    if let [only] = header.as_slice()
        && let Some(sep) = [';', '\t', ','].into_iter().find(|c| only.contains(*c))
    {
        return Err(usage(format!(
            "one column '{only}': the table seems separated by {sep:?}; ortl reads comma-separated tables, or tab-separated ones named .tsv"
        )));
    }
    if let Some(twice) = header
        .iter()
        .enumerate()
        .find(|(i, h)| !h.is_empty() && header[..*i].contains(h))
    {
        return Err(usage(format!(
            "column '{}' is named twice; rename one",
            twice.1
        )));
    }
    let find = |given: &Option<String>, usual: &[&str], flag: &str, what: &str| {
        let listed = || {
            let quoted: Vec<String> = header.iter().map(|h| format!("'{h}'")).collect();
            format!("its columns are {}", quoted.join(", "))
        };
        match given {
            Some(name) => header
                .iter()
                .position(|h| h == name.trim())
                .ok_or_else(|| usage(format!("{flag} '{name}' is not a column; {}", listed()))),
            None => usual
                .iter()
                .find_map(|u| header.iter().position(|h| h.eq_ignore_ascii_case(u)))
                .ok_or_else(|| {
                    usage(format!(
                        "no {what} column ({}); name it with {flag}; {}",
                        usual.join(", "),
                        listed()
                    ))
                }),
        }
    };
    let path_at = find(&columns.path, PATH_COLUMNS, "--path-column", "image path")?;
    let label_at = match &columns.labels {
        LabelForm::Single { column } => find(column, LABEL_COLUMNS, "--label-column", "label")?,
        LabelForm::Joined { column, .. } => {
            find(column, JOINED_COLUMNS, "--label-column", "findings")?
        }
        LabelForm::PerColumn { .. } => usize::MAX,
    };
    let finding_columns: Vec<usize> = match &columns.labels {
        LabelForm::PerColumn { columns: names, .. } => {
            let at: Vec<usize> = names
                .iter()
                .map(|name| find(&Some(name.clone()), &[], "--label-columns", "finding"))
                .collect::<Result<_, _>>()?;
            if let Some(i) = (1..at.len()).find(|&i| at[..i].contains(&at[i])) {
                return Err(usage(format!(
                    "--label-columns names '{}' twice",
                    names[i].trim()
                )));
            }
            at
        }
        _ => Vec::new(),
    };
    let mut uncertain = 0;

    let group_at = match &columns.group {
        Some(name) => Some(header.iter().position(|h| h == name).ok_or_else(|| {
            usage(format!(
                "--group-by '{name}' is not a column; its columns are {}",
                header.join(", ")
            ))
        })?),
        None => None,
    };

    let mut by_name: Option<HashMap<String, Vec<PathBuf>>> = None;
    let mut entries = Vec::new();
    let mut left_out = Vec::new();
    // Each image's first row and its label: a repeat with the same label is the same fact
    // again (RSNA lists one row per box), with another it is a contradiction.
    let mut first_row: HashMap<PathBuf, (u64, String, Option<String>)> = HashMap::new();
    let mut repeats = 0;
    for (index, record) in csv.records().enumerate() {
        // The reader's own line: blank lines and quoted line breaks count.
        let line = match &record {
            Ok(r) => r.position().map_or(index as u64 + 2, |p| p.line()),
            Err(e) => e.position().map_or(index as u64 + 2, |p| p.line()),
        };
        let record = record.map_err(|e| TableError::Row {
            file: table.into(),
            line,
            message: match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => {
                    format!("{len} fields where the header has {expected_len}")
                }
                _ => e.to_string(),
            },
        })?;
        let field = |at: usize| record.get(at).unwrap_or("").trim();
        let path = format!(
            "{}{}",
            field(path_at),
            columns.path_suffix.as_deref().unwrap_or("")
        );
        let path = path.as_str();
        let mut leave = |reason: String| left_out.push(LeftOut { line, reason });
        if field(path_at).is_empty() {
            leave("no image path".into());
            continue;
        }
        let (class, targets) = match &columns.labels {
            LabelForm::Single { .. } => (field(label_at).to_string(), Vec::new()),
            LabelForm::Joined {
                separator, none, ..
            } => {
                let text = field(label_at);
                let mut names: Vec<&str> = text
                    .split(separator.as_str())
                    .map(str::trim)
                    .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case(none))
                    .collect();
                names.sort_unstable();
                names.dedup();
                // An empty cell is unknown; the `none` word is a row with no finding.
                let class = if text.is_empty() {
                    String::new()
                } else if names.is_empty() {
                    none.clone()
                } else {
                    names.join(separator)
                };
                (class, Vec::new())
            }
            LabelForm::PerColumn {
                columns: names,
                uncertain: policy,
            } => {
                let mut targets = Vec::with_capacity(names.len());
                for (at, name) in finding_columns.iter().zip(names) {
                    let value = field(*at);
                    targets.push(match value.parse::<f64>() {
                        Ok(1.0) => Some(true),
                        Ok(0.0) => Some(false),
                        Ok(-1.0) => {
                            uncertain += 1;
                            match policy {
                                Uncertain::Ignore => None,
                                Uncertain::Zeros => Some(false),
                                Uncertain::Ones => Some(true),
                            }
                        }
                        _ if value.is_empty() => None,
                        _ => {
                            return Err(TableError::Row {
                                file: table.into(),
                                line,
                                message: format!(
                                    "'{name}' is '{value}'; a finding column holds 1, 0, -1 (uncertain) or nothing"
                                ),
                            });
                        }
                    });
                }
                // The row's labels in one word, for the repeated-row check.
                let class = targets
                    .iter()
                    .map(|t| match t {
                        Some(true) => '1',
                        Some(false) => '0',
                        None => '.',
                    })
                    .collect();
                (class, targets)
            }
        };
        if class.is_empty() {
            leave(format!("{path}: no label (unknown)"));
            continue;
        }

        let file = match locate(images, path, &mut by_name)? {
            Located::One(file) => file,
            Located::None => {
                leave(format!("{path}: no such image under {}", images.display()));
                continue;
            }
            Located::Several(found) => {
                leave(format!(
                    "{path}: {} files of that name under {} ({}); give the sub-folder in the table",
                    found.len(),
                    images.display(),
                    found
                        .iter()
                        .take(2)
                        .map(|f| f.strip_prefix(images).unwrap_or(f).display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                continue;
            }
        };
        let group = group_at
            .map(field)
            .filter(|g| !g.is_empty())
            .map(String::from);
        // The same image however the table spells its path (absolute, with `..`).
        let key = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
        if let Some((first, label, first_group)) = first_row.get(&key) {
            let conflict = if *label != class {
                Some(format!(
                    "is labelled {} here but {} on line {first}; one label per image",
                    describe(&class, &columns.labels),
                    describe(label, &columns.labels)
                ))
            } else if *first_group != group {
                Some(format!(
                    "is in group '{}' here but '{}' on line {first}; one group per image",
                    group.as_deref().unwrap_or(""),
                    first_group.as_deref().unwrap_or("")
                ))
            } else {
                None
            };
            match conflict {
                None => {
                    repeats += 1;
                    continue;
                }
                Some(message) => {
                    return Err(TableError::Row {
                        file: table.into(),
                        line,
                        message: format!("'{path}' {message}"),
                    });
                }
            }
        }
        first_row.insert(key, (line, class.clone(), group.clone()));
        entries.push(Entry {
            file,
            class,
            targets,
            group,
            line,
        });
    }
    if entries.is_empty() {
        return Err(usage(format!(
            "no usable rows ({} left out{}); check --images and the columns",
            left_out.len(),
            left_out.first().map_or(String::new(), |l| format!(
                ", line {}: {}",
                l.line, l.reason
            ))
        )));
    }
    let label_column = match &columns.labels {
        LabelForm::PerColumn { columns: names, .. } => names.join(", "),
        _ => header[label_at].clone(),
    };
    let (classes, findings) = match &columns.labels {
        LabelForm::Single { .. } => {
            let mut classes: Vec<String> = entries.iter().map(|e| e.class.clone()).collect();
            classes.sort();
            classes.dedup();
            if classes.len() < 2 {
                return Err(usage(format!(
                    "column '{label_column}' holds one class ({}); a classifier needs two or more",
                    classes[0]
                )));
            }
            (classes, Vec::new())
        }
        LabelForm::Joined {
            separator, none, ..
        } => {
            let mut findings: Vec<String> = entries
                .iter()
                .filter(|e| e.class != *none)
                .flat_map(|e| e.class.split(separator.as_str()).map(String::from))
                .collect();
            findings.sort();
            findings.dedup();
            if findings.is_empty() {
                return Err(usage(format!(
                    "column '{label_column}' names no finding (every row is '{none}' or empty); check --label-separator"
                )));
            }
            for entry in &mut entries {
                let present: Vec<&str> = entry.class.split(separator.as_str()).collect();
                entry.targets = findings
                    .iter()
                    .map(|f| Some(present.contains(&f.as_str())))
                    .collect();
            }
            (Vec::new(), findings)
        }
        LabelForm::PerColumn { columns: names, .. } => (
            Vec::new(),
            names.iter().map(|n| n.trim().to_string()).collect(),
        ),
    };
    Ok(Table {
        entries,
        classes,
        findings,
        uncertain,
        left_out,
        repeats,
        path_column: header[path_at].clone(),
        label_column,
    })
}

/// The image a table path names: under `images` as written, or, for a bare file name,
/// the one file of that name anywhere below `images`.
fn locate(
    images: &Path,
    path: &str,
    by_name: &mut Option<HashMap<String, Vec<PathBuf>>>,
) -> Result<Located, TableError> {
    let direct = images.join(path);
    if direct.is_file() {
        return Ok(Located::One(direct));
    }
    if path.contains(['/', '\\']) {
        return Ok(Located::None);
    }
    let index = match by_name {
        Some(index) => index,
        None => by_name.insert(index_names(images).map_err(|source| TableError::Io {
            file: images.into(),
            source,
        })?),
    };
    Ok(match index.get(path).map(Vec::as_slice) {
        Some([one]) => Located::One(one.clone()),
        Some([]) | None => Located::None,
        Some(several) => Located::Several(several.to_vec()),
    })
}

/// Where a table's path led.
enum Located {
    One(PathBuf),
    None,
    /// A bare name several sub-folders hold.
    Several(Vec<PathBuf>),
}

/// A row's labels in words: the class, the joined findings, or each finding's value.
fn describe(class: &str, form: &LabelForm) -> String {
    match form {
        LabelForm::PerColumn { columns, .. } => columns
            .iter()
            .zip(class.chars())
            .map(|(name, value)| {
                let value = match value {
                    '1' => "1",
                    '0' => "0",
                    _ => "unknown",
                };
                format!("{}={value}", name.trim())
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => format!("'{class}'"),
    }
}

/// Every file below `dir` by file name (links followed, as `find -L`).
fn index_names(dir: &Path) -> std::io::Result<HashMap<String, Vec<PathBuf>>> {
    let mut index: HashMap<String, Vec<PathBuf>> = HashMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Some(name) = path.file_name() {
                index
                    .entry(name.to_string_lossy().into_owned())
                    .or_default()
                    .push(path);
            }
        }
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn reads_columns_by_usual_names_and_finds_bare_names_below_the_images() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "images/images_001/a.png", "x");
        write(dir.path(), "images/images_002/b.png", "x");
        write(dir.path(), "images/c.png", "x");
        let table = write(
            dir.path(),
            "labels.csv",
            "Image Index,Label,Patient ID\na.png,normal,1\nb.png,pneumonia,1\nc.png,normal,2\nmissing.png,normal,3\nc2.png,,4\n",
        );
        let read = read(
            &table,
            &dir.path().join("images"),
            &Columns {
                group: Some("Patient ID".into()),
                ..Columns::default()
            },
        )
        .unwrap();
        assert_eq!(read.classes, ["normal", "pneumonia"]);
        assert_eq!(read.path_column, "Image Index");
        let files: Vec<_> = read
            .entries
            .iter()
            .map(|e| e.file.strip_prefix(dir.path()).unwrap().to_path_buf())
            .collect();
        assert_eq!(
            files,
            [
                PathBuf::from("images/images_001/a.png"),
                PathBuf::from("images/images_002/b.png"),
                PathBuf::from("images/c.png")
            ]
        );
        assert_eq!(read.entries[1].group.as_deref(), Some("1"));
        assert_eq!(
            read.left_out.iter().map(|l| l.line).collect::<Vec<_>>(),
            [5, 6]
        );
        assert!(read.left_out[0].reason.contains("no such image"));
        assert!(read.left_out[1].reason.contains("no label"));
    }

    #[test]
    fn unknown_columns_name_the_columns_there_are() {
        let dir = tempfile::tempdir().unwrap();
        let table = write(dir.path(), "t.tsv", "img\tdx\nx.png\t1\n");
        let error = read(&table, dir.path(), &Columns::default()).unwrap_err();
        assert!(error.is_usage());
        let message = error.to_string();
        assert!(
            message.contains("--path-column") && message.contains("'img', 'dx'"),
            "{message}"
        );
        let error = read(
            &table,
            dir.path(),
            &Columns {
                path: Some("img".into()),
                labels: LabelForm::Single {
                    column: Some("diagnosis".into()),
                },
                ..Columns::default()
            },
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("--label-column 'diagnosis' is not a column")
        );
    }

    #[test]
    fn repeated_rows_merge_and_contradicting_ones_are_refused_with_both_lines() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.dcm", "x");
        write(dir.path(), "b.dcm", "x");
        // RSNA's form: patientId without the extension, one row per box.
        let table = write(
            dir.path(),
            "t.csv",
            "patientId,x,Target\na,1,1\nb,,0\na,5,1\n",
        );
        let columns = Columns {
            path: Some("patientId".into()),
            labels: LabelForm::Single {
                column: Some("Target".into()),
            },
            group: None,
            path_suffix: Some(".dcm".into()),
        };
        let read_back = read(&table, dir.path(), &columns).unwrap();
        assert_eq!(read_back.entries.len(), 2);
        assert_eq!(read_back.repeats, 1);
        let table = write(
            dir.path(),
            "t.csv",
            "patientId,x,Target\na,1,1\nb,,0\na,5,0\n",
        );
        let message = read(&table, dir.path(), &columns).unwrap_err().to_string();
        assert!(
            message.contains("line 4") && message.contains("on line 2"),
            "{message}"
        );
    }
}
