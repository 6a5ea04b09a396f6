//! How a row's probabilities become a decision: one class per image (the most probable, or
//! class 1 of two at p₁ ≥ t), or each finding of a multi-label model at p ≥ its own
//! threshold. Thresholds are given (`--threshold`) or chosen on predictions of validation
//! images ([`from_file`]) by `ortl_metrics::ThresholdRule`, the rules ortl-report scores
//! with, so a threshold means the same in both.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use ortl_manifest::Predictions;
use ortl_manifest::predictions::multilabel;
use ortl_metrics::{Confusion, ThresholdRule};

use crate::ModelInfo;

/// A finding's threshold when none is given or chosen.
pub const DEFAULT_THRESHOLD: f64 = 0.5;

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// The most probable class; with a threshold (two classes), class 1 at p₁ ≥ t.
    Class(Option<f64>),
    /// Each finding present at p ≥ its threshold, in the model's order.
    Findings(Vec<f64>),
}

impl Decision {
    /// A single-label model's threshold on class 1, when one was given (the predictions'
    /// `threshold` column, so the report scores at it).
    pub fn class_threshold(&self) -> Option<f64> {
        match self {
            Decision::Class(threshold) => *threshold,
            Decision::Findings(_) => None,
        }
    }

    /// With `--threshold`: a two-class model's threshold on class 1, or every finding's.
    pub fn new(info: &ModelInfo, threshold: Option<f64>) -> Result<Self> {
        if info.is_multilabel() {
            let t = threshold.unwrap_or(DEFAULT_THRESHOLD);
            return Ok(Self::Findings(vec![t; info.classes.len()]));
        }
        if threshold.is_some() {
            two_classes(info, "--threshold")?;
        }
        Ok(Self::Class(threshold))
    }

    /// The thresholds [`from_file`] chose (a single-label model's one is class 1's).
    pub fn chosen(info: &ModelInfo, chosen: &[Chosen]) -> Self {
        let thresholds: Vec<f64> = chosen.iter().map(|c| c.threshold).collect();
        if info.is_multilabel() {
            Self::Findings(thresholds)
        } else {
            Self::Class(thresholds.first().copied())
        }
    }

    /// The class a single-label row predicts (with a threshold, compared as the file
    /// writes p and t, as findings are); for findings, the most probable one (the one
    /// Grad-CAM explains unless told otherwise).
    pub fn top(&self, probabilities: &[f32]) -> usize {
        match self {
            Self::Class(Some(t)) => {
                let p = multilabel::as_written(f64::from(probabilities[1]));
                usize::from(p >= multilabel::as_written(*t))
            }
            Self::Class(None) | Self::Findings(_) => probabilities
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i),
        }
    }
}

/// A single-label model's threshold is on class 1 of two.
fn two_classes(info: &ModelInfo, flag: &str) -> Result<()> {
    if info.classes.len() != 2 {
        bail!(
            "{flag} needs a two-class or a multi-label model; this one has {} classes",
            info.classes.len()
        );
    }
    Ok(())
}

/// A threshold chosen by a rule on labelled scores, with what it gave there.
#[derive(Clone, Debug, PartialEq)]
pub struct Chosen {
    /// The finding, or a two-class model's class 1.
    pub name: String,
    pub threshold: f64,
    /// At `threshold`, on the scores it was chosen on (NaN without positives, negatives).
    pub sensitivity: f64,
    pub specificity: f64,
    pub positives: usize,
    pub negatives: usize,
    /// Why the rule's own threshold was not taken.
    pub fallback: Option<Fallback>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// No positives or no negatives: the rule is undefined, so [`DEFAULT_THRESHOLD`].
    OneClass,
    /// Only predicting none of the images holds the rule (`specificity=S` when the highest
    /// score is a negative's): 1, so a file's `t_` stays a number.
    Unreachable,
}

