//! `predictions.csv` (or TSV, or JSON lines): one row per image, written by `ortl-infer` and
//! read by `ortl-report`. Columns: `path,label,class,predicted,predicted_class,p_<class>…`,
//! then `top1…topK` with `--top-k`, then `cam_path,cam_true_path` with `--cam`, then
//! `threshold` when the decision was class 1 at p₁ ≥ threshold (a two-class model given
//! one), then `split,model,model_epoch`: the image's split when it came from a manifest, the model file
//! as given to ortl-infer and the epoch its weights are from (ortl-train's models). Label,
//! class, split and epoch are empty (null in JSON) when unknown. A multi-label model's
//! predictions have their own columns: [`multilabel`].

pub mod multilabel;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::FormatError;
use crate::Split;
use crate::error::into_io;

/// The columns every predictions file starts with, before one `p_<class>` per class.
pub const LEADING_COLUMNS: [&str; 5] = ["path", "label", "class", "predicted", "predicted_class"];
/// The prefix of a class's probability column.
pub const PROBABILITY_PREFIX: &str = "p_";
/// The two-class decision threshold's column, before the provenance columns.
pub const THRESHOLD_COLUMN: &str = "threshold";
/// The last columns: what was evaluated.
pub const PROVENANCE_COLUMNS: [&str; 3] = ["split", "model", "model_epoch"];

/// The model a predictions file's rows came from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct EvaluatedModel {
    /// The model file as given to ortl-infer.
    pub path: String,
    /// The epoch its weights are from (1-based), when the model says.
    pub epoch: Option<usize>,
}

impl std::fmt::Display for EvaluatedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.epoch {
            Some(epoch) => write!(f, "{}, epoch {epoch}", self.path),
            None => f.write_str(&self.path),
        }
    }
}

/// How rows are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Tsv,
    Jsonl,
}

/// Where rows go: a CSV/TSV writer or JSON lines.
pub(crate) enum Sink<W: Write> {
    Delimited(Box<csv::Writer<W>>),
    Jsonl(W),
}

impl<W: Write> Sink<W> {
    pub(crate) fn new(out: W, format: Format) -> Self {
        match format {
            Format::Jsonl => Sink::Jsonl(out),
            Format::Csv => Sink::Delimited(Box::new(csv::WriterBuilder::new().from_writer(out))),
            Format::Tsv => Sink::Delimited(Box::new(
                csv::WriterBuilder::new().delimiter(b'\t').from_writer(out),
            )),
        }
    }

    pub(crate) fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Delimited(csv) => csv.flush(),
            Sink::Jsonl(out) => out.flush(),
        }
    }

    pub(crate) fn into_inner(self) -> std::io::Result<W> {
        match self {
            Sink::Delimited(csv) => csv.into_inner().map_err(|e| e.into_error()),
            Sink::Jsonl(out) => Ok(out),
        }
    }
}

/// Writes prediction rows as they come (flushed per batch, for pipes).
pub struct Writer<W: Write> {
    sink: Sink<W>,
    classes: Vec<String>,
    /// Extra columns top1…topK (0: none).
    top_k: usize,
    /// Columns `cam_path` (the heatmap overlay, empty when none was made) and
    /// `cam_true_path` (the true class's overlay of a misclassified image).
    cam: bool,
    /// The model every row comes from.
    model: EvaluatedModel,
    /// The two-class decision threshold on class 1, when one was given.
    threshold: Option<f64>,
}

/// One prediction.
pub struct Row<'a> {
    pub path: &'a str,
    pub label: Option<usize>,
    pub predicted: usize,
    pub probabilities: &'a [f32],
    pub cam_path: Option<&'a str>,
    pub cam_true_path: Option<&'a str>,
    /// The split of the manifest row the image came from.
    pub split: Option<Split>,
}

