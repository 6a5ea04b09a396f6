//! `tensors/`: the decoded, resized and augmented images `ortl-augment` stores for training.
//! - `meta.json` ([`TensorMeta`]): image size, classes, seed, intensity window and every
//!   augmentation setting, and how many sources each kind of intensity mapping was applied to;
//! - `tensors.csv` ([`TensorRow`]): `shard,index,label,class,split,path,variant`, one row
//!   per stored image, `path` being the source image (relative to the tensors folder), then
//!   `intensity`: what decoding did to the source's values (DICOM LUTs, window, inversion;
//!   empty for an 8-bit image read as stored; optional for readers);
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
    pub label: usize,
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
    /// Class names indexed by label.
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
        let pairs = self.rows.iter().map(|r| (r.label, r.class.as_str()));
        let classes = crate::manifest::classes_of(rows_path, pairs, &lines)?;
        if !self.meta.classes.starts_with(&classes) {
            return Err(FormatError::Invalid {
                file: rows_path.into(),
                message: format!(
                    "classes {classes:?} disagree with meta.json's {:?}",
                    self.meta.classes
                ),
            });
        }
        for (row, line) in self.rows.iter().zip(lines) {
            let shard = self.meta.shards.iter().find(|s| s.file == row.shard);
            let message = match shard {
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
                label: i,
                class: class.to_string(),
                split: Split::Train,
                path: format!("../{class}.png"),
                variant: 0,
                intensity: String::new(),
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
