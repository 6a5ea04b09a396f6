//! One run of ortl-split: the candidates checked, the readable ones assigned to splits, the
//! manifest written, and the counts said.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use ortl_cli::{Output, usage};
use ortl_manifest::multilabel::{self, MultiLabelRow};
use ortl_manifest::{ManifestRow, Split, manifest, paths};

use crate::data::Data;
use crate::grouped::split_groups;
use crate::settings::Settings;
use crate::{SplitPlan, assign, assign_grouped, summary, verify};
use ortl_cli::Sink;

/// Lists, checks and splits the images `settings` name, and writes their manifest.
pub fn run(settings: Settings, sink: Sink<'_>) -> Result<()> {
    match settings.threads {
        Some(threads) => rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?
            .install(|| split(&settings, sink)),
        None => split(&settings, sink),
    }
}

fn split(settings: &Settings, sink: Sink<'_>) -> Result<()> {
    let Sink { stdout, say } = sink;
    // Refused before any image is read when it exists and --force is not given.
    let out = Manifest {
        file: if ortl_cli::io::is_stdio(&settings.output) {
            None
        } else {
            Some(Output::create(&settings.output, settings.force)?)
        },
        stdout,
        base: paths::base_dir(&settings.output),
    };
    let data = Data::gather(settings, say)?;
    if data.groups.is_none()
        && let Some(example) = crate::grouped::patient_coded(&data.files)
    {
        say(&format!(
            "warning: file names look patient-coded ({example}) and no grouping was asked for: one patient's images may land in both training and validation; split by patient with --group-by-path (e.g. '([^/]+)_[^/]*$'), --group-by or --group-by-tag PatientID"
        ));
    }
    let progress = ortl_cli::progress::bar(data.files.len() as u64, "checking");
    let (readable, errors) = verify(&data.files, settings.verify, settings.limits, || {
        progress.inc(1)
    });
    progress.finish_and_clear();
    if settings.strict
        && let Some(first) = errors.first()
    {
        anyhow::bail!("{first} (--strict; {} unreadable in all)", errors.len());
    }
    for err in &errors {
        say(&format!("warning: left out {err}"));
    }
    let kept: Vec<usize> = (0..data.files.len()).filter(|&i| readable[i]).collect();
    if kept.is_empty() {
        return Err(usage(format!(
            "{}: no readable images left",
            data.source.display()
        )));
    }
    // Each kept image's group id, once: for the folds check and the assignment.
    let dense = data
        .groups
        .as_ref()
        .map(|groups| dense_groups(groups, &kept));
    let plan = &settings.plan;
    if let (Some(k), Some(dense)) = (plan.folds, &dense) {
        let n_groups = dense.iter().max().map_or(0, |&g| g + 1);
        if n_groups < k as usize {
            return Err(usage(format!(
                "--folds {k} needs at least {k} groups; there are {n_groups}"
            )));
        }
    }
    let kept = Kept {
        data: &data,
        kept,
        dense,
        unreadable: errors.len(),
    };
    if data.findings.is_empty() {
        write_classes(plan, &kept, out, say)
    } else {
        write_multilabel(plan, &kept, out, say)
    }
}

/// The readable candidates: their indices in the data, their dense group ids when grouped,
/// and how many were left out as unreadable.
struct Kept<'a> {
    data: &'a Data,
    kept: Vec<usize>,
    dense: Option<Vec<usize>>,
    unreadable: usize,
}

impl Kept<'_> {
    /// The manifest path of candidate `i`, relative to `base`.
    fn path(&self, base: &Path, i: usize) -> String {
        paths::relative_to(base, &self.data.files[i])
    }

    /// Candidate `i`'s group when grouped; an image without one is its own (by its path).
    fn group(&self, base: &Path, i: usize) -> Option<String> {
        self.data
            .groups
            .as_ref()
            .map(|groups| groups[i].clone().unwrap_or_else(|| self.path(base, i)))
    }
}

