//! What one run of ortl-report does, resolved once from its command line ([`Args`]): every
//! flag checked and typed, so that [`crate::run`] reads settings, never arguments. Checks that
//! need the predictions (a multi-label file refuses `--positive`) happen when they are read.

use std::path::PathBuf;

use anyhow::Result;
use ortl_cli::usage;

use crate::args::{self, Args, Command};
use crate::compare::{AVERAGES, Compared, METRICS};
use crate::intervals::ProportionMethod;
use crate::metrics::Metric;

/// A report of predictions, or a comparison of runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Settings {
    Report(ReportSettings),
    Compare(CompareSettings),
}

/// The report of one set of predictions.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportSettings {
    /// One file or more (shards, folds), evaluated as one; `-` is stdin.
    pub predictions: Vec<PathBuf>,
    pub output: PathBuf,
    pub history: Option<PathBuf>,
    /// ortl-train's run folder: its train.json (provenance) and history.csv.
    pub run: Option<PathBuf>,
    /// ortl-infer's heatmap folder, for the gallery.
    pub cams: Option<PathBuf>,
    /// Predictions to choose the threshold on by Youden's J (two classes only).
    pub threshold_from: Option<PathBuf>,
    pub scoring: Scoring,
}

/// The comparison of run folders.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareSettings {
    /// At least two, no folder twice.
    pub runs: Vec<PathBuf>,
    pub output: PathBuf,
    /// Order the runs by this metric, best first; None: as given.
    pub sort_by: Option<Compared>,
    /// Pool runs of one backbone whose setups differ.
    pub allow_mixed: bool,
    pub scoring: Scoring,
}

/// How predictions are scored and the output written, for the report and the comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Scoring {
    /// Replace an existing output folder.
    pub force: bool,
    /// The positive class of binary metrics; None: the class with label 1.
    pub positive: Option<String>,
    /// The decision threshold given, in [0, 1]; None: the predictions' own, else 0.5.
    pub threshold: Option<f64>,
    pub proportion: ProportionMethod,
    /// The PNG figures' resolution.
    pub dpi: u32,
    /// Bootstrap resamples (0: no bootstrap intervals).
    pub bootstrap: usize,
    pub seed: u64,
}

impl Settings {
    /// Checks and types the arguments; a usage error (exit 2) names the flag to fix.
    pub fn resolve(args: &Args) -> Result<Settings> {
        match &args.command {
            Some(Command::Compare {
                runs,
                output,
                sort_by,
                allow_mixed,
                common,
            }) => {
                let scoring = Scoring::resolve(common)?;
                let sort_by = sort_by.as_deref().map(sort_metric).transpose()?;
                distinct_runs(runs)?;
                Ok(Settings::Compare(CompareSettings {
                    runs: runs.clone(),
                    output: output.clone(),
                    sort_by,
                    allow_mixed: *allow_mixed,
                    scoring,
                }))
            }
            None => {
                let (false, Some(output)) = (args.predictions.is_empty(), &args.output) else {
                    return Err(usage(
                        "--predictions and -o/--output are required (or use the compare subcommand)",
                    ));
                };
                Ok(Settings::Report(ReportSettings {
                    predictions: args.predictions.clone(),
                    output: output.clone(),
                    history: args.history.clone(),
                    run: args.run.clone(),
                    cams: args.cams.clone(),
                    threshold_from: args.threshold_from.clone(),
                    scoring: Scoring::resolve(&args.common)?,
                }))
            }
        }
    }
}

impl Scoring {
    fn resolve(common: &args::Common) -> Result<Scoring> {
        if common.threshold.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
            return Err(usage("--threshold must be between 0 and 1"));
        }
        Ok(Scoring {
            force: common.force,
            positive: common.positive.clone(),
            threshold: common.threshold,
            proportion: common.proportion_interval,
            dpi: common.dpi,
            bootstrap: common.bootstrap,
            seed: common.seed,
        })
    }

    /// The decision threshold given, else 0.5.
    pub fn threshold_or_half(&self) -> f64 {
        self.threshold.unwrap_or(0.5)
    }

    /// Refuses --positive and --threshold, and each of `others` given: multi-label
    /// predictions have a positive per finding and carry their own thresholds.
    pub fn single_label_only(&self, others: &[(&str, bool)]) -> Result<()> {
        let own = [
            ("--positive", self.positive.is_some()),
            ("--threshold", self.threshold.is_some()),
        ];
        let given = own.iter().chain(others).find(|(_, given)| *given);
        match given {
            Some((flag, _)) => Err(usage(format!(
                "{flag} applies to single-label predictions; multi-label ones are scored per finding at their t_<finding> thresholds (choose those with ortl-infer --threshold-from)"
            ))),
            None => Ok(()),
        }
    }
}