/// What a [`Writer`] writes besides the probabilities.
pub struct Columns {
    /// Extra columns top1…topK (0: none).
    pub top_k: usize,
    /// The heatmap columns.
    pub cam: bool,
    pub model: EvaluatedModel,
    /// A two-class model's threshold on class 1 (the `threshold` column), when one was
    /// given; without it the decision is the most probable class.
    pub threshold: Option<f64>,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, format: Format, classes: &[String], columns: Columns) -> Self {
        Self {
            sink: Sink::new(out, format),
            classes: classes.to_vec(),
            top_k: columns.top_k,
            cam: columns.cam,
            model: columns.model,
            threshold: columns.threshold,
        }
    }

    /// The header row (CSV and TSV only; JSON lines name their fields in every row).
    pub fn header(&mut self) -> std::io::Result<()> {
        if let Sink::Delimited(csv) = &mut self.sink {
            let mut fields: Vec<String> = LEADING_COLUMNS.iter().map(|c| c.to_string()).collect();
            fields.extend(
                self.classes
                    .iter()
                    .map(|c| format!("{PROBABILITY_PREFIX}{c}")),
            );
            fields.extend((1..=self.top_k).map(|k| format!("top{k}")));
            if self.cam {
                fields.push("cam_path".into());
                fields.push("cam_true_path".into());
            }
            if self.threshold.is_some() {
                fields.push(THRESHOLD_COLUMN.into());
            }
            fields.extend(PROVENANCE_COLUMNS.map(String::from));
            csv.write_record(&fields).map_err(into_io)?;
        }
        Ok(())
    }

    pub fn row(&mut self, row: &Row) -> std::io::Result<()> {
        let class = row.label.map(|l| self.classes[l].clone());
        let ranked = self.ranked(row.probabilities);
        match &mut self.sink {
            Sink::Delimited(csv) => {
                let mut fields = vec![
                    row.path.to_string(),
                    row.label.map(|l| l.to_string()).unwrap_or_default(),
                    class.unwrap_or_default(),
                    row.predicted.to_string(),
                    self.classes[row.predicted].clone(),
                ];
                fields.extend(row.probabilities.iter().map(|p| format!("{p:.6}")));
                fields.extend(ranked);
                if self.cam {
                    fields.push(row.cam_path.unwrap_or_default().to_string());
                    fields.push(row.cam_true_path.unwrap_or_default().to_string());
                }
                if let Some(t) = self.threshold {
                    fields.push(format!("{t:.6}"));
                }
                fields.push(row.split.map(|s| s.to_string()).unwrap_or_default());
                fields.push(self.model.path.clone());
                fields.push(self.model.epoch.map(|e| e.to_string()).unwrap_or_default());
                csv.write_record(&fields).map_err(into_io)?;
            }
            Sink::Jsonl(out) => {
                let mut value = json!({
                    "path": row.path, "label": row.label, "class": class,
                    "predicted": row.predicted, "predicted_class": self.classes[row.predicted],
                });
                for (c, p) in self.classes.iter().zip(row.probabilities) {
                    value[format!("{PROBABILITY_PREFIX}{c}")] = json!(p);
                }
                for (k, class) in ranked.into_iter().enumerate() {
                    value[format!("top{}", k + 1)] = json!(class);
                }
                if self.cam {
                    value["cam_path"] = json!(row.cam_path);
                    value["cam_true_path"] = json!(row.cam_true_path);
                }
                if let Some(t) = self.threshold {
                    value[THRESHOLD_COLUMN] = json!(t);
                }
                value["split"] = json!(row.split.map(|s| s.to_string()));
                value["model"] = json!(self.model.path);
                value["model_epoch"] = json!(self.model.epoch);
                writeln!(out, "{value}")?;
            }
        }
        Ok(())
    }

    /// The `top_k` most probable class names, most probable first.
    fn ranked(&self, probabilities: &[f32]) -> Vec<String> {
        let mut order: Vec<usize> = (0..probabilities.len()).collect();
        order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
        order
            .into_iter()
            .take(self.top_k)
            .map(|i| self.classes[i].clone())
            .collect()
    }

    /// The output, with every row written to it.
    pub fn into_inner(self) -> std::io::Result<W> {
        self.sink.into_inner()
    }

    /// Pushes buffered rows through to the output (once per batch).
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.sink.flush()
    }
}

/// Refuses a header read as CSV that is really ortl-infer's TSV or JSON lines output, whose
/// columns would otherwise look missing: readers of predictions take CSV.
pub fn require_csv(headers: &csv::StringRecord, file: &Path) -> Result<(), FormatError> {
    let first = headers.get(0).unwrap_or("");
    let format = if first.trim_start().starts_with('{') {
        "JSON lines (--format jsonl)"
    } else if headers.len() == 1 && first.contains('\t') {
        "tab-separated (--format tsv)"
    } else {
        return Ok(());
    };
    Err(FormatError::Invalid {
        file: file.into(),
        message: format!(
            "is {format}; predictions are read as CSV: write them with ortl-infer's default --format csv"
        ),
    })
}

