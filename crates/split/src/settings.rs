//! The settings of one run, resolved once from the command line: what [`crate::run()`]
//! reads, and all it reads.

use std::path::PathBuf;

use anyhow::Result;
use ortl_cli::usage;
use ortl_imaging::DecodeLimits;
use ortl_manifest::paths;

use crate::table::{LabelForm, Uncertain};
use crate::{Args, SplitPlan, Verify};

/// Everything a run of ortl-split needs.
#[derive(Clone, Debug)]
pub struct Settings {
    pub source: Source,
    /// Split by group (the patient), when asked.
    pub grouping: Option<Grouping>,
    /// The manifest: `-` is the sink's stdout.
    pub output: PathBuf,
    /// Replace an existing output file.
    pub force: bool,
    /// Fractions, seed, stratification and folds (valid).
    pub plan: SplitPlan,
    pub verify: Verify,
    /// Fail on the first unreadable image or unusable table row instead of leaving it out.
    pub strict: bool,
    pub limits: DecodeLimits,
    /// Worker threads for decoding; `None`: all cores.
    pub threads: Option<usize>,
}

/// Where the images and their labels come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// One sub-folder of images per class; files with these extensions (any case).
    Folders {
        dir: PathBuf,
        extensions: Vec<String>,
    },
    /// A label table, one row per image.
    Table {
        table: PathBuf,
        /// What the table's paths are relative to.
        images: PathBuf,
        /// The path column (`None`: the usual names).
        path_column: Option<String>,
        labels: LabelForm,
        /// Appended to every path.
        path_suffix: Option<String>,
    },
}

/// Where each image's group comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grouping {
    /// A column of the label table.
    Column(String),
    /// A regular expression on the path (its first capture group, else its whole match).
    Path(String),
    /// A DICOM attribute keyword.
    Tag(String),
}

impl Settings {
    /// The settings `args` ask for; a contradiction among them is a usage error.
    pub fn resolve(args: &Args) -> Result<Self> {
        if let (Some(dir), Some(table)) = (&args.data_dir, &args.labels) {
            return Err(usage(format!(
                "give a folder of class sub-folders ({}) or a label table (--labels {}), not both; a table's images folder is --images",
                dir.display(),
                table.display()
            )));
        }
        // Checked here, not by clap's `requires`: clap excuses a requirement on an argument
        // that conflicts with one given (--label-columns with --label-column).
        if args.uncertain.is_some() && args.label_columns.is_empty() {
            return Err(usage(
                "--uncertain maps CheXpert's -1 in --label-columns; give --label-columns",
            ));
        }
        if args.no_finding.is_some() && args.label_separator.is_none() {
            return Err(usage(
                "--no-finding names the no-finding word of --label-separator's joined findings; give --label-separator",
            ));
        }
        let plan = SplitPlan {
            val: if args.folds.is_some() { 0.0 } else { args.val },
            test: args.test,
            seed: args.seed,
            stratify: !args.no_stratify,
            folds: args.folds,
        };
        plan.validate().map_err(usage)?;
        let source = match &args.labels {
            Some(table) => Source::Table {
                table: table.clone(),
                images: args
                    .images
                    .clone()
                    .unwrap_or_else(|| paths::base_dir(table)),
                path_column: args.path_column.clone(),
                labels: label_form(args),
                path_suffix: args.path_suffix.clone(),
            },
            None => Source::Folders {
                dir: args.data_dir.clone().expect("clap: DATA_DIR or --labels"),
                extensions: args.ext.clone(),
            },
        };
        let grouping = [
            args.group_by.clone().map(Grouping::Column),
            args.group_by_path.clone().map(Grouping::Path),
            args.group_by_tag.clone().map(Grouping::Tag),
        ]
        .into_iter()
        .flatten()
        .next();
        Ok(Self {
            source,
            grouping,
            output: args.output.clone(),
            force: args.force,
            plan,
            verify: args.verify,
            strict: args.strict,
            limits: DecodeLimits {
                max_pixels: args.max_pixels,
            },
            threads: args.threads,
        })
    }
}

