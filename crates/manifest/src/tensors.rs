//! `tensors/`: the decoded, resized and augmented images `ortl-augment` stores for training.
//! - `meta.json` ([`TensorMeta`]): image size, classes, seed, intensity window and every
//!   augmentation setting, and how many sources each kind of intensity mapping was applied to;
//! - `tensors.csv` ([`TensorRow`]): `shard,index,label,class,split,path,variant`, one row
//!   per stored image, `path` being the source image (relative to the tensors folder), then
//!   `intensity`: what decoding did to the source's values (DICOM LUTs, window, inversion;
//!   empty for an 8-bit image read as stored; optional for readers), then `targets`: for
//!   multi-label tensors (`meta.json`'s `"task": "multi-label"`), one character per finding
//!   in `classes` order, `1` present, `0` absent, `-` unknown (`label` is then empty and
//!   `class` names the present findings joined by `|`);
//! - `shard-NNNNN.npy`: `uint8 [N, H, W, 3]` arrays, readable with `numpy.load`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};

use ndarray::{Array4, ArrayView4};
use ndarray_npy::{ViewNpyExt, WriteNpyExt};
use ortl_imaging::{AugmentSpec, Filter, Window};
use serde::{Deserialize, Serialize};

use crate::{FormatError, Split, paths};

pub const META_FILE: &str = "meta.json";
pub const ROWS_FILE: &str = "tensors.csv";
pub const FORMAT: &str = "ortl-tensors/1";
pub const COLUMNS: [&str; 7] = [
    "shard", "index", "label", "class", "split", "path", "variant",
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorRow {
    /// The `.npy` file holding the image, in the tensors folder.
    pub shard: String,
    /// Position along the shard's first axis.
    pub index: usize,
    /// The class index; empty for multi-label tensors.
    pub label: Option<usize>,
    /// The class name; for multi-label tensors, the present findings joined by `|`.
    pub class: String,
    pub split: Split,
    /// Source image, relative to the tensors folder when possible.
    pub path: String,
    /// 0 = resized only; 1..=copies = augmented variants.
    pub variant: u32,
    /// What decoding did to the source's values, with its own numbers (DICOM modality LUT,
    /// window or VOI LUT, MONOCHROME1 inversion; 16-bit scaling); empty for an 8-bit image
    /// read as stored. Absent in tensors from before the column existed.
    #[serde(default)]
    pub intensity: String,
    /// Multi-label tensors: per finding, `1`, `0` or `-` (unknown); see [`encode_targets`].
    /// Empty for single-label tensors (and absent in tensors from before the column).
    #[serde(default)]
    pub targets: String,
}

impl TensorRow {
    /// A multi-label row's targets (present, absent, unknown) per finding; checked when
    /// the set was opened.
    pub fn findings(&self) -> Vec<Option<bool>> {
        decode_targets(&self.targets).unwrap_or_default()
    }
}

/// What one image is labelled with: one class, or a set of findings (multi-label).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// One class per image (class folders, `--label-column`): softmax over the classes.
    #[default]
    SingleLabel,
    /// Any number of findings per image (`--label-columns`, `--label-separator`): a sigmoid
    /// per finding, unknown labels masked.
    MultiLabel,
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Task::SingleLabel => "single-label",
            Task::MultiLabel => "multi-label",
        })
    }
}

/// A multi-label row's `targets`: `1` present, `0` absent, `-` unknown, one per finding.
pub fn encode_targets(targets: &[Option<bool>]) -> String {
    targets
        .iter()
        .map(|t| match t {
            Some(true) => '1',
            Some(false) => '0',
            None => '-',
        })
        .collect()
}

