//! The closed set of metrics ortl reports, each with one name for files (metrics.json,
//! metrics.csv, the comparison tables, `--sort-by`) and one label for people (the HTML and
//! Markdown reports, figure axes and legends).

use serde::{Serialize, Serializer};

/// Declares [`Metric`] from one table, variant and file name, in report order: the enum,
/// [`Metric::ALL`] and [`Metric::name`] cannot disagree.
macro_rules! metrics {
    ($($variant:ident => $name:literal,)+) => {
        /// A metric, whatever it is computed over (all images, one class, one finding): the
        /// scope is the caller's to carry.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Metric {
            $($variant,)+
        }

        impl Metric {
            /// Every metric, in report order.
            pub const ALL: [Metric; [$($name),+].len()] = [$(Metric::$variant),+];

            /// The name files use: metrics.json, metrics.csv, the comparison tables' columns.
            pub fn name(self) -> &'static str {
                match self {
                    $(Metric::$variant => $name,)+
                }
            }
        }
    };
}

metrics! {
    // At a decision threshold, in `threshold_metrics`' order.
    Sensitivity => "sensitivity",
    Specificity => "specificity",
    Accuracy => "accuracy",
    ErrorRate => "error_rate",
    Precision => "precision",
    Npv => "npv",
    F1 => "f1",
    Mcc => "mcc",
    BalancedAccuracy => "balanced_accuracy",
    CohenKappa => "cohen_kappa",
    // Of the scores, at no one threshold.
    RocAuc => "roc_auc",
    AveragePrecision => "average_precision",
    Brier => "brier",
    LogLoss => "log_loss",
    SensitivityAtSpecificity90 => "sensitivity_at_specificity_0.90",
    SpecificityAtSensitivity90 => "specificity_at_sensitivity_0.90",
    SensitivityAtSpecificity95 => "sensitivity_at_specificity_0.95",
    SpecificityAtSensitivity95 => "specificity_at_sensitivity_0.95",
    // At the Youden-optimal threshold chosen on the same images.
    SensitivityAtYouden => "sensitivity_at_youden",
    SpecificityAtYouden => "specificity_at_youden",
    AccuracyAtYouden => "accuracy_at_youden",
    F1AtYouden => "f1_at_youden",
    MccAtYouden => "mcc_at_youden",
    // One class per image, any number of classes.
    MulticlassAccuracy => "multiclass_accuracy",
    MulticlassMcc => "multiclass_mcc",
    MacroF1 => "macro_f1",
    WeightedF1 => "weighted_f1",
    // Averages of ROC AUC over classes (one vs rest) or findings, and over pooled labels.
    MacroAuc => "macro_auc",
    MicroAuc => "micro_auc",
}

use Metric::*;

impl Metric {
    /// The metric a file names `name`; None for a name that is no metric.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The name people read: report tables, figure axes and legends.
    pub fn label(self) -> String {
        let label = match self {
            Sensitivity => "Sensitivity (recall)",
            Specificity => "Specificity",
            Accuracy => "Accuracy",
            ErrorRate => "Error rate",
            Precision => "Precision (PPV)",
            Npv => "Negative predictive value (NPV)",
            F1 => "F1 score",
            Mcc => "Matthews correlation (MCC)",
            BalancedAccuracy => "Balanced accuracy",
            CohenKappa => "Cohen’s kappa",
            RocAuc => "ROC AUC",
            AveragePrecision => "Average precision (PR AUC)",
            Brier => "Brier score",
            LogLoss => "Log loss",
            SensitivityAtSpecificity90 => "Sensitivity at specificity 0.90",
            SpecificityAtSensitivity90 => "Specificity at sensitivity 0.90",
            SensitivityAtSpecificity95 => "Sensitivity at specificity 0.95",
            SpecificityAtSensitivity95 => "Specificity at sensitivity 0.95",
            SensitivityAtYouden | SpecificityAtYouden | AccuracyAtYouden | F1AtYouden
            | MccAtYouden => {
                let base = self
                    .repeated_at_youden()
                    .expect("a metric at the Youden threshold");
                return format!("{} at the Youden threshold", base.label());
            }
            MulticlassAccuracy => "Multi-class accuracy",
            MulticlassMcc => "Multi-class Matthews correlation (MCC)",
            MacroF1 => "Macro F1 score",
            WeightedF1 => "Weighted F1 score",
            MacroAuc => "Macro ROC AUC",
            MicroAuc => "Micro ROC AUC",
        };
        label.into()
    }

    /// The threshold metric this one measures again at the Youden threshold; None for the
    /// others.
    pub fn repeated_at_youden(self) -> Option<Metric> {
        match self {
            SensitivityAtYouden => Some(Sensitivity),
            SpecificityAtYouden => Some(Specificity),
            AccuracyAtYouden => Some(Accuracy),
            F1AtYouden => Some(F1),
            MccAtYouden => Some(Mcc),
            _ => None,
        }
    }

    /// The values the metric can take (an interval over folds is clipped to them).
    pub fn range(self) -> (f64, f64) {
        match self {
            Mcc | MccAtYouden | MulticlassMcc | CohenKappa => (-1.0, 1.0),
            LogLoss => (0.0, f64::INFINITY),
            _ => (0.0, 1.0),
        }
    }
}

/// Files hold the metric's [`Metric::name`].
impl Serialize for Metric {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// The label of the metric a file names `name` ([`Metric::label`]); a name that is no
/// metric is its own label.
pub fn label(name: &str) -> String {
    Metric::from_name(name).map_or_else(|| name.into(), Metric::label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_unique_and_reads_back_as_its_metric() {
        for metric in Metric::ALL {
            assert_eq!(Metric::from_name(metric.name()), Some(metric));
            assert_eq!(label(metric.name()), metric.label());
        }
        assert_eq!(Metric::from_name("roc_auc_Mass"), None);
        assert_eq!(label("roc_auc_Mass"), "roc_auc_Mass");
        assert_eq!(
            serde_json::to_string(&Metric::SensitivityAtSpecificity90).unwrap(),
            "\"sensitivity_at_specificity_0.90\""
        );
    }

    #[test]
    fn a_metric_at_the_youden_threshold_is_labelled_after_the_one_it_repeats() {
        assert_eq!(
            Metric::MccAtYouden.label(),
            "Matthews correlation (MCC) at the Youden threshold"
        );
        let repeated: Vec<Metric> = Metric::ALL
            .into_iter()
            .filter_map(Metric::repeated_at_youden)
            .collect();
        assert_eq!(repeated, [Sensitivity, Specificity, Accuracy, F1, Mcc]);
    }
}
