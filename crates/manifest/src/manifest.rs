//! `manifest.csv`: one row per image, `path,label,class,split`. `label` is the index of
//! `class` in the sorted list of class names, as Keras' `image_dataset_from_directory`
//! numbers classes. A split made by group (patient) adds a trailing `group` column. Extra
//! columns are allowed and ignored.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{FormatError, Split, paths};

pub const COLUMNS: [&str; 4] = ["path", "label", "class", "split"];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRow {
    /// Image path; relative paths are relative to the manifest's folder.
    pub path: String,
    pub label: usize,
    pub class: String,
    pub split: Split,
    /// The group the image belongs to (a patient, a study) when the split was made by
    /// group (`ortl-split --group-by`): no group crosses splits. A trailing column, absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// A checked manifest: labels run 0..C-1 and each names one class.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub rows: Vec<ManifestRow>,
    /// Class names indexed by label.
    pub classes: Vec<String>,
    /// The folder relative paths are resolved in.
    pub base_dir: PathBuf,
    /// The manifest's name for messages.
    pub source: PathBuf,
}

impl Manifest {
    /// Reads and checks a manifest from `source` (a path, or `-` for stdin).
    pub fn read(source: &Path) -> Result<Self, FormatError> {
        Self::from_reader(open(source)?, source, paths::base_dir(source))
    }

    /// Reads from any reader; `source` names it in messages, `base_dir` resolves paths.
    pub fn from_reader(
        reader: impl Read,
        source: &Path,
        base_dir: PathBuf,
    ) -> Result<Self, FormatError> {
        let mut csv = csv::ReaderBuilder::new().from_reader(reader);
        if let Ok(header) = csv.headers()
            && crate::multilabel::is_multilabel(header)
        {
            return Err(FormatError::Invalid {
                file: source.into(),
                message: "a multi-label manifest (one y_<finding> column per finding) where one class per image is needed; read it with multilabel::AnyManifest, or split again with --label-column for one finding".into(),
            });
        }
        crate::tensors::require_columns(&mut csv, source, &COLUMNS)?;
        // Predictions carry every manifest column too (their split says where each image
        // came from); read as a manifest they would silently become a data set.
        let headers = csv
            .headers()
            .map_err(|e| FormatError::from_csv(source, e))?;
        if headers.iter().any(|h| h == "predicted") {
            return Err(FormatError::Invalid {
                file: source.into(),
                message: "these are ortl-infer's predictions (ortl-report reads them); give the manifest.csv that ortl-split writes".into(),
            });
        }
        let mut rows = Vec::new();
        let mut lines = Vec::new();
        for record in csv.deserialize::<ManifestRow>() {
            let row = record.map_err(|e| FormatError::from_csv(source, e))?;
            lines.push(rows.len() as u64 + 2);
            rows.push(row);
        }
        if rows.is_empty() {
            return Err(FormatError::Invalid {
                file: source.into(),
                message: "no rows (run ortl-split on a folder of class sub-folders)".into(),
            });
        }
        // The same image twice could sit in two splits and leak validation data into
        // training.
        let mut seen: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        for (row, &line) in rows.iter().zip(&lines) {
            if let Some(first) = seen.insert(row.path.as_str(), line) {
                return Err(FormatError::Row {
                    file: source.into(),
                    line,
                    message: format!(
                        "'{}' is listed again (first on line {first}); list each image once",
                        row.path
                    ),
                });
            }
        }
        let classes = classes_of(
            source,
            rows.iter().map(|r| (r.label, r.class.as_str())),
            &lines,
        )?;
        Ok(Self {
            rows,
            classes,
            base_dir,
            source: source.into(),
        })
    }

    /// The file a row points at.
    pub fn resolve(&self, row: &ManifestRow) -> PathBuf {
        paths::resolve(&self.base_dir, &row.path)
    }
}

/// A manifest's bytes: the file, or stdin for `-`; a folder is the split's input given
/// where its output belongs, and says so.
pub(crate) fn open(source: &Path) -> Result<Box<dyn Read>, FormatError> {
    if source.is_dir() {
        return Err(FormatError::Invalid {
            file: source.into(),
            message: crate::stages::expected_manifest(source),
        });
    }
    Ok(if source.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(source).map_err(|e| FormatError::Io {
            file: source.into(),
            source: e,
        })?)
    })
}

/// Writes rows with the header. Errors are I/O errors, so a closed pipe stays recognisable.
pub fn write(out: impl Write, rows: &[ManifestRow]) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_writer(out);
    for row in rows {
        csv.serialize(row).map_err(crate::error::into_io)?;
    }
    if rows.is_empty() {
        csv.write_record(COLUMNS).map_err(crate::error::into_io)?;
    }
    csv.flush()
}

