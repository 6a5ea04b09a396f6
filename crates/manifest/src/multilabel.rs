//! A multi-label manifest, for data sets whose images can show several findings at once
//! (NIH ChestX-ray14, CheXpert, MIMIC-CXR): `path,split`, then one column `y_<finding>` per
//! finding holding `1` (present), `0` (absent) or nothing (unknown: not mentioned, or an
//! uncertain mention left out; such a label is masked, not taken as negative), then
//! `group` when the split was made by group. Written by `ortl-split` from a label table.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::{FormatError, Split, paths};

/// The prefix of a finding's column.
pub const FINDING_PREFIX: &str = "y_";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiLabelRow {
    /// Image path; relative paths are relative to the manifest's folder.
    pub path: String,
    pub split: Split,
    /// Per finding, in the manifest's order: present, absent, or unknown.
    pub targets: Vec<Option<bool>>,
    pub group: Option<String>,
}

#[derive(Clone, Debug)]
pub struct MultiLabelManifest {
    pub rows: Vec<MultiLabelRow>,
    /// Finding names, in column order.
    pub findings: Vec<String>,
    pub base_dir: PathBuf,
    pub source: PathBuf,
}

/// Whether a manifest header is the multi-label form (finding columns, no `label`).
pub fn is_multilabel(header: &csv::StringRecord) -> bool {
    header.iter().any(|h| h.starts_with(FINDING_PREFIX)) && !header.iter().any(|h| h == "label")
}

impl MultiLabelManifest {
    /// Reads a path, or `-` for stdin.
    pub fn read(source: &Path) -> Result<Self, FormatError> {
        Self::from_reader(
            crate::manifest::open(source)?,
            source,
            paths::base_dir(source),
        )
    }