/// Where the manifest goes: the sink's stdout, or a file that appears once it is whole.
struct Manifest<'a> {
    file: Option<Output>,
    stdout: &'a mut (dyn Write + Send),
    /// What its paths are relative to.
    base: std::path::PathBuf,
}

impl Manifest<'_> {
    fn write(self, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
        match self.file {
            Some(mut file) => {
                write(&mut file).context("writing the manifest")?;
                file.flush().context("writing the manifest")?;
                file.finish()
            }
            None => {
                write(self.stdout).context("writing the manifest")?;
                self.stdout.flush().context("writing the manifest")
            }
        }
    }
}

/// A single-label manifest: stratified by class (or by group when grouped).
fn write_classes(
    plan: &SplitPlan,
    kept: &Kept,
    out: Manifest,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<()> {
    let data = kept.data;
    let mut per_class = vec![0usize; data.classes.len()];
    for &i in &kept.kept {
        per_class[data.labels[i]] += 1;
    }
    if let Some(class) = per_class.iter().position(|&n| n == 0) {
        return Err(usage(format!(
            "{}: no readable images left in class '{}'",
            data.source.display(),
            data.classes[class]
        )));
    }
    let splits: Vec<Split> = match &kept.dense {
        Some(dense) => {
            let labels: Vec<usize> = kept.kept.iter().map(|&i| data.labels[i]).collect();
            assign_grouped(&labels, dense, data.classes.len(), plan)
        }
        None => {
            // Each class's images in order, dealt by the per-class assignment.
            let by_class = assign(&per_class, plan);
            let mut next = vec![0usize; data.classes.len()];
            kept.kept
                .iter()
                .map(|&i| {
                    let label = data.labels[i];
                    next[label] += 1;
                    by_class[label][next[label] - 1]
                })
                .collect()
        }
    };
    let rows: Vec<ManifestRow> = kept
        .kept
        .iter()
        .zip(splits)
        .map(|(&i, split)| ManifestRow {
            path: kept.path(&out.base, i),
            label: data.labels[i],
            class: data.classes[data.labels[i]].clone(),
            split,
            group: kept.group(&out.base, i),
        })
        .collect();
    warn_empty(plan, rows.iter().map(|r| r.split), say, |split| {
        let present: Vec<usize> = rows
            .iter()
            .filter(|r| r.split == split)
            .map(|r| r.label)
            .collect();
        data.classes
            .iter()
            .enumerate()
            .filter(|(label, _)| !present.contains(label))
            .map(|(_, class)| format!("class '{class}'"))
            .collect()
    });
    out.write(|w| manifest::write(w, &rows))?;
    say(&summary::classes(
        &data.classes,
        &rows,
        kept.unreadable,
        &data.note,
    ));
    Ok(())
}

/// A multi-label table's manifest: split by group (each image its own group when not
/// grouped), balancing each finding's positives and the images per split.
fn write_multilabel(
    plan: &SplitPlan,
    kept: &Kept,
    out: Manifest,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<()> {
    let data = kept.data;
    // Not grouped: each image is a group of its own.
    let dense = kept
        .dense
        .clone()
        .unwrap_or_else(|| (0..kept.kept.len()).collect());
    let n_groups = dense.iter().max().map_or(0, |&g| g + 1);
    let width = if plan.stratify {
        data.findings.len() + 1
    } else {
        1
    };
    let mut counts = vec![vec![0usize; width]; n_groups];
    for (&i, &g) in kept.kept.iter().zip(&dense) {
        counts[g][width - 1] += 1;
        if plan.stratify {
            for (f, target) in data.targets[i].iter().enumerate() {
                counts[g][f] += usize::from(*target == Some(true));
            }
        }
    }
    let of_group = split_groups(&counts, plan);
    let rows: Vec<MultiLabelRow> = kept
        .kept
        .iter()
        .zip(&dense)
        .map(|(&i, &g)| MultiLabelRow {
            path: kept.path(&out.base, i),
            split: of_group[g],
            targets: data.targets[i].clone(),
            group: kept.group(&out.base, i),
        })
        .collect();
    for (f, finding) in data.findings.iter().enumerate() {
        if !rows.iter().any(|r| r.targets[f] == Some(true)) {
            say(&format!(
                "warning: finding '{finding}' is never positive: a classifier cannot learn it (check the column or --uncertain)"
            ));
        }
    }
    warn_empty(plan, rows.iter().map(|r| r.split), say, |split| {
        data.findings
            .iter()
            .enumerate()
            .filter(|(f, _)| {
                rows.iter().any(|r| r.targets[*f] == Some(true))
                    && !rows
                        .iter()
                        .any(|r| r.split == split && r.targets[*f] == Some(true))
            })
            .map(|(_, finding)| format!("a positive '{finding}'"))
            .collect()
    });
    out.write(|w| multilabel::write(w, &data.findings, &rows))?;
    say(&summary::findings(
        &data.findings,
        &rows,
        kept.unreadable,
        &data.note,
    ));
    Ok(())
}

/// Warns of each split the plan asks for that got no image, or lacks what `missing(split)`
/// lists (classes, or findings' positives): whole groups can leave a split short.
fn warn_empty(
    plan: &SplitPlan,
    splits: impl Iterator<Item = Split>,
    say: &mut (dyn FnMut(&str) + Send),
    missing: impl Fn(Split) -> Vec<String>,
) {
    let got: BTreeSet<Split> = splits.collect();
    let mut wanted: Vec<Split> = match plan.folds {
        Some(k) => (0..k).map(Split::Fold).collect(),
        None => [Split::Train]
            .into_iter()
            .chain((plan.val > 0.0).then_some(Split::Val))
            .collect(),
    };
    if plan.test > 0.0 {
        wanted.push(Split::Test);
    }
    for split in wanted {
        if !got.contains(&split) {
            say(&format!(
                "warning: split {split} got no image (the groups are too few or too large for the fractions asked)"
            ));
            continue;
        }
        let lacking = missing(split);
        if !lacking.is_empty() {
            say(&format!(
                "warning: split {split} has no {}",
                lacking.join(", no ")
            ));
        }
    }
}

/// Dense group ids over the kept images; an image without a group is a group of its own.
fn dense_groups(groups: &[Option<String>], kept: &[usize]) -> Vec<usize> {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut next = 0;
    kept.iter()
        .map(|&i| {
            let id = match &groups[i] {
                Some(g) => *ids.entry(g.as_str()).or_insert(next),
                None => next,
            };
            next = next.max(id + 1);
            id
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_groups_number_kept_images_and_give_the_groupless_their_own() {
        let groups = [
            Some("p2".to_string()),
            None,
            Some("p1".to_string()),
            Some("p2".to_string()),
            None,
        ];
        assert_eq!(dense_groups(&groups, &[0, 1, 2, 3, 4]), [0, 1, 2, 0, 3]);
        assert_eq!(dense_groups(&groups, &[2, 3, 0]), [0, 1, 1]);
    }

    #[test]
    fn empty_and_short_splits_are_named() {
        let plan = SplitPlan {
            val: 0.2,
            test: 0.1,
            seed: 1,
            stratify: true,
            folds: None,
        };
        let mut said = Vec::new();
        warn_empty(
            &plan,
            [Split::Train, Split::Val].into_iter(),
            &mut |line| said.push(line.to_string()),
            |split| match split {
                Split::Val => vec!["class 'b'".into()],
                _ => Vec::new(),
            },
        );
        assert_eq!(
            said,
            [
                "warning: split val has no class 'b'",
                "warning: split test got no image (the groups are too few or too large for the fractions asked)"
            ]
        );
    }
}