/// Checks that labels are 0..C-1 with one class name each, and returns names by label.
pub(crate) fn classes_of<'a>(
    file: &Path,
    pairs: impl Iterator<Item = (usize, &'a str)>,
    lines: &[u64],
) -> Result<Vec<String>, FormatError> {
    let mut classes: Vec<Option<String>> = Vec::new();
    for ((label, class), &line) in pairs.zip(lines) {
        let row_error = |message: String| FormatError::Row {
            file: file.into(),
            line,
            message,
        };
        if class.is_empty() {
            return Err(row_error("empty class name".into()));
        }
        if label >= 100_000 {
            return Err(row_error(format!("label {label} is out of range")));
        }
        if classes.len() <= label {
            classes.resize(label + 1, None);
        }
        match &classes[label] {
            Some(known) if known != class => {
                return Err(row_error(format!(
                    "label {label} is class '{class}' here but '{known}' earlier; one label per class"
                )));
            }
            Some(_) => {}
            None => {
                if let Some(other) = classes.iter().position(|c| c.as_deref() == Some(class)) {
                    return Err(row_error(format!(
                        "class '{class}' has label {label} here but {other} earlier; one label per class"
                    )));
                }
                classes[label] = Some(class.to_string());
            }
        }
    }
    classes
        .into_iter()
        .enumerate()
        .map(|(label, class)| {
            class.ok_or_else(|| FormatError::Invalid {
                file: file.into(),
                message: format!("no row has label {label}; labels must run from 0 without gaps"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, FormatError> {
        Manifest::from_reader(text.as_bytes(), Path::new("m.csv"), PathBuf::from("/data"))
    }

    #[test]
    fn reads_rows_and_classes_with_bom_crlf_quotes_and_extra_columns() {
        let text = "\u{feff}path,label,class,split,note\r\n\"a,1.png\",0,normal,train,x\r\nb.png,1,tb,val,y\r\n";
        let m = parse(text).unwrap();
        assert_eq!(m.classes, ["normal", "tb"]);
        assert_eq!(m.rows[0].path, "a,1.png");
        assert_eq!(m.rows[1].split, Split::Val);
        assert_eq!(m.resolve(&m.rows[1]), Path::new("/data/b.png"));
    }

    #[test]
    fn a_duplicate_image_is_an_error_naming_both_lines() {
        let err =
            parse("path,label,class,split\na.png,0,n,train\nb.png,0,n,train\na.png,0,n,val\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("m.csv")
                && err.contains("line 4")
                && err.contains("'a.png' is listed again (first on line 2)"),
            "{err}"
        );
    }

    #[test]
    fn round_trips_through_write() {
        let rows = vec![
            ManifestRow {
                path: "x.png".into(),
                label: 1,
                class: "b".into(),
                split: Split::Fold(2),
                group: None,
            },
            ManifestRow {
                path: "y.png".into(),
                label: 0,
                class: "a".into(),
                split: Split::Test,
                group: None,
            },
        ];
        let mut out = Vec::new();
        write(&mut out, &rows).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "path,label,class,split\nx.png,1,b,2\ny.png,0,a,test\n"
        );
        assert_eq!(parse(&text).unwrap().rows, rows);
    }

    #[test]
    fn a_grouped_manifest_round_trips_with_its_group_column() {
        let rows = vec![ManifestRow {
            path: "p1/a.png".into(),
            label: 0,
            class: "a".into(),
            split: Split::Val,
            group: Some("patient 1".into()),
        }];
        let mut out = Vec::new();
        write(&mut out, &rows).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "path,label,class,split,group\np1/a.png,0,a,val,patient 1\n"
        );
        assert_eq!(parse(&text).unwrap().rows, rows);
    }

    #[test]
    fn errors_name_the_column_or_the_line() {
        let err = parse("path,label,split\na.png,0,train\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing column 'class'"), "{err}");
        let err = parse("path,label,class,split\na.png,x,n,train\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        let err = parse("path,label,class,split\na.png,0,n,train\nb.png,0,t,train\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("one label per class"),
            "{err}"
        );
        let err = parse("path,label,class,split\na.png,1,n,train\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no row has label 0"), "{err}");
        let err = parse("path,label,class,split\na.png,0,n,training\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("training"), "{err}");
        let err = parse("path,label,class,split\n").unwrap_err().to_string();
        assert!(err.contains("no rows"), "{err}");
    }
}
