//! Multi-label predictions, written by `ortl-infer` for a multi-label model (one sigmoid per
//! finding) and read by `ortl-report`: `path`, then per finding `y_<finding>` (the truth:
//! `1`, `0`, empty when unknown or not from a manifest), `p_<finding>` (the probability)
//! and `t_<finding>` (the threshold the decision was made at), then `predicted` (the
//! findings with p ≥ t, joined by `|`; empty: none), then `cam_path,cam_class` with
//! `--cam`, then `split,model,model_epoch` as in single-label predictions.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use super::{EvaluatedModel, Format, PROBABILITY_PREFIX, PROVENANCE_COLUMNS, Sink};
use crate::error::into_io;
use crate::multilabel::FINDING_PREFIX;
use crate::{FormatError, Split};

/// The prefix of a finding's threshold column.
pub const THRESHOLD_PREFIX: &str = "t_";

/// A probability or threshold as a CSV file holds it (six decimals). Decisions compare
/// these, so that `predicted` agrees with the `p_` and `t_` a reader sees, also for a
/// threshold chosen on a file's rounded scores and applied to the raw ones.
pub fn as_written(value: f64) -> f64 {
    format!("{value:.6}")
        .parse()
        .expect("a formatted number parses")
}

/// Whether a predictions header is the multi-label form: finding columns and no `label`,
/// as a multi-label manifest's.
pub use crate::multilabel::is_multilabel;

/// One image's multi-label prediction.
pub struct Row<'a> {
    pub path: &'a str,
    /// The truth per finding when known (from a manifest).
    pub targets: Option<&'a [Option<bool>]>,
    pub probabilities: &'a [f32],
    /// The Grad-CAM overlay and the finding it shows (`--cam`).
    pub cam: Option<(&'a str, &'a str)>,
    pub split: Option<Split>,
}

/// Writes multi-label prediction rows as they come.
pub struct Writer<W: Write> {
    sink: Sink<W>,
    findings: Vec<String>,
    thresholds: Vec<f64>,
    cam: bool,
    model: EvaluatedModel,
}

impl<W: Write> Writer<W> {
    /// `thresholds`: one per finding (predict present at p ≥ t).
    pub fn new(
        out: W,
        format: Format,
        findings: &[String],
        thresholds: &[f64],
        cam: bool,
        model: EvaluatedModel,
    ) -> Self {
        assert_eq!(findings.len(), thresholds.len(), "a threshold per finding");
        Self {
            sink: Sink::new(out, format),
            findings: findings.to_vec(),
            thresholds: thresholds.to_vec(),
            cam,
            model,
        }
    }

    /// The header row (CSV and TSV only).
    pub fn header(&mut self) -> std::io::Result<()> {
        if let Sink::Delimited(csv) = &mut self.sink {
            let mut fields = vec!["path".to_string()];
            for prefix in [FINDING_PREFIX, PROBABILITY_PREFIX, THRESHOLD_PREFIX] {
                fields.extend(self.findings.iter().map(|f| format!("{prefix}{f}")));
            }
            fields.push("predicted".into());
            if self.cam {
                fields.extend(["cam_path".to_string(), "cam_class".to_string()]);
            }
            fields.extend(PROVENANCE_COLUMNS.map(String::from));
            csv.write_record(&fields).map_err(into_io)?;
        }
        Ok(())
    }

    /// The findings a row's probabilities put at or above their thresholds, compared as
    /// written.
    pub fn predicted(&self, probabilities: &[f32]) -> Vec<&str> {
        self.findings
            .iter()
            .zip(probabilities.iter().zip(&self.thresholds))
            .filter(|(_, (p, t))| as_written(f64::from(**p)) >= as_written(**t))
            .map(|(f, _)| f.as_str())
            .collect()
    }