/// The metric `--sort-by` names: one of [`METRICS`] or [`AVERAGES`], or a finding's AUC
/// (whether the runs have it is known once they are read).
fn sort_metric(name: &str) -> Result<Compared> {
    let sortable = |m: &Compared| match m {
        Compared::Run(metric) => METRICS.contains(metric) || AVERAGES.contains(metric),
        Compared::FindingAuc(_) => true,
    };
    Compared::from_name(name).filter(sortable).ok_or_else(|| {
        let names = |metrics: &[Metric]| {
            metrics
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        usage(format!(
            "--sort-by '{name}' is not one of {}, {} or {}",
            names(&METRICS),
            names(&AVERAGES),
            Compared::FindingAuc("<finding>".into()).name()
        ))
    })
}

/// Refuses a run folder given twice (`a` and `./a`): it would count as its own repeat.
fn distinct_runs(runs: &[PathBuf]) -> Result<()> {
    let mut seen = std::collections::BTreeMap::new();
    for run in runs {
        let real = std::fs::canonicalize(run).unwrap_or_else(|_| run.clone());
        if let Some(first) = seen.insert(real, run) {
            return Err(usage(format!(
                "{} and {} are the same run folder; give each run once",
                first.display(),
                run.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn resolve(args: &[&str]) -> Result<Settings> {
        let args = Args::try_parse_from(std::iter::once("ortl-report").chain(args.iter().copied()))
            .expect("clap accepts the arguments");
        Settings::resolve(&args)
    }

    fn error(args: &[&str]) -> String {
        let err = resolve(args).expect_err("a usage error");
        assert!(err.is::<ortl_cli::UsageError>(), "{err}");
        err.to_string()
    }

    #[test]
    fn a_report_resolves_every_flag_and_its_defaults() {
        let settings = resolve(&[
            "--predictions",
            "a.csv",
            "b.csv",
            "-o",
            "out",
            "--threshold",
            "0.3",
            "--proportion-interval",
            "clopper-pearson",
        ])
        .unwrap();
        assert_eq!(
            settings,
            Settings::Report(ReportSettings {
                predictions: vec!["a.csv".into(), "b.csv".into()],
                output: "out".into(),
                history: None,
                run: None,
                cams: None,
                threshold_from: None,
                scoring: Scoring {
                    force: false,
                    positive: None,
                    threshold: Some(0.3),
                    proportion: ProportionMethod::ClopperPearson,
                    dpi: 240,
                    bootstrap: 1000,
                    seed: 12,
                },
            })
        );
    }

    #[test]
    fn a_report_needs_predictions_an_output_and_a_threshold_in_range() {
        let required = "--predictions and -o/--output are required (or use the compare subcommand)";
        assert_eq!(error(&["-o", "out"]), required);
        assert_eq!(error(&["--predictions", "p.csv"]), required);
        // The missing arguments are named before the threshold.
        assert_eq!(error(&["--threshold", "2"]), required);
        assert_eq!(
            error(&["--predictions", "p.csv", "-o", "out", "--threshold", "2"]),
            "--threshold must be between 0 and 1"
        );
        assert_eq!(
            error(&["--predictions", "p.csv", "-o", "o", "--threshold", "NaN"]),
            "--threshold must be between 0 and 1"
        );
    }

    #[test]
    fn compare_resolves_sort_by_through_the_metric_names() {
        let Settings::Compare(settings) =
            resolve(&["compare", "a", "b", "-o", "c", "--sort-by", "mcc"]).unwrap()
        else {
            panic!("a comparison")
        };
        assert_eq!(settings.sort_by, Some(Metric::Mcc.into()));
        assert_eq!(settings.scoring.threshold_or_half(), 0.5);
        let Settings::Compare(settings) =
            resolve(&["compare", "a", "b", "-o", "c", "--sort-by", "roc_auc_Mass"]).unwrap()
        else {
            panic!("a comparison")
        };
        assert_eq!(settings.sort_by, Some(Compared::FindingAuc("Mass".into())));
        // A metric the report has but the comparison does not.
        assert_eq!(
            error(&["compare", "a", "b", "-o", "c", "--sort-by", "brier"]),
            "--sort-by 'brier' is not one of accuracy, sensitivity, specificity, f1, mcc, roc_auc, macro_auc, micro_auc or roc_auc_<finding>"
        );
        assert_eq!(
            error(&["compare", "a", "b", "-o", "c", "--threshold=-1"]),
            "--threshold must be between 0 and 1"
        );
    }

    #[test]
    fn compare_refuses_a_run_folder_given_twice() {
        assert_eq!(
            error(&["compare", ".", "./", "-o", "c"]),
            ". and ./ are the same run folder; give each run once"
        );
    }

    #[test]
    fn multi_label_predictions_refuse_the_first_single_label_flag_given() {
        let Settings::Report(settings) =
            resolve(&["--predictions", "p.csv", "-o", "o", "--threshold", "0.4"]).unwrap()
        else {
            panic!("a report")
        };
        let refused = settings
            .scoring
            .single_label_only(&[("--cams", true)])
            .unwrap_err();
        assert!(
            refused
                .to_string()
                .starts_with("--threshold applies to single-label predictions")
        );
        let plain = Scoring {
            threshold: None,
            ..settings.scoring
        };
        assert!(plain.single_label_only(&[("--cams", false)]).is_ok());
    }
}
