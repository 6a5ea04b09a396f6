//! `ortl_split::run` called as the binary calls it, with a sink that keeps what it printed:
//! the manifest written to `-` and every line meant for stderr.

use clap::Parser;
use ortl_cli::UsageError;
use ortl_fixtures::{Workdir, multilabel};
use ortl_manifest::multilabel::AnyManifest;
use ortl_split::{Args, Settings, Sink};

/// Resolves `args` and runs them; the outcome, stdout and the lines said.
fn split(args: &[&str]) -> (anyhow::Result<()>, String, Vec<String>) {
    let mut stdout = Vec::new();
    let mut said = Vec::new();
    let args = Args::try_parse_from(std::iter::once("ortl-split").chain(args.iter().copied()));
    let outcome = Settings::resolve(&args.unwrap()).and_then(|settings| {
        ortl_split::run(
            settings,
            Sink {
                stdout: &mut stdout,
                say: &mut |line| said.push(line.to_string()),
            },
        )
    });
    (outcome, String::from_utf8(stdout).unwrap(), said)
}

fn usage_error(outcome: anyhow::Result<()>) -> String {
    let err = outcome.expect_err("a usage error");
    assert!(err.is::<UsageError>(), "{err}");
    err.to_string()
}

#[test]
fn class_folders_give_a_manifest_on_stdout_and_the_counts_are_said() {
    let wd = Workdir::new();
    let data = wd.dataset("data", 5);
    let data = data.to_str().unwrap();
    let (outcome, stdout, said) = split(&[data, "--seed", "3", "--threads", "1"]);
    outcome.unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "path,label,class,split");
    assert_eq!(lines.len(), 1 + 10);
    assert_eq!(
        said,
        [
            "10 images in 2 classes (0 unreadable left out, 0 other files skipped)\n\
          class         train    val  total\n\
          normal            4      1      5\n\
          tuberculosis      4      1      5\n"
        ]
    );
    // A second run in the same process gets its own pool of --threads, and the same bytes.
    let (outcome, again, _) = split(&[data, "--seed", "3", "--threads", "2"]);
    outcome.unwrap();
    assert_eq!(again, stdout);
}

#[test]
fn a_multi_label_table_splits_by_patient_into_a_file() {
    let wd = Workdir::new();
    multilabel::write_nih_style(&wd.join("nih"), 12, 7).unwrap();
    let out = wd.join("m.csv");
    let (outcome, stdout, said) = split(&[
        "--labels",
        wd.join("nih/Data_Entry_2017.csv").to_str().unwrap(),
        "--label-separator",
        "|",
        "--group-by",
        "Patient ID",
        "-o",
        out.to_str().unwrap(),
    ]);
    outcome.unwrap();
    assert!(stdout.is_empty(), "the manifest went to the file");
    let AnyManifest::Findings(manifest) = AnyManifest::read(&out).unwrap() else {
        panic!("a multi-label manifest")
    };
    assert!(!manifest.findings.is_empty());
    assert!(manifest.rows.iter().all(|r| r.group.is_some()));
    let summary = said.last().expect("a summary");
    assert!(
        summary.starts_with(&format!(
            "{} images with {} findings (0 unreadable left out, 0 table rows left out",
            manifest.rows.len(),
            manifest.findings.len()
        )),
        "{said:?}"
    );
    assert!(summary.contains("\ngroups "), "{summary}");
}

#[test]
fn mistakes_in_the_command_or_the_data_are_usage_errors() {
    let wd = Workdir::new();
    let data = wd.dataset("data", 2);
    let data = data.to_str().unwrap();
    let (outcome, stdout, said) = split(&[data, "--labels", "t.csv"]);
    assert!(usage_error(outcome).contains("not both"));
    assert!(stdout.is_empty() && said.is_empty());

    let (outcome, _, _) = split(&[
        data,
        "--group-by-path",
        "(normal|tuberculosis)-0",
        "--folds",
        "3",
    ]);
    assert_eq!(
        usage_error(outcome),
        "--folds 3 needs at least 3 groups; there are 2"
    );

    let existing = wd.join("m.csv");
    std::fs::write(&existing, "keep").unwrap();
    let (outcome, _, said) = split(&[data, "-o", existing.to_str().unwrap()]);
    assert!(usage_error(outcome).ends_with("already exists; pass --force to replace it"));
    assert!(said.is_empty(), "refused before any image is read");
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep");
}