impl Chosen {
    pub fn choose(name: &str, rule: ThresholdRule, labels: &[bool], scores: &[f64]) -> Self {
        let picked = rule.choose(labels, scores);
        let (threshold, fallback) = if picked.is_nan() {
            (DEFAULT_THRESHOLD, Some(Fallback::OneClass))
        } else if picked > 1.0 {
            (1.0, Some(Fallback::Unreachable))
        } else {
            (picked, None)
        };
        let at = Confusion::at(labels, scores, threshold);
        Self {
            name: name.to_string(),
            threshold,
            sensitivity: at.sensitivity(),
            specificity: at.specificity(),
            positives: labels.iter().filter(|&&y| y).count(),
            negatives: labels.iter().filter(|&&y| !y).count(),
            fallback,
        }
    }

    /// The stderr line saying what was chosen on `file`; a fallback's is a warning.
    pub fn describe(&self, rule: ThresholdRule, file: &Path) -> String {
        let rate = |r: f64| {
            if r.is_nan() {
                "n/a".to_string()
            } else {
                format!("{r:.3}")
            }
        };
        let gave = format!(
            "sensitivity {}, specificity {}; {} positive, {} negative",
            rate(self.sensitivity),
            rate(self.specificity),
            self.positives,
            self.negatives
        );
        let (name, t, file) = (&self.name, self.threshold, file.display());
        match self.fallback {
            None => format!("threshold {t} for {name} ({rule} on {file}: {gave})"),
            Some(Fallback::OneClass) => format!(
                "warning: threshold {t} for {name}: {rule} needs positive and negative images of it in {file} ({gave})"
            ),
            Some(Fallback::Unreachable) => format!(
                "warning: threshold {t} for {name}: {rule} holds on {file} only by predicting none of its images, so it is predicted only at p = 1 ({gave})"
            ),
        }
    }
}

/// What `--threshold-from` chose, and on which images.
pub struct ChosenOn {
    pub chosen: Vec<Chosen>,
    /// The labelled images the thresholds were chosen on, as the file names them.
    pub paths: std::collections::HashSet<String>,
}