/// How the table gives each image's label or findings.
fn label_form(args: &Args) -> LabelForm {
    if !args.label_columns.is_empty() {
        LabelForm::PerColumn {
            columns: args.label_columns.clone(),
            uncertain: args.uncertain.unwrap_or(Uncertain::Ignore),
        }
    } else if let Some(separator) = &args.label_separator {
        LabelForm::Joined {
            column: args.label_column.clone(),
            separator: separator.clone(),
            none: args
                .no_finding
                .clone()
                .unwrap_or_else(|| "No Finding".into()),
        }
    } else {
        LabelForm::Single {
            column: args.label_column.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn resolve(args: &[&str]) -> Result<Settings> {
        let args = Args::try_parse_from(std::iter::once(&"ortl-split").chain(args))
            .expect("arguments clap accepts");
        Settings::resolve(&args)
    }

    fn usage_error(args: &[&str]) -> String {
        let err = resolve(args).expect_err("a usage error");
        assert!(err.is::<ortl_cli::UsageError>(), "{err}");
        err.to_string()
    }

    #[test]
    fn class_folders_with_the_defaults() {
        let s = resolve(&["data"]).unwrap();
        let Source::Folders { dir, extensions } = &s.source else {
            panic!("{:?}", s.source)
        };
        assert_eq!(dir, &PathBuf::from("data"));
        assert!(extensions.iter().any(|e| e == "png"), "{extensions:?}");
        assert_eq!(
            s.plan,
            SplitPlan {
                val: 0.2,
                test: 0.0,
                seed: 12,
                stratify: true,
                folds: None
            }
        );
        assert_eq!(s.output, PathBuf::from("-"));
        assert_eq!(
            (s.grouping, s.verify, s.threads),
            (None, Verify::Full, None)
        );
        assert_eq!(s.limits, DecodeLimits::default());
    }

    #[test]
    fn folds_leave_no_validation_fraction_and_groups_come_from_one_place() {
        let s = resolve(&["data", "--folds", "5", "--val", "0.5", "--no-stratify"]).unwrap();
        assert_eq!(
            (s.plan.val, s.plan.folds, s.plan.stratify),
            (0.0, Some(5), false)
        );
        let tag = resolve(&["data", "--group-by-tag", "PatientID"]).unwrap();
        assert_eq!(tag.grouping, Some(Grouping::Tag("PatientID".into())));
        let path = resolve(&["data", "--group-by-path", "p[0-9]+"]).unwrap();
        assert_eq!(path.grouping, Some(Grouping::Path("p[0-9]+".into())));
    }

    #[test]
    fn a_table_resolves_its_images_folder_and_label_form() {
        let s = resolve(&[
            "--labels",
            "sets/nih/labels.csv",
            "--label-separator",
            "|",
            "--group-by",
            "Patient ID",
        ])
        .unwrap();
        let Source::Table { images, labels, .. } = &s.source else {
            panic!("{:?}", s.source)
        };
        assert_eq!(images, &PathBuf::from("sets/nih"));
        assert!(
            matches!(labels, LabelForm::Joined { separator, none, .. } if separator == "|" && none == "No Finding")
        );
        assert_eq!(s.grouping, Some(Grouping::Column("Patient ID".into())));
        let chexpert = resolve(&["--labels", "t.csv", "--label-columns", "A,B"]).unwrap();
        let Source::Table { labels, images, .. } = &chexpert.source else {
            panic!("{:?}", chexpert.source)
        };
        assert_eq!(images, &PathBuf::from("."));
        assert!(matches!(
            labels,
            LabelForm::PerColumn { columns, uncertain: Uncertain::Ignore } if columns == &["A", "B"]
        ));
    }

    #[test]
    fn contradictions_are_usage_errors() {
        assert!(usage_error(&["data", "--labels", "t.csv"]).contains("not both"));
        assert!(
            usage_error(&["--labels", "t.csv", "--uncertain", "zeros"])
                .contains("give --label-columns")
        );
        assert!(
            usage_error(&["--labels", "t.csv", "--no-finding", "none"])
                .contains("give --label-separator")
        );
        assert_eq!(
            usage_error(&["data", "--val", "0.6", "--test", "0.4"]),
            "--val 0.6 plus --test 0.4 leaves no training images; keep their sum below 1"
        );
    }
}