    pub fn row(&mut self, row: &Row) -> std::io::Result<()> {
        let predicted = self.predicted(row.probabilities).join("|");
        let truth = |i: usize| row.targets.and_then(|t| t[i]);
        match &mut self.sink {
            Sink::Delimited(csv) => {
                let mut fields = vec![row.path.to_string()];
                fields.extend((0..self.findings.len()).map(|i| match truth(i) {
                    Some(true) => "1".to_string(),
                    Some(false) => "0".to_string(),
                    None => String::new(),
                }));
                fields.extend(row.probabilities.iter().map(|p| format!("{p:.6}")));
                fields.extend(self.thresholds.iter().map(|t| format!("{t:.6}")));
                fields.push(predicted);
                if self.cam {
                    let (path, class) = row.cam.unwrap_or_default();
                    fields.extend([path.to_string(), class.to_string()]);
                }
                fields.push(row.split.map(|s| s.to_string()).unwrap_or_default());
                fields.push(self.model.path.clone());
                fields.push(self.model.epoch.map(|e| e.to_string()).unwrap_or_default());
                csv.write_record(&fields).map_err(into_io)?;
            }
            Sink::Jsonl(out) => {
                let mut value = json!({ "path": row.path, "predicted": predicted });
                for (i, finding) in self.findings.iter().enumerate() {
                    value[format!("{FINDING_PREFIX}{finding}")] = json!(truth(i).map(u8::from));
                    value[format!("{PROBABILITY_PREFIX}{finding}")] = json!(row.probabilities[i]);
                    value[format!("{THRESHOLD_PREFIX}{finding}")] = json!(self.thresholds[i]);
                }
                if self.cam {
                    value["cam_path"] = json!(row.cam.map(|c| c.0));
                    value["cam_class"] = json!(row.cam.map(|c| c.1));
                }
                value["split"] = json!(row.split.map(|s| s.to_string()));
                value["model"] = json!(self.model.path);
                value["model_epoch"] = json!(self.model.epoch);
                writeln!(out, "{value}")?;
            }
        }
        Ok(())
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.sink.flush()
    }

    pub fn into_inner(self) -> std::io::Result<W> {
        self.sink.into_inner()
    }
}

/// The rows of a multi-label predictions file with at least one known label, as columns.
#[derive(Clone, Debug)]
pub struct Predictions {
    pub findings: Vec<String>,
    /// `[row][finding]`: present, absent, unknown.
    pub targets: Vec<Vec<Option<bool>>>,
    /// `[row][finding]` probabilities.
    pub probabilities: Vec<Vec<f64>>,
    /// Per finding, the threshold ortl-infer decided at (0.5 where the file has none).
    pub thresholds: Vec<f64>,
    /// Rows with no known label, left out.
    pub unlabelled: usize,
    pub paths: Vec<String>,
    /// `cam_path` and `cam_class` per kept row, when present.
    pub cams: Vec<Option<(String, String)>>,
    pub splits: Vec<Option<Split>>,
    /// The distinct models the rows came from, sorted.
    pub models: Vec<EvaluatedModel>,
}