/// The labelled rows of a CSV predictions file, as columns.
#[derive(Clone, Debug)]
pub struct Predictions {
    pub classes: Vec<String>,
    pub labels: Vec<usize>,
    /// `[row][class]` probabilities.
    pub probabilities: Vec<Vec<f64>>,
    /// Rows without a label, left out.
    pub unlabelled: usize,
    /// The path column of each kept row (empty when the file has none).
    pub paths: Vec<String>,
    /// The cam_path column of each kept row (`ortl-infer --cam`), when present.
    pub cam_paths: Vec<Option<String>>,
    /// The cam_true_path column: the true class's map of a misclassified image.
    pub cam_true_paths: Vec<Option<String>>,
    /// The split column of each kept row, when known.
    pub splits: Vec<Option<Split>>,
    /// The distinct models the rows (labelled or not) came from, sorted (none for files
    /// written before the model column).
    pub models: Vec<EvaluatedModel>,
    /// The two-class threshold ortl-infer decided at (its `threshold` column), if any.
    pub threshold: Option<f64>,
}

impl Predictions {
    /// Reads CSV predictions; `file` names the source in errors.
    pub fn read(reader: impl Read, file: &Path) -> Result<Self, FormatError> {
        let csv_error = |e| FormatError::from_csv(file, e);
        let row_error = |line: usize, message: String| FormatError::Row {
            file: file.into(),
            line: line as u64,
            message,
        };
        let mut csv = csv::Reader::from_reader(reader);
        let headers = csv.headers().map_err(csv_error)?.clone();
        require_csv(&headers, file)?;
        let column = |c: &str| headers.iter().position(|h| h == c);
        if multilabel::is_multilabel(&headers) {
            return Err(FormatError::Invalid {
                file: file.into(),
                message: "multi-label predictions (y_<finding> columns); read them with predictions::multilabel::Predictions".into(),
            });
        }
        let label_column = column("label").ok_or_else(|| FormatError::MissingColumn {
            file: file.into(),
            column: "label".into(),
            expected: format!(
                "ortl-infer's {},{PROBABILITY_PREFIX}<class>…",
                LEADING_COLUMNS.join(",")
            ),
        })?;
        let class_columns: Vec<(usize, String)> = headers
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                h.strip_prefix(PROBABILITY_PREFIX)
                    .map(|c| (i, c.to_string()))
            })
            .collect();
        if class_columns.len() < 2 {
            let manifest = crate::manifest::COLUMNS
                .iter()
                .all(|c| headers.iter().any(|h| h == *c));
            return Err(FormatError::Invalid {
                file: file.into(),
                message: if manifest {
                    format!(
                        "this is a manifest from ortl-split, not predictions; classify its images first: ortl-infer --model RUN/best.onnx --manifest {} --split val -o predictions.csv",
                        file.display()
                    )
                } else {
                    format!(
                        "needs at least two {PROBABILITY_PREFIX}<class> columns; is this ortl-infer's output?"
                    )
                },
            });
        }
        let classes: Vec<String> = class_columns.iter().map(|(_, c)| c.clone()).collect();
        let (path_column, cam_column) = (column("path"), column("cam_path"));
        let cam_true_column = column("cam_true_path");
        let (split_column, model_column) = (column("split"), column("model"));
        let epoch_column = column("model_epoch");
        let threshold_column = column(THRESHOLD_COLUMN);
        let mut threshold: Option<f64> = None;
        let (mut labels, mut probabilities, mut unlabelled) = (Vec::new(), Vec::new(), 0);
        let (mut paths, mut cam_paths, mut cam_true_paths) = (Vec::new(), Vec::new(), Vec::new());
        let (mut splits, mut models) = (Vec::new(), std::collections::BTreeSet::new());
        for (row, record) in csv.records().enumerate() {
            let line = row + 2;
            let record = record.map_err(csv_error)?;
            let text = |column: Option<usize>| column.and_then(|c| record.get(c)).unwrap_or("");
            if let Some(c) = model_column {
                let epoch = text(epoch_column);
                models.insert(EvaluatedModel {
                    path: record.get(c).unwrap_or("").to_string(),
                    epoch: match epoch {
                        "" => None,
                        e => Some(e.parse().map_err(|_| {
                            row_error(line, format!("model_epoch '{e}' is not a whole number"))
                        })?),
                    },
                });
            }
            if threshold_column.is_some() {
                let text = text(threshold_column);
                let t = text
                    .parse::<f64>()
                    .ok()
                    .filter(|t| (0.0..=1.0).contains(t))
                    .ok_or_else(|| {
                        row_error(
                            line,
                            format!("threshold '{text}' is not a number in [0, 1]"),
                        )
                    })?;
                match threshold {
                    Some(known) if known != t => {
                        return Err(row_error(
                            line,
                            format!(
                                "threshold is {t} here but {known} above; one threshold per file"
                            ),
                        ));
                    }
                    _ => threshold = Some(t),
                }
            }
            let label = record.get(label_column).unwrap_or("");
            if label.is_empty() {
                unlabelled += 1;
                continue;
            }
            let label: usize = label
                .parse()
                .ok()
                .filter(|&l| l < classes.len())
                .ok_or_else(|| {
                    row_error(
                        line,
                        format!(
                            "label '{label}' is not a class index below {}",
                            classes.len()
                        ),
                    )
                })?;
            let p = class_columns
                .iter()
                .map(|(i, c)| {
                    let text = record.get(*i).unwrap_or("");
                    text.parse::<f64>()
                        .ok()
                        .filter(|p| p.is_finite())
                        .ok_or_else(|| {
                            row_error(
                                line,
                                format!("{PROBABILITY_PREFIX}{c} '{text}' is not a number"),
                            )
                        })
                })
                .collect::<Result<Vec<f64>, _>>()?;
            let split = match text(split_column) {
                "" => None,
                s => Some(
                    s.parse()
                        .map_err(|e| row_error(line, format!("split: {e}")))?,
                ),
            };
            labels.push(label);
            probabilities.push(p);
            splits.push(split);
            paths.push(text(path_column).to_string());
            let optional = |column| {
                Some(text(column))
                    .filter(|t| !t.is_empty())
                    .map(String::from)
            };
            cam_paths.push(optional(cam_column));
            cam_true_paths.push(optional(cam_true_column));
        }
        if labels.is_empty() {
            return Err(FormatError::Invalid {
                file: file.into(),
                message: "no rows with a label; run ortl-infer on labelled images (class folders or --manifest)".into(),
            });
        }
        Ok(Self {
            classes,
            labels,
            probabilities,
            unlabelled,
            paths,
            cam_paths,
            cam_true_paths,
            splits,
            models: models.into_iter().collect(),
            threshold,
        })
    }

    /// How many scored rows are training images ([`training_rows`]).
    pub fn training_rows(&self, val_fold: Option<u32>) -> usize {
        training_rows(&self.splits, val_fold)
    }

    /// Reads one file, or stdin for `-`.
    pub fn from_path(path: &Path) -> Result<Self, FormatError> {
        if path.as_os_str() == "-" {
            return Self::read(std::io::stdin(), Path::new("<stdin>"));
        }
        if path.is_dir() {
            return Err(FormatError::Invalid {
                file: path.into(),
                message: "is a folder; give the predictions.csv that ortl-infer writes (a run folder from ortl-train goes to --run)".into(),
            });
        }
        let file = std::fs::File::open(path).map_err(|source| FormatError::Io {
            file: path.into(),
            source,
        })?;
        Self::read(file, path)
    }

    /// Several files' predictions as one (shards, or pooled folds): every file must name the
    /// same classes in the same order and decide at the same threshold.
    pub fn pool(parts: Vec<(PathBuf, Self)>) -> Result<Self, FormatError> {
        pool(parts)
    }
}

