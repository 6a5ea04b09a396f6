//! Reading the files ortl-report consumes, with errors that name file, row and fix.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Predictions of a binary or multi-class model, rows with a known label only.
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
}

impl Predictions {
    pub fn read(reader: impl Read, name: &str) -> Result<Self> {
        let mut csv = csv::Reader::from_reader(reader);
        let headers = csv
            .headers()
            .with_context(|| format!("{name}: cannot read the header"))?
            .clone();
        let column = |c: &str| headers.iter().position(|h| h == c);
        let label_column = column("label").with_context(|| format!("{name}: missing column 'label' (expected ortl-infer's path,label,class,predicted,predicted_class,p_<class>…)"))?;
        let class_columns: Vec<(usize, String)> = headers
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.strip_prefix("p_").map(|c| (i, c.to_string())))
            .collect();
        if class_columns.len() < 2 {
            bail!("{name}: needs at least two p_<class> columns; is this ortl-infer's output?");
        }
        let classes: Vec<String> = class_columns.iter().map(|(_, c)| c.clone()).collect();
        let (path_column, cam_column) = (column("path"), column("cam_path"));
        let cam_true_column = column("cam_true_path");
        let (mut labels, mut probabilities, mut unlabelled) = (Vec::new(), Vec::new(), 0);
        let (mut paths, mut cam_paths, mut cam_true_paths) = (Vec::new(), Vec::new(), Vec::new());
        for (row, record) in csv.records().enumerate() {
            let line = row + 2;
            let record = record.with_context(|| format!("{name}, line {line}: malformed CSV"))?;
            let label = record.get(label_column).unwrap_or("");
            if label.is_empty() {
                unlabelled += 1;
                continue;
            }
            let label: usize = label
                .parse()
                .ok()
                .filter(|&l| l < classes.len())
                .with_context(|| {
                    format!(
                        "{name}, line {line}: label '{label}' is not a class index below {}",
                        classes.len()
                    )
                })?;
            let p = class_columns
                .iter()
                .map(|(i, c)| {
                    let text = record.get(*i).unwrap_or("");
                    text.parse::<f64>()
                        .ok()
                        .filter(|p| p.is_finite())
                        .with_context(|| {
                            format!("{name}, line {line}: p_{c} '{text}' is not a number")
                        })
                })
                .collect::<Result<Vec<f64>>>()?;
            labels.push(label);
            probabilities.push(p);
            let text = |column: Option<usize>| column.and_then(|c| record.get(c)).unwrap_or("");
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
            bail!(
                "{name}: no rows with a label; run ortl-infer on labelled images (class folders or --manifest)"
            );
        }
        Ok(Self {
            classes,
            labels,
            probabilities,
            unlabelled,
            paths,
            cam_paths,
            cam_true_paths,
        })
    }

    /// Several predictions files as one (shards, or pooled folds): every file must name the
    /// same classes in the same order.
    pub fn from_paths(paths: &[std::path::PathBuf]) -> Result<Self> {
        let mut all: Option<Self> = None;
        for path in paths {
            let next = Self::from_path(path)?;
            match &mut all {
                None => all = Some(next),
                Some(all) => {
                    if next.classes != all.classes {
                        bail!(
                            "{}: classes {:?} differ from {:?} in {}; pool only predictions of the same classes",
                            path.display(),
                            next.classes,
                            all.classes,
                            paths[0].display()
                        );
                    }
                    all.labels.extend(next.labels);
                    all.probabilities.extend(next.probabilities);
                    all.unlabelled += next.unlabelled;
                    all.paths.extend(next.paths);
                    all.cam_paths.extend(next.cam_paths);
                    all.cam_true_paths.extend(next.cam_true_paths);
                }
            }
        }
        all.context("no predictions file given")
    }

    pub fn from_path(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        if path.as_os_str() == "-" {
            return Self::read(std::io::stdin(), "<stdin>");
        }
        let file = std::fs::File::open(path).with_context(|| format!("cannot open {name}"))?;
        Self::read(file, &name)
    }
}

/// One row of history.csv.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
pub struct Epoch {
    pub epoch: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub lr: f64,
    pub seconds: f64,
}

pub fn read_history(path: &Path) -> Result<Vec<Epoch>> {
    let mut csv =
        csv::Reader::from_path(path).with_context(|| format!("cannot open {}", path.display()))?;
    csv.deserialize()
        .enumerate()
        .map(|(i, r)| {
            r.with_context(|| {
                format!(
                    "{}, line {}: not an ortl-train history row",
                    path.display(),
                    i + 2
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ortl_infer_output_and_skips_unlabelled_rows() {
        let text = "path,label,class,predicted,predicted_class,p_normal,p_tb\na.png,0,normal,0,normal,0.9,0.1\nb.png,,,1,tb,0.2,0.8\nc.png,1,tb,1,tb,0.3,0.7\n";
        let p = Predictions::read(text.as_bytes(), "p.csv").unwrap();
        assert_eq!(p.classes, ["normal", "tb"]);
        assert_eq!(p.labels, [0, 1]);
        assert_eq!(p.unlabelled, 1);
        let bad = "path,label,p_a,p_b\nx,0,0.5,oops\n";
        let err = format!(
            "{:#}",
            Predictions::read(bad.as_bytes(), "p.csv").unwrap_err()
        );
        assert!(
            err.contains("p.csv, line 2") && err.contains("p_b"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            Predictions::read("path,p_a,p_b\n".as_bytes(), "p.csv").unwrap_err()
        );
        assert!(err.contains("missing column 'label'"), "{err}");
    }
}