    pub fn from_reader(
        reader: impl Read,
        source: &Path,
        base_dir: PathBuf,
    ) -> Result<Self, FormatError> {
        let invalid = |message: String| FormatError::Invalid {
            file: source.into(),
            message,
        };
        let mut csv = csv::ReaderBuilder::new().from_reader(reader);
        let header = csv
            .headers()
            .map_err(|e| FormatError::from_csv(source, e))?
            .clone();
        let column = |name: &str| header.iter().position(|h| h == name);
        let path_at = column("path").ok_or_else(|| invalid("missing column 'path'".into()))?;
        let split_at = column("split").ok_or_else(|| invalid("missing column 'split'".into()))?;
        let group_at = column("group");
        let finding_columns: Vec<(usize, String)> = header
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.strip_prefix(FINDING_PREFIX).map(|f| (i, f.to_string())))
            .collect();
        if finding_columns.is_empty() {
            return Err(invalid(format!(
                "no finding columns ({FINDING_PREFIX}<finding>); a multi-label manifest comes from ortl-split --label-columns or --label-separator"
            )));
        }
        let mut rows = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for (index, record) in csv.records().enumerate() {
            let line = index as u64 + 2;
            let row_error = |message: String| FormatError::Row {
                file: source.into(),
                line,
                message,
            };
            let record = record.map_err(|e| FormatError::from_csv(source, e))?;
            let path = record.get(path_at).unwrap_or_default().to_string();
            if let Some(first) = seen.insert(path.clone(), line) {
                return Err(row_error(format!(
                    "'{path}' is listed again (first on line {first}); list each image once"
                )));
            }
            let split: Split = record
                .get(split_at)
                .unwrap_or_default()
                .parse()
                .map_err(|e: String| row_error(e))?;
            let targets = finding_columns
                .iter()
                .map(|(at, finding)| match record.get(*at).unwrap_or_default().trim() {
                    "1" => Ok(Some(true)),
                    "0" => Ok(Some(false)),
                    "" => Ok(None),
                    other => Err(row_error(format!(
                        "{FINDING_PREFIX}{finding} is '{other}'; write 1, 0 or nothing (unknown)"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            rows.push(MultiLabelRow {
                path,
                split,
                targets,
                group: group_at
                    .and_then(|at| record.get(at))
                    .filter(|g| !g.is_empty())
                    .map(String::from),
            });
        }
        if rows.is_empty() {
            return Err(invalid("no rows".into()));
        }
        Ok(Self {
            rows,
            findings: finding_columns.into_iter().map(|(_, f)| f).collect(),
            base_dir,
            source: source.into(),
        })
    }

    /// The file a row points at.
    pub fn resolve(&self, row: &MultiLabelRow) -> PathBuf {
        paths::resolve(&self.base_dir, &row.path)
    }
}

/// Either manifest form, for the stages that take both (ortl-augment, ortl-infer).
#[derive(Clone, Debug)]
pub enum AnyManifest {
    /// One class per image (`path,label,class,split`).
    Classes(crate::Manifest),
    /// Findings per image (`path,split,y_<finding>…`).
    Findings(MultiLabelManifest),
}

impl AnyManifest {
    /// Reads either form from a path, or `-` for stdin, by its header.
    pub fn read(source: &Path) -> Result<Self, FormatError> {
        let mut bytes = Vec::new();
        crate::manifest::open(source)?
            .read_to_end(&mut bytes)
            .map_err(|e| FormatError::Io {
                file: source.into(),
                source: e,
            })?;
        let base_dir = paths::base_dir(source);
        let multilabel = csv::Reader::from_reader(bytes.as_slice())
            .headers()
            .is_ok_and(is_multilabel);
        Ok(if multilabel {
            Self::Findings(MultiLabelManifest::from_reader(
                bytes.as_slice(),
                source,
                base_dir,
            )?)
        } else {
            Self::Classes(crate::Manifest::from_reader(
                bytes.as_slice(),
                source,
                base_dir,
            )?)
        })
    }

    /// The class names, or the findings.
    pub fn classes(&self) -> &[String] {
        match self {
            Self::Classes(m) => &m.classes,
            Self::Findings(m) => &m.findings,
        }
    }

    pub fn task(&self) -> crate::Task {
        match self {
            Self::Classes(_) => crate::Task::SingleLabel,
            Self::Findings(_) => crate::Task::MultiLabel,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Classes(m) => m.rows.len(),
            Self::Findings(m) => m.rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes the manifest with its header; the `group` column when any row has a group.
pub fn write(out: impl Write, findings: &[String], rows: &[MultiLabelRow]) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_writer(out);
    let grouped = rows.iter().any(|r| r.group.is_some());
    let mut header = vec!["path".to_string(), "split".to_string()];
    header.extend(findings.iter().map(|f| format!("{FINDING_PREFIX}{f}")));
    if grouped {
        header.push("group".into());
    }
    csv.write_record(&header).map_err(crate::error::into_io)?;
    for row in rows {
        let mut record = vec![row.path.clone(), row.split.to_string()];
        record.extend(row.targets.iter().map(|t| match t {
            Some(true) => "1".to_string(),
            Some(false) => "0".to_string(),
            None => String::new(),
        }));
        if grouped {
            record.push(row.group.clone().unwrap_or_default());
        }
        csv.write_record(&record).map_err(crate::error::into_io)?;
    }
    csv.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_unknowns_and_groups() {
        let findings = vec!["Cardiomegaly".to_string(), "Pleural Effusion".to_string()];
        let rows = vec![
            MultiLabelRow {
                path: "p1/a.jpg".into(),
                split: Split::Train,
                targets: vec![Some(true), None],
                group: Some("patient00001".into()),
            },
            MultiLabelRow {
                path: "p2/b.jpg".into(),
                split: Split::Val,
                targets: vec![Some(false), Some(true)],
                group: Some("patient00002".into()),
            },
        ];
        let mut out = Vec::new();
        write(&mut out, &findings, &rows).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "path,split,y_Cardiomegaly,y_Pleural Effusion,group\np1/a.jpg,train,1,,patient00001\np2/b.jpg,val,0,1,patient00002\n"
        );
        let read =
            MultiLabelManifest::from_reader(text.as_bytes(), Path::new("m.csv"), "/d".into())
                .unwrap();
        assert_eq!(read.findings, findings);
        assert_eq!(read.rows, rows);
        assert!(is_multilabel(&csv::StringRecord::from(vec![
            "path", "split", "y_a"
        ])));
        assert!(!is_multilabel(&csv::StringRecord::from(vec![
            "path", "label", "class", "split"
        ])));
    }

    #[test]
    fn a_bad_value_names_the_line_and_the_finding() {
        let text = "path,split,y_Nodule\na.png,train,1\nb.png,val,-1\n";
        let error =
            MultiLabelManifest::from_reader(text.as_bytes(), Path::new("m.csv"), "/d".into())
                .unwrap_err()
                .to_string();
        assert!(
            error.contains("line 3") && error.contains("y_Nodule is '-1'"),
            "{error}"
        );
    }
}