/// Predictions files that can be read as one: what must agree between them, and how the
/// rows of one are appended to another's.
pub(crate) trait Pooled: Sized {
    /// Why `next` cannot join `self` (different classes or thresholds), if it cannot.
    fn differs(&self, next: &Self) -> Option<String>;
    fn append(&mut self, next: Self);
}

/// The files' rows as one, in order; a file that differs is named with the first.
pub(crate) fn pool<P: Pooled>(parts: Vec<(PathBuf, P)>) -> Result<P, FormatError> {
    let mut parts = parts.into_iter();
    let (first_path, mut all) = parts.next().ok_or_else(|| FormatError::Invalid {
        file: PathBuf::from("-"),
        message: "no predictions file given".into(),
    })?;
    for (path, next) in parts {
        if let Some(differs) = all.differs(&next) {
            return Err(FormatError::Invalid {
                file: path,
                message: format!(
                    "{differs} in {}; pool only predictions of one model's classes, decided at the same thresholds",
                    first_path.display()
                ),
            });
        }
        all.append(next);
    }
    Ok(all)
}

impl Pooled for Predictions {
    fn differs(&self, next: &Self) -> Option<String> {
        if next.classes != self.classes {
            Some(format!(
                "classes {:?} differ from {:?}",
                next.classes, self.classes
            ))
        } else if next.threshold != self.threshold {
            Some(format!(
                "threshold {:?} differs from {:?}",
                next.threshold, self.threshold
            ))
        } else {
            None
        }
    }

