//! The summary said once the manifest is written: images per class (or each finding's
//! positives, negatives and unknowns) per split, and groups per split when grouped.

use std::collections::BTreeSet;

use ortl_manifest::multilabel::MultiLabelRow;
use ortl_manifest::{ManifestRow, Split};

/// The per-class, per-split table, with the groups in each split when grouped.
pub fn classes(classes: &[String], rows: &[ManifestRow], unreadable: usize, note: &str) -> String {
    let mut splits: Vec<Split> = rows.iter().map(|r| r.split).collect();
    splits.sort();
    splits.dedup();
    let width = classes.iter().map(String::len).max().unwrap_or(5).max(5);
    let mut table = format!("{:width$}", "class");
    for split in &splits {
        table += &format!(" {:>6}", split.to_string());
    }
    table += &format!(" {:>6}\n", "total");
    for (label, class) in classes.iter().enumerate() {
        table += &format!("{class:width$}");
        let of_class: Vec<&ManifestRow> = rows.iter().filter(|r| r.label == label).collect();
        for split in &splits {
            table += &format!(
                " {:>6}",
                of_class.iter().filter(|r| r.split == *split).count()
            );
        }
        table += &format!(" {:>6}\n", of_class.len());
    }
    if rows.iter().any(|r| r.group.is_some()) {
        let groups = rows.iter().map(|r| (r.split, r.group.as_deref()));
        table += &format!("{:width$}", "groups");
        for split in &splits {
            table += &format!(" {:>6}", distinct_groups(groups.clone(), Some(*split)));
        }
        table += &format!(" {:>6}\n", distinct_groups(groups, None));
    }
    format!(
        "{} images in {} classes ({unreadable} unreadable left out, {note})\n{table}",
        rows.len(),
        classes.len()
    )
}

/// Per finding and split, positives/negatives/unknown, and groups when grouped.
pub fn findings(
    findings: &[String],
    rows: &[MultiLabelRow],
    unreadable: usize,
    note: &str,
) -> String {
    let mut splits: Vec<Split> = rows.iter().map(|r| r.split).collect();
    splits.sort();
    splits.dedup();
    let width = findings.iter().map(String::len).max().unwrap_or(7).max(7);
    let mut table = format!("{:width$}", "finding");
    for split in &splits {
        table += &format!(" {:>16}", format!("{split} +/-/?"));
    }
    table.push('\n');
    for (f, finding) in findings.iter().enumerate() {
        table += &format!("{finding:width$}");
        for split in &splits {
            let of_split = rows.iter().filter(|r| r.split == *split);
            let (mut pos, mut neg, mut unknown) = (0, 0, 0);
            for row in of_split {
                match row.targets[f] {
                    Some(true) => pos += 1,
                    Some(false) => neg += 1,
                    None => unknown += 1,
                }
            }
            table += &format!(" {:>16}", format!("{pos}/{neg}/{unknown}"));
        }
        table.push('\n');
    }
    table += &format!("{:width$}", "images");
    for split in &splits {
        table += &format!(" {:>16}", rows.iter().filter(|r| r.split == *split).count());
    }
    table.push('\n');
    if rows.iter().any(|r| r.group.is_some()) {
        table += &format!("{:width$}", "groups");
        let groups = rows.iter().map(|r| (r.split, r.group.as_deref()));
        for split in &splits {
            table += &format!(" {:>16}", distinct_groups(groups.clone(), Some(*split)));
        }
        table.push('\n');
    }
    format!(
        "{} images with {} findings ({unreadable} unreadable left out, {note})\n{table}",
        rows.len(),
        findings.len()
    )
}

/// How many groups the rows of `split` (every split: `None`) hold.
fn distinct_groups<'a>(
    rows: impl Iterator<Item = (Split, Option<&'a str>)>,
    split: Option<Split>,
) -> usize {
    let names: BTreeSet<&str> = rows
        .filter(|(s, _)| split.is_none_or(|wanted| *s == wanted))
        .filter_map(|(_, group)| group)
        .collect();
    names.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: usize, split: Split, group: &str) -> ManifestRow {
        ManifestRow {
            path: format!("{group}.png"),
            label,
            class: String::new(),
            split,
            group: Some(group.into()),
        }
    }

    #[test]
    fn grouped_counts_add_a_row_of_groups_per_split() {
        let classes = ["a".to_string(), "b".to_string()];
        let rows = [
            row(0, Split::Train, "p1"),
            row(1, Split::Train, "p1"),
            row(1, Split::Val, "p2"),
        ];
        assert_eq!(
            super::classes(&classes, &rows, 1, "0 other files skipped"),
            "3 images in 2 classes (1 unreadable left out, 0 other files skipped)\n\
             class  train    val  total\n\
             a          1      0      1\n\
             b          1      1      2\n\
             groups      1      1      2\n"
        );
    }
}