/// Reads `targets` back; `None` when a character is not `1`, `0` or `-`.
pub fn decode_targets(text: &str) -> Option<Vec<Option<bool>>> {
    text.chars()
        .map(|c| match c {
            '1' => Some(Some(true)),
            '0' => Some(Some(false)),
            '-' => Some(None),
            _ => None,
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    pub file: String,
    pub images: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorMeta {
    /// Always [`FORMAT`]; a reader refuses anything else.
    pub format: String,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    /// One class per image, or findings (absent before multi-label tensors: single-label).
    #[serde(default)]
    pub task: Task,
    /// Class names indexed by label; for multi-label tensors, the findings in `targets` order.
    pub classes: Vec<String>,
    pub seed: u64,
    /// Augmented variants stored per training image.
    pub copies: u32,
    /// Whether training images also keep their un-augmented variant 0.
    pub keep_original: bool,
    pub filter: Filter,
    /// How stored values became 8 bits (absent before it existed: `auto`).
    #[serde(default)]
    pub window: Window,
    /// Sources per kind of intensity mapping applied (see [`TensorRow::intensity`]).
    #[serde(default)]
    pub intensity: std::collections::BTreeMap<String, usize>,
    pub augmentation: AugmentSpec,
    pub shards: Vec<Shard>,
    /// The manifest these tensors came from, as given on the command line.
    pub manifest: String,
    pub ortl_version: String,
}

/// A tensors folder with its metadata and rows, checked against each other.
#[derive(Clone, Debug)]
pub struct TensorSet {
    pub dir: PathBuf,
    pub meta: TensorMeta,
    pub rows: Vec<TensorRow>,
}

impl TensorSet {
    /// Opens and checks a tensors folder (shard contents are read by [`TensorSet::load_shard`]).
    pub fn open(dir: &Path) -> Result<Self, FormatError> {
        if !dir.exists() {
            return Err(FormatError::Invalid {
                file: dir.into(),
                message: "no such folder; ortl-augment writes the tensors folder (ortl-augment manifest.csv -o tensors)".into(),
            });
        }
        if !dir.join(META_FILE).is_file() {
            return Err(FormatError::Invalid {
                file: dir.into(),
                message: crate::stages::expected_tensors(dir),
            });
        }
        let meta_path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&meta_path).map_err(|source| FormatError::Io {
            file: meta_path.clone(),
            source,
        })?;
        let meta: TensorMeta = serde_json::from_str(&text).map_err(|e| FormatError::Invalid {
            file: meta_path.clone(),
            message: format!("not ortl tensor metadata: {e}"),
        })?;
        if meta.format != FORMAT {
            return Err(FormatError::Invalid {
                file: meta_path,
                message: format!(
                    "format '{}' is not {FORMAT}; re-run ortl-augment",
                    meta.format
                ),
            });
        }
        let rows_path = dir.join(ROWS_FILE);
        let file = File::open(&rows_path).map_err(|source| FormatError::Io {
            file: rows_path.clone(),
            source,
        })?;
        let rows = read_rows(BufReader::new(file), &rows_path)?;
        let set = Self {
            dir: dir.to_path_buf(),
            meta,
            rows,
        };
        set.check(&rows_path)?;
        Ok(set)
    }

    fn check(&self, rows_path: &Path) -> Result<(), FormatError> {
        let lines: Vec<u64> = (2..self.rows.len() as u64 + 2).collect();
        if self.meta.task == Task::SingleLabel {
            let mut pairs = Vec::with_capacity(self.rows.len());
            for (row, &line) in self.rows.iter().zip(&lines) {
                let label = row.label.ok_or_else(|| FormatError::Row {
                    file: rows_path.into(),
                    line,
                    message: "empty label in single-label tensors; re-run ortl-augment".into(),
                })?;
                pairs.push((label, row.class.as_str()));
            }
            let classes = crate::manifest::classes_of(rows_path, pairs.into_iter(), &lines)?;
            if !self.meta.classes.starts_with(&classes) {
                return Err(FormatError::Invalid {
                    file: rows_path.into(),
                    message: format!(
                        "classes {classes:?} disagree with meta.json's {:?}",
                        self.meta.classes
                    ),
                });
            }
        }
        for (row, line) in self.rows.iter().zip(lines) {
            let shard = self.meta.shards.iter().find(|s| s.file == row.shard);
            let findings = self.meta.classes.len();
            let message = match shard {
                _ if self.meta.task == Task::MultiLabel
                    && decode_targets(&row.targets).is_none_or(|t| t.len() != findings) =>
                {
                    format!(
                        "targets '{}' should be {findings} characters of 1, 0 or - (one per finding in meta.json); re-run ortl-augment",
                        row.targets
                    )
                }
                None => format!("shard '{}' is not listed in meta.json", row.shard),
                Some(s) if row.index >= s.images => {
                    format!(
                        "index {} is past the end of {} ({} images)",
                        row.index, s.file, s.images
                    )
                }
                Some(_) => continue,
            };
            return Err(FormatError::Row {
                file: rows_path.into(),
                line,
                message,
            });
        }
        Ok(())
    }

    /// Reads one shard, checking its shape against the metadata. The file is read whole
    /// and viewed in place, so a header declaring more data than the file holds is an
    /// error, not an allocation of that size.
    pub fn load_shard(&self, shard: &Shard) -> Result<Array4<u8>, FormatError> {
        let path = self.dir.join(&shard.file);
        let bytes = std::fs::read(&path).map_err(|source| FormatError::Io {
            file: path.clone(),
            source,
        })?;
        let view = ArrayView4::<u8>::view_npy(&bytes).map_err(|e| FormatError::Invalid {
            file: path.clone(),
            message: format!("not a uint8 4-D .npy: {e}"),
        })?;
        let expected = [
            shard.images,
            self.meta.height,
            self.meta.width,
            self.meta.channels,
        ];
        if view.shape() != expected {
            return Err(FormatError::Invalid {
                file: path,
                message: format!("shape {:?} where meta.json says {expected:?}", view.shape()),
            });
        }
        Ok(view.as_standard_layout().into_owned())
    }

    /// The source image a row came from.
    pub fn source(&self, row: &TensorRow) -> PathBuf {
        paths::resolve(&self.dir, &row.path)
    }
}

fn read_rows(reader: impl Read, file: &Path) -> Result<Vec<TensorRow>, FormatError> {
    let mut csv = csv::ReaderBuilder::new().from_reader(reader);
    require_columns(&mut csv, file, &COLUMNS)?;
    csv.deserialize()
        .map(|r| r.map_err(|e| FormatError::from_csv(file, e)))
        .collect()
}

/// Writes one shard as `.npy`.
pub fn write_shard(path: &Path, images: &Array4<u8>) -> Result<(), FormatError> {
    let io = |source| FormatError::Io {
        file: path.into(),
        source,
    };
    let file = File::create(path).map_err(io)?;
    let mut out = BufWriter::new(file);
    images
        .write_npy(&mut out)
        .map_err(|e| FormatError::Invalid {
            file: path.into(),
            message: format!("cannot write .npy: {e}"),
        })?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)
}

/// Checks a CSV header has every `required` column, naming the first one missing.
pub(crate) fn require_columns<R: Read>(
    csv: &mut csv::Reader<R>,
    file: &Path,
    required: &[&str],
) -> Result<(), FormatError> {
    let headers = csv
        .headers()
        .map_err(|e| FormatError::from_csv(file, e))?
        .clone();
    for column in required {
        if !headers.iter().any(|h| h == *column) {
            return Err(FormatError::MissingColumn {
                file: file.into(),
                column: column.to_string(),
                expected: required.join(","),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> TensorSet {
        let meta = TensorMeta {
            format: FORMAT.into(),
            height: 2,
            width: 3,
            channels: 3,
            task: Task::SingleLabel,
            classes: vec!["a".into(), "b".into()],
            seed: 1,
            copies: 0,
            keep_original: false,
            filter: Filter::Bilinear,
            window: Window::Auto,
            intensity: Default::default(),
            augmentation: AugmentSpec::default(),
            shards: vec![Shard {
                file: "shard-00000.npy".into(),
                images: 2,
            }],
            manifest: "m.csv".into(),
            ortl_version: "test".into(),
        };
        std::fs::write(dir.join(META_FILE), serde_json::to_string(&meta).unwrap()).unwrap();
        let images = Array4::from_shape_fn((2, 2, 3, 3), |(n, y, x, c)| {
            (n * 50 + y * 9 + x * 3 + c) as u8
        });
        write_shard(&dir.join("shard-00000.npy"), &images).unwrap();
        let mut csv = csv::Writer::from_path(dir.join(ROWS_FILE)).unwrap();
        for (i, class) in ["a", "b"].iter().enumerate() {
            csv.serialize(TensorRow {
                shard: "shard-00000.npy".into(),
                index: i,
                label: Some(i),
                class: class.to_string(),
                split: Split::Train,
                path: format!("../{class}.png"),
                variant: 0,
                intensity: String::new(),
                targets: String::new(),
            })
            .unwrap();
        }
        csv.flush().unwrap();
        TensorSet::open(dir).unwrap()
    }

    #[test]
    fn writes_and_reads_back_a_consistent_set() {
        let dir = tempfile::tempdir().unwrap();
        let set = sample(dir.path());
        let shard = set.load_shard(&set.meta.shards[0]).unwrap();
        assert_eq!(shard[[1, 1, 2, 0]], 50 + 9 + 6);
        assert_eq!(set.source(&set.rows[1]), dir.path().join("../b.png"));
    }

    #[test]
    fn multi_label_rows_carry_their_findings_and_bad_targets_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let set = sample(dir.path());
        let mut meta = set.meta.clone();
        meta.task = Task::MultiLabel;
        std::fs::write(
            dir.path().join(META_FILE),
            serde_json::to_string(&meta).unwrap(),
        )
        .unwrap();
        let write_rows = |targets: [&str; 2]| {
            let mut csv = csv::Writer::from_path(dir.path().join(ROWS_FILE)).unwrap();
            for (i, targets) in targets.iter().enumerate() {
                let findings = decode_targets(targets).unwrap_or_default();
                let present: Vec<&str> = meta
                    .classes
                    .iter()
                    .zip(&findings)
                    .filter(|(_, t)| **t == Some(true))
                    .map(|(c, _)| c.as_str())
                    .collect();
                csv.serialize(TensorRow {
                    label: None,
                    class: present.join("|"),
                    targets: targets.to_string(),
                    ..set.rows[i].clone()
                })
                .unwrap();
            }
            csv.flush().unwrap();
        };
        write_rows(["1-", "11"]);
        let read = TensorSet::open(dir.path()).unwrap();
        assert_eq!(read.rows[0].findings(), [Some(true), None]);
        assert_eq!(read.rows[1].class, "a|b");
        assert_eq!(encode_targets(&read.rows[0].findings()), "1-");
        write_rows(["10", "1?"]);
        let err = TensorSet::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("'1?'"), "{err}");
        write_rows(["10", "1"]);
        let err = TensorSet::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("line 3") && err.contains("2 characters"),
            "{err}"
        );
    }

    #[test]
    fn mismatches_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let set = sample(dir.path());
        let mut meta = set.meta.clone();
        meta.height = 5;
        std::fs::write(
            dir.path().join(META_FILE),
            serde_json::to_string(&meta).unwrap(),
        )
        .unwrap();
        let set = TensorSet::open(dir.path()).unwrap();
        let err = set.load_shard(&set.meta.shards[0]).unwrap_err().to_string();
        assert!(
            err.contains("shard-00000.npy") && err.contains("shape"),
            "{err}"
        );

        meta.shards[0].images = 1;
        std::fs::write(
            dir.path().join(META_FILE),
            serde_json::to_string(&meta).unwrap(),
        )
        .unwrap();
        let err = TensorSet::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("tensors.csv, line 3") && err.contains("past the end"),
            "{err}"
        );

        meta.format = "other".into();
        std::fs::write(
            dir.path().join(META_FILE),
            serde_json::to_string(&meta).unwrap(),
        )
        .unwrap();
        assert!(
            TensorSet::open(dir.path())
                .unwrap_err()
                .to_string()
                .contains("re-run")
        );
    }
}