    fn append(&mut self, next: Self) {
        self.labels.extend(next.labels);
        self.probabilities.extend(next.probabilities);
        self.unlabelled += next.unlabelled;
        self.paths.extend(next.paths);
        self.cam_paths.extend(next.cam_paths);
        self.cam_true_paths.extend(next.cam_true_paths);
        self.splits.extend(next.splits);
        self.models.extend(next.models);
        self.models.sort();
        self.models.dedup();
    }
}

/// How many of `splits` are training images: split `train`, or, for a model trained with
/// `val_fold` held out of a k-fold manifest, every other fold (both predictions forms).
fn training_rows(splits: &[Option<Split>], val_fold: Option<u32>) -> usize {
    splits
        .iter()
        .filter(|s| match s {
            Some(Split::Train) => true,
            Some(Split::Fold(k)) => val_fold.is_some_and(|own| *k != own),
            _ => false,
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> Vec<String> {
        vec!["normal".into(), "tb".into(), "other".into()]
    }

    fn columns(top_k: usize, cam: bool) -> Columns {
        Columns {
            threshold: None,
            top_k,
            cam,
            model: EvaluatedModel {
                path: "run/best.onnx".into(),
                epoch: Some(7),
            },
        }
    }

    #[test]
    fn what_the_writer_writes_the_reader_reads() {
        let mut bytes = Vec::new();
        {
            let mut writer = Writer::new(&mut bytes, Format::Csv, &classes(), columns(2, true));
            writer.header().unwrap();
            writer
                .row(&Row {
                    path: "a, b.png",
                    label: Some(1),
                    predicted: 1,
                    probabilities: &[0.125, 0.75, 0.125],
                    cam_path: Some("cams/a.png"),
                    cam_true_path: None,
                    split: Some(Split::Train),
                })
                .unwrap();
            writer
                .row(&Row {
                    path: "c.png",
                    label: None,
                    predicted: 0,
                    probabilities: &[0.5, 0.25, 0.25],
                    cam_path: None,
                    cam_true_path: None,
                    split: None,
                })
                .unwrap();
            writer
                .row(&Row {
                    path: "d.png",
                    label: Some(2),
                    predicted: 0,
                    probabilities: &[0.625, 0.125, 0.25],
                    cam_path: Some("cams/d.png"),
                    cam_true_path: Some("cams/d.true.png"),
                    split: Some(Split::Val),
                })
                .unwrap();
            writer.flush().unwrap();
        }
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            "path,label,class,predicted,predicted_class,p_normal,p_tb,p_other,top1,top2,cam_path,cam_true_path,split,model,model_epoch"
        );
        let p = Predictions::read(text.as_bytes(), Path::new("p.csv")).unwrap();
        assert_eq!(p.classes, classes());
        assert_eq!(p.labels, [1, 2]);
        assert_eq!(p.unlabelled, 1);
        assert_eq!(p.paths, ["a, b.png", "d.png"]);
        assert_eq!(p.probabilities[1], [0.625, 0.125, 0.25]);
        assert_eq!(
            p.cam_paths,
            [Some("cams/a.png".into()), Some("cams/d.png".into())]
        );
        assert_eq!(p.cam_true_paths, [None, Some("cams/d.true.png".into())]);
        assert_eq!(p.splits, [Some(Split::Train), Some(Split::Val)]);
        assert_eq!(p.training_rows(None), 1);
        assert_eq!(p.models, [columns(0, false).model]);
        assert_eq!(p.models[0].to_string(), "run/best.onnx, epoch 7");
    }

    #[test]
    fn a_two_class_threshold_is_a_column_read_back_and_must_agree() {
        let two = vec!["normal".to_string(), "tb".to_string()];
        let mut bytes = Vec::new();
        let mut writer = Writer::new(
            &mut bytes,
            Format::Csv,
            &two,
            Columns {
                threshold: Some(0.3),
                ..columns(0, false)
            },
        );
        writer.header().unwrap();
        for (path, p1) in [("a.png", 0.25), ("b.png", 0.5)] {
            writer
                .row(&Row {
                    path,
                    label: Some(1),
                    predicted: usize::from(p1 >= 0.3),
                    probabilities: &[1.0 - p1 as f32, p1 as f32],
                    cam_path: None,
                    cam_true_path: None,
                    split: None,
                })
                .unwrap();
        }
        drop(writer);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with(
            "path,label,class,predicted,predicted_class,p_normal,p_tb,threshold,split"
        ));
        let read = Predictions::read(text.as_bytes(), Path::new("p.csv")).unwrap();
        assert_eq!(read.threshold, Some(0.3));
        let mixed = text.replace(
            "b.png,1,tb,1,tb,0.500000,0.500000,0.300000",
            "b.png,1,tb,1,tb,0.500000,0.500000,0.400000",
        );
        let err = Predictions::read(mixed.as_bytes(), Path::new("p.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("one threshold"),
            "{err}"
        );
    }

    #[test]
    fn json_lines_name_every_field() {
        let mut bytes = Vec::new();
        let mut writer = Writer::new(&mut bytes, Format::Jsonl, &classes(), columns(1, false));
        writer.header().unwrap();
        writer
            .row(&Row {
                path: "x.png",
                label: None,
                predicted: 2,
                probabilities: &[0.25, 0.25, 0.5],
                cam_path: None,
                cam_true_path: None,
                split: Some(Split::Test),
            })
            .unwrap();
        drop(writer);
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["label"], serde_json::Value::Null);
        assert_eq!(value["predicted_class"], "other");
        assert_eq!(value["p_other"], 0.5);
        assert_eq!(value["top1"], "other");
        assert_eq!(value["split"], "test");
        assert_eq!(value["model"], "run/best.onnx");
        assert_eq!(value["model_epoch"], 7);
    }

    #[test]
    fn tsv_and_json_lines_are_named_as_such() {
        for (text, format) in [
            ("path\tlabel\tp_a\tp_b\nx\t0\t0.5\t0.5\n", "--format tsv"),
            (
                "{\"path\":\"x\",\"label\":0,\"p_a\":0.5}\n",
                "--format jsonl",
            ),
        ] {
            let err = Predictions::read(text.as_bytes(), Path::new("p.txt"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(format) && err.contains("--format csv"),
                "{err}"
            );
            let err = multilabel::Predictions::read(text.as_bytes(), Path::new("p.txt"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(format), "{err}");
        }
    }

    #[test]
    fn bad_rows_name_file_line_and_column() {
        let bad = "path,label,p_a,p_b\nx,0,0.5,oops\n";
        let err = Predictions::read(bad.as_bytes(), Path::new("p.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("p.csv, line 2") && err.contains("p_b"),
            "{err}"
        );
        let err = Predictions::read("path,p_a,p_b\n".as_bytes(), Path::new("p.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing column 'label'"), "{err}");
        let err = Predictions::read(
            "path,label,class,split\nx.png,0,a,val\n".as_bytes(),
            Path::new("manifest.csv"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("manifest from ortl-split") && err.contains("ortl-infer"),
            "{err}"
        );
        let err = Predictions::read(
            "path,label,p_a,p_b\nx,5,0.5,0.5\n".as_bytes(),
            Path::new("p.csv"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 2") && err.contains("below 2"), "{err}");
    }
}
