//! One error type for every contract file: what is wrong, where (file and line), the fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{}: cannot read: {source}", file.display())]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: missing column '{column}' (expected header: {expected})", file.display())]
    MissingColumn {
        file: PathBuf,
        column: String,
        expected: String,
    },
    #[error("{}, line {line}: {message}", file.display())]
    Row {
        file: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{}: {message}", file.display())]
    Invalid { file: PathBuf, message: String },
}

impl FormatError {
    pub(crate) fn from_csv(file: &std::path::Path, err: csv::Error) -> Self {
        let line = err.position().map(|p| p.line());
        match (err.into_kind(), line) {
            (csv::ErrorKind::Io(source), _) => FormatError::Io {
                file: file.into(),
                source,
            },
            (kind, Some(line)) => FormatError::Row {
                file: file.into(),
                line,
                message: describe(&kind),
            },
            (kind, None) => FormatError::Invalid {
                file: file.into(),
                message: describe(&kind),
            },
        }
    }
}

fn describe(kind: &csv::ErrorKind) -> String {
    match kind {
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8 (save the file as UTF-8)".into(),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("{len} fields where the header has {expected_len}")
        }
        csv::ErrorKind::Deserialize { err, .. } => {
            let field = err
                .field()
                .map(|f| format!("field {}: ", f + 1))
                .unwrap_or_default();
            format!("{field}{}", err.kind())
        }
        other => format!("{other:?}"),
    }
}

/// A CSV writer's error as the I/O error underneath it, when there is one.
pub(crate) fn into_io(err: csv::Error) -> std::io::Error {
    if err.is_io_error() {
        match err.into_kind() {
            csv::ErrorKind::Io(io) => io,
            other => std::io::Error::other(format!("{other:?}")),
        }
    } else {
        std::io::Error::other(err)
    }
}
