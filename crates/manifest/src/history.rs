//! `history.csv`: one row per finished epoch, written by `ortl-train` after every epoch and
//! read by `ortl-report` for the training curves.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::FormatError;
use crate::error::into_io;

/// The columns every `history.csv` has, in order (`val_auc` follows in files since it
/// existed).
pub const HEADER: &str = "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds";

/// One epoch's results (1-based `epoch`; validation figures are NaN without validation
/// images).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Epoch {
    pub epoch: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    /// The learning rate the epoch ended with.
    pub lr: f64,
    pub seconds: f64,
    /// Macro ROC AUC on validation (classes one against the rest, a two-class model's
    /// positive class, or findings with both values known); absent in histories from
    /// before it: NaN.
    #[serde(default = "not_measured")]
    pub val_auc: f64,
}

fn not_measured() -> f64 {
    f64::NAN
}

/// Writes the whole history (header and rows) to `out`.
pub fn write(out: impl Write, history: &[Epoch]) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_writer(out);
    for row in history {
        csv.serialize(row).map_err(into_io)?;
    }
    csv.flush()
}

/// Reads a history.csv, naming the line of a row that is not one.
pub fn read(path: &Path) -> Result<Vec<Epoch>, FormatError> {
    let mut csv = csv::Reader::from_path(path).map_err(|e| FormatError::from_csv(path, e))?;
    let headers = csv
        .headers()
        .map_err(|e| FormatError::from_csv(path, e))?
        .clone();
    for column in HEADER.split(',') {
        if !headers.iter().any(|h| h == column) {
            return Err(FormatError::MissingColumn {
                file: path.into(),
                column: column.into(),
                expected: format!("{HEADER} (ortl-train's history.csv)"),
            });
        }
    }
    csv.deserialize()
        .map(|row| row.map_err(|e| FormatError::from_csv(path, e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_header_and_reads_back_what_it_wrote() {
        let rows = vec![
            Epoch {
                epoch: 1,
                loss: 0.693,
                accuracy: 0.5,
                val_loss: f64::NAN,
                val_accuracy: f64::NAN,
                lr: 1e-3,
                seconds: 2.5,
                val_auc: f64::NAN,
            },
            Epoch {
                epoch: 2,
                loss: 0.25,
                accuracy: 0.875,
                val_loss: 0.3,
                val_accuracy: 0.8,
                lr: 9e-4,
                seconds: 2.25,
                val_auc: 0.75,
            },
        ];
        let mut bytes = Vec::new();
        write(&mut bytes, &rows).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text.lines().next(),
            Some(format!("{HEADER},val_auc").as_str())
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.csv");
        std::fs::write(&path, &text).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1], rows[1]);
        assert!(back[0].val_loss.is_nan() && back[0].loss == 0.693);
        // A history from before val_auc reads with it NaN.
        std::fs::write(&path, format!("{HEADER}\n1,0.5,0.5,0.4,0.6,0.001,1\n")).unwrap();
        assert!(read(&path).unwrap()[0].val_auc.is_nan());
    }

    #[test]
    fn names_the_missing_column_and_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.csv");
        std::fs::write(&path, "epoch,loss\n1,0.5\n").unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("missing column 'accuracy'"), "{err}");
        std::fs::write(
            &path,
            format!("{HEADER}\n1,0.5,0.5,0.5,0.5,0.001,1\n2,x,0.5,0.5,0.5,0.001,1\n"),
        )
        .unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
    }
}
