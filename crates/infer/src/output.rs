//! Prediction rows: `path,label,class,predicted,predicted_class,p_<class>…` as CSV, TSV or
//! JSON lines (label and class empty, or null, when unknown).

use std::io::Write;

use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Tsv,
    Jsonl,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "tsv" => Ok(Format::Tsv),
            "jsonl" => Ok(Format::Jsonl),
            other => Err(format!("unknown format '{other}' (use csv, tsv or jsonl)")),
        }
    }
}

/// Where rows go: a CSV/TSV writer or JSON lines.
enum Sink<W: Write> {
    Delimited(Box<csv::Writer<W>>),
    Jsonl(W),
}

pub struct Writer<W: Write> {
    sink: Sink<W>,
    classes: Vec<String>,
    /// Extra columns top1…topK (0: none).
    top_k: usize,
    /// Last columns `cam_path` (the heatmap overlay, empty when none was made) and
    /// `cam_true_path` (the true class's overlay of a misclassified image).
    cam: bool,
}

/// One prediction.
pub struct Row<'a> {
    pub path: &'a str,
    pub label: Option<usize>,
    pub predicted: usize,
    pub probabilities: &'a [f32],
    pub cam_path: Option<&'a str>,
    pub cam_true_path: Option<&'a str>,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, format: Format, classes: &[String], top_k: usize, cam: bool) -> Self {
        let sink = match format {
            Format::Jsonl => Sink::Jsonl(out),
            Format::Csv => Sink::Delimited(Box::new(csv::WriterBuilder::new().from_writer(out))),
            Format::Tsv => Sink::Delimited(Box::new(
                csv::WriterBuilder::new().delimiter(b'\t').from_writer(out),
            )),
        };
        Self {
            sink,
            classes: classes.to_vec(),
            top_k,
            cam,
        }
    }

    pub fn header(&mut self) -> std::io::Result<()> {
        if let Sink::Delimited(csv) = &mut self.sink {
            let mut fields = vec![
                "path".to_string(),
                "label".into(),
                "class".into(),
                "predicted".into(),
                "predicted_class".into(),
            ];
            fields.extend(self.classes.iter().map(|c| format!("p_{c}")));
            fields.extend((1..=self.top_k).map(|k| format!("top{k}")));
            if self.cam {
                fields.push("cam_path".into());
                fields.push("cam_true_path".into());
            }
            csv.write_record(&fields)?;
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
                csv.write_record(&fields)?;
            }
            Sink::Jsonl(out) => {
                let mut value = json!({
                    "path": row.path, "label": row.label, "class": class,
                    "predicted": row.predicted, "predicted_class": self.classes[row.predicted],
                });
                for (c, p) in self.classes.iter().zip(row.probabilities) {
                    value[format!("p_{c}")] = json!(p);
                }
                for (k, class) in ranked.into_iter().enumerate() {
                    value[format!("top{}", k + 1)] = json!(class);
                }
                if self.cam {
                    value["cam_path"] = json!(row.cam_path);
                    value["cam_true_path"] = json!(row.cam_true_path);
                }
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

    /// Pushes buffered rows through to the output (once per batch).
    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Delimited(csv) => csv.flush(),
            Sink::Jsonl(out) => out.flush(),
        }
    }
}
