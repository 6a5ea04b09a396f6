//! One wrapper around `main` so every stage has the same exit codes and error format:
//! 0 ok, 1 runtime failure, 2 usage, quiet 0 on a closed pipe, `ortl-<stage>: <error>`.

use std::io::{self, ErrorKind};
use std::process::ExitCode;

use clap::Parser;

/// Exit status for a run that failed at run time (I/O, corrupt data, a model that fails).
pub const FAILURE: u8 = 1;
/// Exit status for bad arguments or input the user must fix before running again.
pub const USAGE: u8 = 2;

/// Exit status after Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;

/// A run stopped on request (Ctrl-C, SIGTERM) after saving its state; exits with 130.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub String);

/// Wraps a message as an interruption (exit code 130).
pub fn interrupted(message: impl Into<String>) -> anyhow::Error {
    Interrupted(message.into()).into()
}

/// An error the user fixes by changing the command line or the input layout; exits with 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Wraps a message as a usage error (exit code 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// Parses `A` from the command line and runs `run`, mapping the outcome to an exit code.
pub fn main_with<A: Parser>(name: &str, run: impl FnOnce(A) -> anyhow::Result<()>) -> ExitCode {
    let args = match A::try_parse() {
        Ok(args) => args,
        Err(err) => {
            // Help and version go to stdout and succeed; clap exits 2 for usage errors.
            let _ = err.print();
            return ExitCode::from(err.exit_code().clamp(0, 255) as u8);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(name, &err),
    }
}

fn report(name: &str, err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    eprintln!("{name}: {}", one_line(err));
    if err.chain().any(|cause| cause.is::<Interrupted>()) {
        ExitCode::from(INTERRUPTED)
    } else if err.chain().any(|cause| cause.is::<UsageError>()) {
        ExitCode::from(USAGE)
    } else {
        ExitCode::from(FAILURE)
    }
}

/// The error and its causes on one line, `outer: inner: …`, leaving out a cause whose text
/// is already there: an error type that prints its source in its own message (`X: cannot
/// read: {source}`) and also returns it as its source would otherwise name the OS error
/// twice.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// A reader that closed our stdout (`| head`) is not a failure of ours.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
    })
}

/// `n` and the noun in the number it takes: "1 image", "2 images".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Names for a one-line error, comma-separated: all of them up to twelve, else the first
/// ten and how many more (an ImageNet classifier has 1000 classes).
pub fn name_list(names: &[String]) -> String {
    const ALL_UP_TO: usize = 12;
    const SHOWN: usize = 10;
    if names.len() <= ALL_UP_TO {
        return names.join(", ");
    }
    format!(
        "{}, … and {} more",
        names[..SHOWN].join(", "),
        names.len() - SHOWN
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn broken_pipe_is_found_anywhere_in_the_chain() {
        let err = anyhow::Error::from(io::Error::from(ErrorKind::BrokenPipe))
            .context("writing row 3")
            .context("writing stdout");
        assert!(is_broken_pipe(&err));
        let other = anyhow::Error::from(io::Error::from(ErrorKind::StorageFull));
        assert!(!is_broken_pipe(&other));
    }

    #[test]
    fn usage_errors_keep_their_kind_under_context() {
        let err: anyhow::Result<()> = Err(usage("DATA_DIR has one class"));
        let err = err.context("reading data").unwrap_err();
        assert!(err.chain().any(|c| c.is::<UsageError>()));
        assert_eq!(format!("{err:#}"), "reading data: DATA_DIR has one class");
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("manifest.csv: cannot read: {source}")]
        struct ReadError {
            source: io::Error,
        }
        let err = anyhow::Error::from(ReadError {
            source: io::Error::from(ErrorKind::NotFound),
        })
        .context("reading the manifest");
        assert_eq!(
            one_line(&err),
            "reading the manifest: manifest.csv: cannot read: entity not found"
        );
        assert_eq!(
            one_line(&usage("bad").context("outer")),
            "outer: bad",
            "distinct causes are all kept"
        );
    }

    #[test]
    fn counts_take_the_nouns_number() {
        assert_eq!(count(1, "epoch", "epochs"), "1 epoch");
        assert_eq!(count(0, "class", "classes"), "0 classes");
        assert_eq!(count(30, "epoch", "epochs"), "30 epochs");
    }

    #[test]
    fn long_name_lists_are_cut_short() {
        let names = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(name_list(&names(2)), "0, 1");
        assert_eq!(name_list(&names(12)).split(", ").count(), 12);
        assert_eq!(
            name_list(&names(1000)),
            "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, … and 990 more"
        );
    }
}
