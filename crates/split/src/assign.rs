//! Assigning images to splits. Each class's files (sorted by path) are shuffled by a
//! generator seeded from `--seed` alone, so the same seed and files give the same manifest.
//! Stratified splits take `round(n · fraction)` of every class; k-fold deals each class's
//! shuffled files round-robin, continuing across classes so folds differ in size by one.

use ortl_manifest::Split;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SplitPlan {
    pub val: f64,
    pub test: f64,
    pub seed: u64,
    pub stratify: bool,
    /// k-fold: `split` holds the fold number (the test fraction is held out first).
    pub folds: Option<u32>,
}

impl SplitPlan {
    pub fn validate(&self) -> Result<(), String> {
        for (name, f) in [("--val", self.val), ("--test", self.test)] {
            if !(0.0..1.0).contains(&f) {
                return Err(format!("{name} {f} must be at least 0 and below 1"));
            }
        }
        if self.val + self.test >= 1.0 {
            return Err(format!(
                "--val {} plus --test {} leaves no training images; keep their sum below 1",
                self.val, self.test
            ));
        }
        if self.folds.is_some_and(|k| k < 2) {
            return Err("--folds must be at least 2".into());
        }
        Ok(())
    }
}

/// The split of every file, per class, in the order of `counts` (files per class).
pub fn assign(counts: &[usize], plan: &SplitPlan) -> Vec<Vec<Split>> {
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
    let mut out: Vec<Vec<Split>> = counts.iter().map(|&n| vec![Split::Train; n]).collect();
    let mut next_fold = 0u32;
    let mut deal =
        |order: &[(usize, usize)], out: &mut Vec<Vec<Split>>, n_test: usize, n_val: usize| {
            for (rank, &(class, index)) in order.iter().enumerate() {
                out[class][index] = if rank < n_test {
                    Split::Test
                } else if let Some(k) = plan.folds {
                    let fold = next_fold % k;
                    next_fold += 1;
                    Split::Fold(fold)
                } else if rank < n_test + n_val {
                    Split::Val
                } else {
                    Split::Train
                };
            }
        };
    if plan.stratify {
        for (class, &n) in counts.iter().enumerate() {
            let mut order: Vec<(usize, usize)> = (0..n).map(|i| (class, i)).collect();
            order.shuffle(&mut rng);
            deal(
                &order,
                &mut out,
                fraction(n, plan.test),
                fraction(n, plan.val),
            );
        }
    } else {
        let mut order: Vec<(usize, usize)> = counts
            .iter()
            .enumerate()
            .flat_map(|(c, &n)| (0..n).map(move |i| (c, i)))
            .collect();
        order.shuffle(&mut rng);
        let total = order.len();
        deal(
            &order,
            &mut out,
            fraction(total, plan.test),
            fraction(total, plan.val),
        );
    }
    out
}

fn fraction(n: usize, f: f64) -> usize {
    ((n as f64) * f).round() as usize
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The plan the split tests start from: 0.2 validation, 0.1 test, stratified.
    pub(crate) fn plan() -> SplitPlan {
        SplitPlan {
            val: 0.2,
            test: 0.1,
            seed: 12,
            stratify: true,
            folds: None,
        }
    }

    fn count(splits: &[Split], s: Split) -> usize {
        splits.iter().filter(|&&x| x == s).count()
    }

    #[test]
    fn stratified_fractions_per_class() {
        let out = assign(&[70, 90], &plan());
        assert_eq!(
            (count(&out[0], Split::Val), count(&out[0], Split::Test)),
            (14, 7)
        );
        assert_eq!(
            (count(&out[1], Split::Val), count(&out[1], Split::Test)),
            (18, 9)
        );
        assert_eq!(count(&out[1], Split::Train), 63);
    }

    #[test]
    fn same_seed_same_result_other_seed_other_result() {
        assert_eq!(assign(&[30, 40], &plan()), assign(&[30, 40], &plan()));
        let other = SplitPlan { seed: 13, ..plan() };
        assert_ne!(assign(&[30, 40], &plan()), assign(&[30, 40], &other));
    }

    #[test]
    fn folds_cover_every_file_once_and_balance() {
        let plan = SplitPlan {
            val: 0.0,
            test: 0.0,
            folds: Some(5),
            ..plan()
        };
        let out = assign(&[23, 31], &plan);
        let mut sizes = [0usize; 5];
        for class in &out {
            for s in class {
                match s {
                    Split::Fold(k) => sizes[*k as usize] += 1,
                    other => panic!("unexpected {other}"),
                }
            }
        }
        assert_eq!(sizes.iter().sum::<usize>(), 54);
        assert!(
            sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
            "{sizes:?}"
        );
        // Within each class the folds differ by at most one.
        for class in &out {
            let per: Vec<usize> = (0..5).map(|k| count(class, Split::Fold(k))).collect();
            assert!(
                per.iter().max().unwrap() - per.iter().min().unwrap() <= 1,
                "{per:?}"
            );
        }
    }

    #[test]
    fn plain_shuffle_takes_fractions_of_the_whole() {
        let plan = SplitPlan {
            stratify: false,
            ..plan()
        };
        let out = assign(&[50, 50], &plan);
        let all: Vec<Split> = out.concat();
        assert_eq!(
            (count(&all, Split::Val), count(&all, Split::Test)),
            (20, 10)
        );
    }

    #[test]
    fn bad_fractions_are_refused() {
        assert!(
            SplitPlan {
                val: 0.6,
                test: 0.4,
                ..plan()
            }
            .validate()
            .is_err()
        );
        assert!(
            SplitPlan {
                val: -0.1,
                ..plan()
            }
            .validate()
            .is_err()
        );
        assert!(
            SplitPlan {
                folds: Some(1),
                ..plan()
            }
            .validate()
            .is_err()
        );
        assert!(plan().validate().is_ok());
    }
}