impl Predictions {
    /// Reads CSV multi-label predictions; `file` names the source in errors.
    pub fn read(reader: impl Read, file: &Path) -> Result<Self, FormatError> {
        let csv_error = |e| FormatError::from_csv(file, e);
        let row_error = |line: usize, message: String| FormatError::Row {
            file: file.into(),
            line: line as u64,
            message,
        };
        let invalid = |message: String| FormatError::Invalid {
            file: file.into(),
            message,
        };
        let mut csv = csv::Reader::from_reader(reader);
        let headers = csv.headers().map_err(csv_error)?.clone();
        super::require_csv(&headers, file)?;
        let column = |c: &str| headers.iter().position(|h| h == c);
        let findings: Vec<String> = headers
            .iter()
            .filter_map(|h| h.strip_prefix(FINDING_PREFIX).map(String::from))
            .collect();
        if findings.is_empty() {
            return Err(invalid(format!(
                "no {FINDING_PREFIX}<finding> columns; is this ortl-infer's output for a multi-label model?"
            )));
        }
        let columns_of = |prefix: &str| -> Result<Vec<Option<usize>>, FormatError> {
            Ok(findings
                .iter()
                .map(|f| column(&format!("{prefix}{f}")))
                .collect())
        };
        let truth_columns = columns_of(FINDING_PREFIX)?;
        let probability_columns = columns_of(PROBABILITY_PREFIX)?;
        let threshold_columns = columns_of(THRESHOLD_PREFIX)?;
        if let Some(i) = probability_columns.iter().position(Option::is_none) {
            return Err(FormatError::MissingColumn {
                file: file.into(),
                column: format!("{PROBABILITY_PREFIX}{}", findings[i]),
                expected: "path, then y_<finding>, p_<finding> and t_<finding> per finding (ortl-infer's multi-label predictions)".into(),
            });
        }
        let (path_column, split_column) = (column("path"), column("split"));
        let (cam_column, cam_class_column) = (column("cam_path"), column("cam_class"));
        let (model_column, epoch_column) = (column("model"), column("model_epoch"));
        let mut out = Self {
            thresholds: vec![f64::NAN; findings.len()],
            findings,
            targets: Vec::new(),
            probabilities: Vec::new(),
            unlabelled: 0,
            paths: Vec::new(),
            cams: Vec::new(),
            splits: Vec::new(),
            models: Vec::new(),
        };
        let mut models = std::collections::BTreeSet::new();
        for (row, record) in csv.records().enumerate() {
            let line = row + 2;
            let record = record.map_err(csv_error)?;
            let text = |column: Option<usize>| column.and_then(|c| record.get(c)).unwrap_or("");
            let number = |column: Option<usize>, name: String| {
                let value = text(column);
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| row_error(line, format!("{name} '{value}' is not a number")))
            };
            if let Some(c) = model_column {
                models.insert(EvaluatedModel {
                    path: record.get(c).unwrap_or("").to_string(),
                    epoch: match text(epoch_column) {
                        "" => None,
                        e => Some(e.parse().map_err(|_| {
                            row_error(line, format!("model_epoch '{e}' is not a whole number"))
                        })?),
                    },
                });
            }
            for (i, finding) in out.findings.iter().enumerate() {
                let threshold = match threshold_columns[i] {
                    Some(_) => {
                        number(threshold_columns[i], format!("{THRESHOLD_PREFIX}{finding}"))?
                    }
                    None => 0.5,
                };
                let known = &mut out.thresholds[i];
                if known.is_nan() {
                    *known = threshold;
                } else if *known != threshold {
                    return Err(row_error(
                        line,
                        format!(
                            "{THRESHOLD_PREFIX}{finding} is {threshold} here but {known} above; one threshold per finding in a file"
                        ),
                    ));
                }
            }
            let targets = out
                .findings
                .iter()
                .zip(&truth_columns)
                .map(|(finding, &at)| match text(at) {
                    "1" => Ok(Some(true)),
                    "0" => Ok(Some(false)),
                    "" => Ok(None),
                    other => Err(row_error(
                        line,
                        format!("{FINDING_PREFIX}{finding} is '{other}'; expected 1, 0 or nothing"),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if targets.iter().all(Option::is_none) {
                out.unlabelled += 1;
                continue;
            }
            let probabilities = out
                .findings
                .iter()
                .zip(&probability_columns)
                .map(|(finding, &at)| number(at, format!("{PROBABILITY_PREFIX}{finding}")))
                .collect::<Result<Vec<_>, _>>()?;
            let split = match text(split_column) {
                "" => None,
                s => Some(
                    s.parse()
                        .map_err(|e| row_error(line, format!("split: {e}")))?,
                ),
            };
            out.targets.push(targets);
            out.probabilities.push(probabilities);
            out.paths.push(text(path_column).to_string());
            out.cams.push(
                Some(text(cam_column))
                    .filter(|p| !p.is_empty())
                    .map(|p| (p.to_string(), text(cam_class_column).to_string())),
            );
            out.splits.push(split);
        }
        if out.targets.is_empty() {
            return Err(invalid(
                "no rows with a known label; run ortl-infer on a multi-label manifest (--manifest)"
                    .into(),
            ));
        }
        for t in &mut out.thresholds {
            if t.is_nan() {
                *t = 0.5;
            }
        }
        out.models = models.into_iter().collect();
        Ok(out)
    }

    /// The known labels of `finding` and their probabilities (unknown rows left out).
    pub fn finding(&self, finding: usize) -> (Vec<bool>, Vec<f64>) {
        self.targets
            .iter()
            .zip(&self.probabilities)
            .filter_map(|(t, p)| t[finding].map(|y| (y, p[finding])))
            .unzip()
    }

    /// How many scored rows are training images ([`super::training_rows`]).
    pub fn training_rows(&self, val_fold: Option<u32>) -> usize {
        super::training_rows(&self.splits, val_fold)
    }

    /// Pools several files (shards, folds): every file must name the same findings in the
    /// same order and decide at the same thresholds.
    pub fn pool(parts: Vec<(PathBuf, Self)>) -> Result<Self, FormatError> {
        super::pool(parts)
    }
}

impl super::Pooled for Predictions {
    fn differs(&self, next: &Self) -> Option<String> {
        if next.findings != self.findings {
            Some(format!(
                "findings {:?} differ from {:?}",
                next.findings, self.findings
            ))
        } else if next.thresholds != self.thresholds {
            Some(format!(
                "thresholds {:?} differ from {:?}",
                next.thresholds, self.thresholds
            ))
        } else {
            None
        }
    }

    fn append(&mut self, next: Self) {
        self.targets.extend(next.targets);
        self.probabilities.extend(next.probabilities);
        self.unlabelled += next.unlabelled;
        self.paths.extend(next.paths);
        self.cams.extend(next.cams);
        self.splits.extend(next.splits);
        self.models.extend(next.models);
        self.models.sort();
        self.models.dedup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_writer_writes_the_reader_reads() {
        let findings = vec!["Effusion".to_string(), "Mass".to_string()];
        let model = EvaluatedModel {
            path: "run/best.onnx".into(),
            epoch: Some(3),
        };
        let mut bytes = Vec::new();
        let mut writer = Writer::new(
            &mut bytes,
            Format::Csv,
            &findings,
            &[0.25, 0.5],
            true,
            model.clone(),
        );
        writer.header().unwrap();
        writer
            .row(&Row {
                path: "p1/a.png",
                targets: Some(&[Some(true), None]),
                probabilities: &[0.75, 0.5],
                cam: Some(("cams/a.png", "Effusion")),
                split: Some(Split::Test),
            })
            .unwrap();
        writer
            .row(&Row {
                path: "b.png",
                targets: None,
                probabilities: &[0.125, 0.25],
                cam: None,
                split: None,
            })
            .unwrap();
        writer.flush().unwrap();
        drop(writer);
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text,
            "path,y_Effusion,y_Mass,p_Effusion,p_Mass,t_Effusion,t_Mass,predicted,cam_path,cam_class,split,model,model_epoch\n\
             p1/a.png,1,,0.750000,0.500000,0.250000,0.500000,Effusion|Mass,cams/a.png,Effusion,test,run/best.onnx,3\n\
             b.png,,,0.125000,0.250000,0.250000,0.500000,,,,,run/best.onnx,3\n"
        );
        assert!(is_multilabel(
            csv::Reader::from_reader(text.as_bytes()).headers().unwrap()
        ));
        let read = Predictions::read(text.as_bytes(), Path::new("p.csv")).unwrap();
        assert_eq!(read.findings, findings);
        assert_eq!(read.targets, [vec![Some(true), None]]);
        assert_eq!(read.probabilities, [vec![0.75, 0.5]]);
        assert_eq!(read.thresholds, [0.25, 0.5]);
        assert_eq!(read.unlabelled, 1);
        assert_eq!(read.cams, [Some(("cams/a.png".into(), "Effusion".into()))]);
        assert_eq!(read.models, [model]);
        assert_eq!(read.finding(1), (vec![], vec![]));
        assert_eq!(read.finding(0), (vec![true], vec![0.75]));
    }

    #[test]
    fn json_lines_name_every_field_and_unknowns_are_null() {
        let mut bytes = Vec::new();
        let model = EvaluatedModel {
            path: "m.onnx".into(),
            epoch: None,
        };
        let mut writer = Writer::new(
            &mut bytes,
            Format::Jsonl,
            &["A".into()],
            &[0.5],
            false,
            model,
        );
        writer
            .row(&Row {
                path: "x.png",
                targets: Some(&[None]),
                probabilities: &[0.5],
                cam: None,
                split: None,
            })
            .unwrap();
        drop(writer);
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["y_A"], serde_json::Value::Null);
        assert_eq!(value["p_A"], 0.5);
        assert_eq!(value["t_A"], 0.5);
        assert_eq!(value["predicted"], "A");
    }

    /// A threshold chosen on a file's six-decimal scores decides the raw score that was
    /// written as it the way the file reads.
    #[test]
    fn decisions_compare_probabilities_and_thresholds_as_written() {
        let model = EvaluatedModel {
            path: "m.onnx".into(),
            epoch: None,
        };
        let writer = Writer::new(
            Vec::new(),
            Format::Csv,
            &["A".into()],
            &[0.412345],
            false,
            model,
        );
        let p = 0.412_344_9_f32;
        assert!(f64::from(p) < 0.412345, "below the threshold in memory");
        assert_eq!(writer.predicted(&[p]), ["A"], "0.412345 as written");
        assert!(writer.predicted(&[0.412_344]).is_empty());
    }

    #[test]
    fn bad_values_and_disagreeing_thresholds_name_the_line() {
        let bad = "path,y_A,p_A,t_A\nx,1,0.5,0.5\ny,2,0.5,0.5\n";
        let err = Predictions::read(bad.as_bytes(), Path::new("p.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("y_A is '2'"),
            "{err}"
        );
        let bad = "path,y_A,p_A,t_A\nx,1,0.5,0.5\ny,0,0.5,0.7\n";
        let err = Predictions::read(bad.as_bytes(), Path::new("p.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("one threshold"),
            "{err}"
        );
        let err = Predictions::read("path,y_A\nx,1\n".as_bytes(), Path::new("p.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("p_A"), "{err}");
    }
}
