//! Splits by group (patient, study): every image of a group lands in one split or one fold,
//! so no patient's other radiographs leak into validation. Stratified by class as far as
//! the groups allow, as scikit-learn's StratifiedGroupKFold does: groups are taken largest
//! first (ties in an order shuffled from the seed) and each goes to the split whose counts
//! it brings closest to their targets (the split's fraction of each class, or of each
//! finding's positives), by the chi-square distance. Deterministic for a seed.

use ortl_manifest::Split;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::SplitPlan;

/// The split of each image, given its class (`classes[i]` < `n_classes`) and its group
/// (`groups[i]`, dense ids from 0).
pub fn assign_grouped(
    classes: &[usize],
    groups: &[usize],
    n_classes: usize,
    plan: &SplitPlan,
) -> Vec<Split> {
    assert_eq!(classes.len(), groups.len());
    let n_groups = groups.iter().max().map_or(0, |&g| g + 1);
    // Without stratification every image counts as one class: only sizes are balanced.
    let width = if plan.stratify { n_classes } else { 1 };
    let mut counts = vec![vec![0usize; width]; n_groups];
    for (i, &g) in groups.iter().enumerate() {
        counts[g][if plan.stratify { classes[i] } else { 0 }] += 1;
    }
    let of_group = split_groups(&counts, plan);
    groups.iter().map(|&g| of_group[g]).collect()
}

/// The split of each group from its counts, one number per thing to balance (images of
/// each class; or positives of each finding, and images): every count is brought as close
/// to the split's fraction of its total as whole groups allow.
pub fn split_groups(counts: &[Vec<usize>], plan: &SplitPlan) -> Vec<Split> {
    let width = counts.first().map_or(0, Vec::len);
    let totals: Vec<f64> = (0..width)
        .map(|c| counts.iter().map(|m| m[c]).sum::<usize>() as f64)
        .collect();

    // The buckets and the fraction of every count each should hold.
    let mut buckets: Vec<(Split, f64)> = match plan.folds {
        Some(k) => (0..k)
            .map(|fold| (Split::Fold(fold), (1.0 - plan.test) / f64::from(k)))
            .collect(),
        None => vec![
            (Split::Train, 1.0 - plan.val - plan.test),
            (Split::Val, plan.val),
        ],
    };
    buckets.push((Split::Test, plan.test));
    let mut filled = vec![vec![0.0f64; width]; buckets.len()];

    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(plan.seed));
    order.sort_by_key(|&g| std::cmp::Reverse(counts[g].iter().sum::<usize>()));

    let mut bucket_of_group = vec![0usize; counts.len()];
    for g in order {
        let group = &counts[g];
        // The rise in Σ (filled − target)² / target (chi-square) if the group joined
        // bucket b: relative to each target, so the splits fill in proportion (an absolute
        // distance would give every early group to the largest split) and a rare
        // finding's few positives weigh as much as a common one's many.
        let cost = |b: usize| -> f64 {
            (0..width)
                .map(|c| {
                    let target = buckets[b].1 * totals[c];
                    if target <= 0.0 {
                        return 0.0;
                    }
                    let v = group[c] as f64;
                    let off = filled[b][c] - target;
                    v * (2.0 * off + v) / target
                })
                .sum()
        };
        let best = (0..buckets.len())
            .filter(|&b| buckets[b].1 > 0.0)
            .min_by(|&a, &b| cost(a).total_cmp(&cost(b)))
            .expect("a split with a positive fraction (SplitPlan::validate)");
        for c in 0..width {
            filled[best][c] += group[c] as f64;
        }
        bucket_of_group[g] = best;
    }
    bucket_of_group.iter().map(|&b| buckets[b].0).collect()
}