/// `--threshold-from`: thresholds chosen by `rule` on predictions of labelled (validation)
/// images made with the same classes: each finding's, or class 1's of a two-class model.
/// `model` names the model file in errors.
pub fn from_file(
    file: &Path,
    rule: ThresholdRule,
    info: &ModelInfo,
    model: &Path,
) -> Result<ChosenOn> {
    if !info.is_multilabel() {
        two_classes(info, "--threshold-from")?;
    }
    let mut bytes = Vec::new();
    let read = if file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut bytes)
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_end(&mut bytes))
    };
    read.with_context(|| format!("cannot read {}", file.display()))?;
    let headers = csv::Reader::from_reader(bytes.as_slice())
        .headers()
        .cloned()
        .unwrap_or_default();
    ortl_manifest::predictions::require_csv(&headers, file)?;
    let multilabel = multilabel::is_multilabel(&headers);
    if multilabel != info.is_multilabel() {
        bail!(
            "{}: {} predictions, but {} is a {} model; choose thresholds on its own predictions of validation images (ortl-infer --model {} --manifest MANIFEST --split val -o val.csv)",
            file.display(),
            if multilabel {
                "multi-label"
            } else {
                "single-label"
            },
            model.display(),
            info.task,
            model.display()
        );
    }
    let differ = |theirs: &[String]| {
        anyhow::anyhow!(
            "{}: {} ({}) differ from {}'s ({}); choose thresholds on predictions of the same model's {}",
            file.display(),
            info.noun(),
            ortl_cli::name_list(theirs),
            model.display(),
            ortl_cli::name_list(&info.classes),
            info.noun()
        )
    };
    if multilabel {
        let predictions = multilabel::Predictions::read(bytes.as_slice(), file)?;
        if predictions.findings != info.classes {
            return Err(differ(&predictions.findings));
        }
        Ok(ChosenOn {
            chosen: info
                .classes
                .iter()
                .enumerate()
                .map(|(i, finding)| {
                    let (labels, scores) = predictions.finding(i);
                    Chosen::choose(finding, rule, &labels, &scores)
                })
                .collect(),
            paths: predictions.paths.into_iter().collect(),
        })
    } else {
        let predictions = Predictions::read(bytes.as_slice(), file)?;
        if predictions.classes != info.classes {
            return Err(differ(&predictions.classes));
        }
        let labels: Vec<bool> = predictions.labels.iter().map(|&l| l == 1).collect();
        let scores: Vec<f64> = predictions.probabilities.iter().map(|p| p[1]).collect();
        Ok(ChosenOn {
            chosen: vec![Chosen::choose(&info.classes[1], rule, &labels, &scores)],
            paths: predictions.paths.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ortl_manifest::Task;

    fn info(task: Task, classes: &[&str]) -> ModelInfo {
        ModelInfo {
            input: "image".into(),
            output: "probabilities".into(),
            height: 8,
            width: 8,
            classes: classes.iter().map(|c| c.to_string()).collect(),
            task,
            filter: ortl_imaging::Filter::Bilinear,
            window: ortl_imaging::Window::Auto,
            epoch: None,
        }
    }

    #[test]
    fn a_threshold_decides_class_one_of_two_or_every_finding() {
        let two = info(Task::SingleLabel, &["normal", "tb"]);
        assert_eq!(Decision::new(&two, None).unwrap().top(&[0.4, 0.6]), 1);
        let at = Decision::new(&two, Some(0.7)).unwrap();
        assert_eq!(at.top(&[0.4, 0.6]), 0);
        assert_eq!(at.top(&[0.3, 0.7]), 1, "at the threshold is positive");
        let three = info(Task::SingleLabel, &["a", "b", "c"]);
        let err = Decision::new(&three, Some(0.5)).unwrap_err().to_string();
        assert!(err.contains("has 3 classes"), "{err}");
        let findings = info(Task::MultiLabel, &["a", "b", "c"]);
        let all = Decision::new(&findings, Some(0.3)).unwrap();
        assert_eq!(all, Decision::Findings(vec![0.3; 3]));
        assert_eq!(all.top(&[0.1, 0.9, 0.8]), 1, "the most probable finding");
        assert_eq!(
            Decision::new(&findings, None).unwrap(),
            Decision::Findings(vec![0.5; 3])
        );
    }

    #[test]
    fn a_rule_without_both_classes_or_out_of_reach_falls_back_and_says_so() {
        let youden = ThresholdRule::Youden;
        let file = Path::new("val.csv");
        let ok = Chosen::choose("Mass", youden, &[true, false, true], &[0.8, 0.3, 0.6]);
        assert_eq!((ok.threshold, ok.fallback), (0.6, None));
        assert_eq!((ok.sensitivity, ok.specificity), (1.0, 1.0));
        assert_eq!(
            ok.describe(youden, file),
            "threshold 0.6 for Mass (youden on val.csv: sensitivity 1.000, specificity 1.000; 2 positive, 1 negative)"
        );
        let none = Chosen::choose("Nodule", youden, &[false, false], &[0.7, 0.2]);
        assert_eq!(none.threshold, DEFAULT_THRESHOLD);
        assert_eq!(none.fallback, Some(Fallback::OneClass));
        assert_eq!(
            none.describe(youden, file),
            "warning: threshold 0.5 for Nodule: youden needs positive and negative images of it in val.csv (sensitivity n/a, specificity 0.500; 0 positive, 2 negative)"
        );
        // The highest score is a negative's: only predicting nothing keeps specificity 1.
        let strict: ThresholdRule = "specificity=1".parse().unwrap();
        let far = Chosen::choose("Edema", strict, &[false, true], &[0.9, 0.6]);
        assert_eq!(far.threshold, 1.0);
        assert_eq!(far.fallback, Some(Fallback::Unreachable));
        assert_eq!((far.sensitivity, far.specificity), (0.0, 1.0));
        assert!(
            far.describe(strict, file)
                .contains("specificity=1 holds on val.csv only by predicting none"),
            "{}",
            far.describe(strict, file)
        );
    }
}