/// Whether file names look coded by patient (NIH's `00000001_000.png`,
/// `00000001_001.png`; `P12_left.png`, `P12_right.png`): several files share the part of
/// their name before the first `_`, and that part is not shared by nearly all of them (a
/// class or site prefix). Returns two such names as an example.
pub fn patient_coded(files: &[std::path::PathBuf]) -> Option<String> {
    use std::collections::HashMap;
    let mut by_prefix: HashMap<&str, Vec<&str>> = HashMap::new();
    for file in files {
        let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some((prefix, _)) = name.split_once('_')
            && !prefix.is_empty()
        {
            by_prefix.entry(prefix).or_default().push(name);
        }
    }
    let shared: Vec<&Vec<&str>> = by_prefix
        .values()
        .filter(|names| names.len() >= 2 && names.len() * 4 < files.len())
        .collect();
    let in_shared: usize = shared.iter().map(|names| names.len()).sum();
    (in_shared * 10 >= files.len() && shared.len() >= 2).then(|| {
        let names = shared
            .iter()
            .max_by_key(|names| (names.len(), names[0]))
            .expect("two or more groups");
        format!("{}, {}", names[0], names[1])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assign::tests::plan;
    use std::collections::{HashMap, HashSet};

    /// 300 patients with 1–6 images each; a patient's class is fixed, one in three positive.
    fn patients() -> (Vec<usize>, Vec<usize>) {
        let (mut classes, mut groups) = (Vec::new(), Vec::new());
        for p in 0..300 {
            for _ in 0..(1 + (p * 7) % 6) {
                classes.push(usize::from(p % 3 == 0));
                groups.push(p);
            }
        }
        (classes, groups)
    }

    #[test]
    fn no_group_crosses_splits_and_fractions_hold_per_class() {
        let (classes, groups) = patients();
        let splits = assign_grouped(&classes, &groups, 2, &plan());
        let mut split_of: HashMap<usize, Split> = HashMap::new();
        for (g, s) in groups.iter().zip(&splits) {
            assert_eq!(
                *split_of.entry(*g).or_insert(*s),
                *s,
                "group {g} crosses splits"
            );
        }
        for class in 0..2 {
            let of_class: Vec<Split> = splits
                .iter()
                .zip(&classes)
                .filter(|(_, c)| **c == class)
                .map(|(s, _)| *s)
                .collect();
            let share = |s: Split| {
                of_class.iter().filter(|&&x| x == s).count() as f64 / of_class.len() as f64
            };
            for (split, target) in [(Split::Val, 0.2), (Split::Test, 0.1), (Split::Train, 0.7)] {
                assert!(
                    (share(split) - target).abs() < 0.02,
                    "class {class} {split}: {:.3} for {target}",
                    share(split)
                );
            }
        }
    }

    #[test]
    fn folds_hold_whole_groups_and_balance() {
        let (classes, groups) = patients();
        let plan = SplitPlan {
            val: 0.0,
            test: 0.0,
            folds: Some(5),
            ..plan()
        };
        let splits = assign_grouped(&classes, &groups, 2, &plan);
        let mut sizes = [0usize; 5];
        let mut seen: HashMap<usize, Split> = HashMap::new();
        for (g, s) in groups.iter().zip(&splits) {
            assert_eq!(*seen.entry(*g).or_insert(*s), *s);
            match s {
                Split::Fold(k) => sizes[*k as usize] += 1,
                other => panic!("{other} in a k-fold plan"),
            }
        }
        let mean = splits.len() as f64 / 5.0;
        for size in sizes {
            assert!((size as f64 - mean).abs() / mean < 0.03, "{sizes:?}");
        }
    }

    #[test]
    fn same_seed_same_splits_other_seed_others() {
        let (classes, groups) = patients();
        let a = assign_grouped(&classes, &groups, 2, &plan());
        assert_eq!(a, assign_grouped(&classes, &groups, 2, &plan()));
        let other = SplitPlan { seed: 13, ..plan() };
        assert_ne!(a, assign_grouped(&classes, &groups, 2, &other));
    }

    #[test]
    fn patient_coded_names_are_noticed_and_class_prefixes_are_not() {
        let files = |names: Vec<String>| -> Vec<std::path::PathBuf> {
            names.into_iter().map(Into::into).collect()
        };
        let nih: Vec<String> = (0..30)
            .flat_map(|p| (0..2).map(move |k| format!("{p:08}_{k:03}.png")))
            .collect();
        assert!(patient_coded(&files(nih)).is_some());
        let by_class: Vec<String> = (0..40).map(|i| format!("normal_{i:03}.png")).collect();
        assert_eq!(patient_coded(&files(by_class)), None);
        let plain: Vec<String> = (0..40).map(|i| format!("img{i}.png")).collect();
        assert_eq!(patient_coded(&files(plain)), None);
    }

    #[test]
    fn a_zero_fraction_split_gets_no_group() {
        let (classes, groups) = patients();
        let plan = SplitPlan {
            test: 0.0,
            ..plan()
        };
        let splits: HashSet<Split> = assign_grouped(&classes, &groups, 2, &plan)
            .into_iter()
            .collect();
        assert_eq!(splits, HashSet::from([Split::Train, Split::Val]));
    }
}
