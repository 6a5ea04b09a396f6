//! ortl-split on a label table, as NIH ChestX-ray14 and RSNA publish them: bare file names
//! spread over sub-folders, several radiographs per patient, rows that cannot be used.

use std::collections::HashMap;
use std::fs;

use ortl_fixtures::Workdir;
use ortl_fixtures::workdir::run;
use ortl_manifest::{Manifest, Split};

const BIN: &str = env!("CARGO_BIN_EXE_ortl-split");

/// 40 images per class; patients of 1 to 4 radiographs, each patient one class; the table
/// lists bare file names (the images sit in class sub-folders), one row whose image is
/// missing and one without a label.
fn nih_style(wd: &Workdir) {
    wd.dataset("images", 40);
    let mut text = String::from("Image Index,Finding Labels,Patient ID,View Position\n");
    for class in ["normal", "tuberculosis"] {
        let (mut patient, mut left) = (0, 1);
        for i in 0..40 {
            if left == 0 {
                patient += 1;
                left = 1 + patient % 4;
            }
            left -= 1;
            text += &format!("{class}-{i:03}.png,{class},{class}-p{patient},PA\n");
        }
    }
    text += "gone-001.png,normal,x-p1,PA\n";
    text += "normal-000.png,,normal-p0,AP\n";
    fs::write(wd.join("labels.csv"), text).unwrap();
}

fn split(wd: &Workdir, args: &[&str]) -> (i32, String, String) {
    run(wd.command(BIN).args(args))
}

const TABLE: [&str; 6] = [
    "--labels",
    "labels.csv",
    "--images",
    "images",
    "--label-column",
    "Finding Labels",
];

fn groups_by_split(m: &Manifest) -> HashMap<String, Split> {
    whole_groups(m.rows.iter().map(|r| (r.group.clone(), r.split)))
}

/// Each group's split, asserting that no group is in two.
fn whole_groups(rows: impl Iterator<Item = (Option<String>, Split)>) -> HashMap<String, Split> {
    let mut seen = HashMap::new();
    for (group, split) in rows {
        let group = group.expect("a group column");
        let first = *seen.entry(group.clone()).or_insert(split);
        assert_eq!(first, split, "patient {group} is in {first} and {split}");
    }
    seen
}

#[test]
fn a_patient_never_crosses_splits_and_the_counts_show_groups() {
    let wd = Workdir::new();
    nih_style(&wd);
    let mut args = TABLE.to_vec();
    args.extend(["--group-by", "Patient ID", "--test", "0.2", "-o", "m.csv"]);
    let (code, _, stderr) = split(&wd, &args);
    assert_eq!(code, 0, "{stderr}");
    let m = Manifest::read(&wd.join("m.csv")).unwrap();
    assert_eq!(m.classes, ["normal", "tuberculosis"]);
    assert_eq!(m.rows.len(), 80, "the two unusable rows are left out");
    assert!(m.rows.iter().all(|r| m.resolve(r).is_file()));
    let groups = groups_by_split(&m);
    for split in [Split::Train, Split::Val, Split::Test] {
        assert!(
            groups.values().any(|&s| s == split),
            "no patient in {split}"
        );
    }
    // Stratified as far as whole patients allow: each class's validation share near 0.2.
    for label in 0..2 {
        let val = m
            .rows
            .iter()
            .filter(|r| r.label == label && r.split == Split::Val)
            .count();
        assert!((5..=11).contains(&val), "class {label}: {val} of 40 in val");
    }
    assert!(
        stderr.contains("labels.csv, line 82: gone-001.png: no such image"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 83: normal-000.png: no label"),
        "{stderr}"
    );
    let group_line = stderr
        .lines()
        .find(|l| l.starts_with("groups"))
        .unwrap_or("");
    let total: usize = group_line
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert_eq!(total, groups.len(), "{stderr}");

    // The same seed, the same bytes; folds keep patients whole too.
    fs::copy(wd.join("m.csv"), wd.join("first.csv")).unwrap();
    let (code, _, _) = split(&wd, &[&args[..], &["--force"]].concat());
    assert_eq!(code, 0);
    assert_eq!(
        fs::read(wd.join("m.csv")).unwrap(),
        fs::read(wd.join("first.csv")).unwrap()
    );
    let mut folds = TABLE.to_vec();
    folds.extend([
        "--group-by",
        "Patient ID",
        "--folds",
        "4",
        "-o",
        "folds.csv",
    ]);
    let (code, _, stderr) = split(&wd, &folds);
    assert_eq!(code, 0, "{stderr}");
    let m = Manifest::read(&wd.join("folds.csv")).unwrap();
    let groups = groups_by_split(&m);
    assert!((0..4).all(|k| groups.values().any(|&s| s == Split::Fold(k))));
}

#[test]
fn without_grouping_the_manifest_keeps_its_four_columns() {
    let wd = Workdir::new();
    nih_style(&wd);
    let mut args = TABLE.to_vec();
    args.extend(["-o", "-"]);
    let (code, stdout, stderr) = split(&wd, &args);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("path,label,class,split\nimages/normal/normal-000.png,0,normal,"),
        "{stdout}"
    );
}

#[test]
fn unusable_rows_are_fatal_with_strict_and_bad_columns_are_usage_errors() {
    let wd = Workdir::new();
    nih_style(&wd);
    let mut strict = TABLE.to_vec();
    strict.extend(["--strict", "-o", "m.csv"]);
    let (code, _, stderr) = split(&wd, &strict);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("line 82") && stderr.contains("--strict"),
        "{stderr}"
    );
    assert!(!wd.join("m.csv").exists(), "nothing written on failure");

    let mut no_group = TABLE.to_vec();
    no_group.extend(["--group-by", "Patient"]);
    let no_label = [
        "--labels",
        "labels.csv",
        "--images",
        "images",
        "--label-column",
        "Finding",
    ];
    for (args, wanted) in [
        (no_group, "--group-by 'Patient' is not a column"),
        (
            no_label.to_vec(),
            "--label-column 'Finding' is not a column",
        ),
    ] {
        let (code, _, stderr) = split(&wd, &args);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains(wanted) && stderr.contains("Patient ID"),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    let (code, _, stderr) = split(&wd, &["--labels", "labels.csv", "--images", "images"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no label column") && stderr.contains("--label-column"),
        "{stderr}"
    );
    let (code, _, stderr) = split(&wd, &["images", "--labels", "labels.csv"]);
    assert_eq!(code, 2, "{stderr}");
}

// ---- Multi-label tables, from ortl_fixtures::multilabel's synthetic patients ----------

use ortl_fixtures::multilabel::{self, FINDINGS, Mention};
use ortl_manifest::multilabel::MultiLabelManifest;

const PATIENTS: u32 = 40;
const SEED: u64 = 7;

/// No group (patient) in two splits; returns the groups per split.
fn patients_stay_whole(m: &MultiLabelManifest) -> HashMap<String, Split> {
    whole_groups(m.rows.iter().map(|r| (r.group.clone(), r.split)))
}

#[test]
fn an_nih_style_table_splits_by_patient_with_its_findings() {
    let wd = Workdir::new();
    multilabel::write_nih_style(&wd.join("nih"), PATIENTS, SEED).unwrap();
    let (code, _, stderr) = split(
        &wd,
        &[
            "--labels",
            "nih/Data_Entry_2017.csv",
            "--label-separator",
            "|",
            "--group-by",
            "Patient ID",
            "-o",
            "m.csv",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let m = MultiLabelManifest::read(&wd.join("m.csv")).unwrap();
    assert_eq!(m.findings, ["Cardiomegaly", "Effusion", "Nodule"]);
    let truth = multilabel::truth(PATIENTS, SEED);
    let images: usize = truth.iter().map(|p| p.images.len()).sum();
    assert_eq!(m.rows.len(), images);
    // Every image's findings are its patient's, all known (NIH mentions every finding).
    for patient in &truth {
        for image in &patient.images {
            let row = m
                .rows
                .iter()
                .find(|r| r.path.ends_with(image.nih_name()))
                .unwrap_or_else(|| panic!("{} missing", image.nih_name()));
            let wanted: Vec<Option<bool>> = FINDINGS
                .iter()
                .map(|f| Some(patient.findings.contains(f)))
                .collect();
            assert_eq!(row.targets, wanted, "{}", image.nih_name());
            assert_eq!(
                row.group.as_deref(),
                Some(patient.patient_id.to_string().as_str())
            );
        }
    }
    let groups = patients_stay_whole(&m);
    assert!(groups.values().any(|&s| s == Split::Val));
    // Each finding has positives in validation, near its share of the data.
    for f in 0..3 {
        let share = |split: Option<Split>| {
            let rows: Vec<_> = m
                .rows
                .iter()
                .filter(|r| split.is_none_or(|s| r.split == s))
                .collect();
            rows.iter().filter(|r| r.targets[f] == Some(true)).count() as f64 / rows.len() as f64
        };
        let (all, val) = (share(None), share(Some(Split::Val)));
        assert!(
            val > 0.0 && (val - all).abs() < 0.2,
            "{}: {val:.2} in val, {all:.2} overall",
            m.findings[f]
        );
    }
    assert!(
        stderr.contains("Cardiomegaly") && stderr.contains("groups"),
        "{stderr}"
    );
}

#[test]
fn a_chexpert_style_table_maps_uncertain_mentions_by_policy_and_keeps_blanks_unknown() {
    let wd = Workdir::new();
    multilabel::write_chexpert_style(&wd.join("chexpert"), PATIENTS, SEED).unwrap();
    let truth = multilabel::truth(PATIENTS, SEED);
    let columns = "Cardiomegaly,Pleural Effusion,Lung Lesion";
    for (policy, uncertain_as) in [
        ("ignore", None),
        ("zeros", Some(false)),
        ("ones", Some(true)),
    ] {
        let out = format!("{policy}.csv");
        let (code, _, stderr) = split(
            &wd,
            &[
                "--labels",
                "chexpert/CheXpert-v1.0-small/train.csv",
                "--images",
                "chexpert",
                "--path-column",
                "Path",
                "--label-columns",
                columns,
                "--uncertain",
                policy,
                "--group-by-path",
                "patient[0-9]+",
                "-o",
                &out,
            ],
        );
        assert_eq!(code, 0, "{stderr}");
        let m = MultiLabelManifest::read(&wd.join(&out)).unwrap();
        assert_eq!(
            m.findings,
            ["Cardiomegaly", "Pleural Effusion", "Lung Lesion"]
        );
        patients_stay_whole(&m);
        let mut uncertain = 0;
        for image in truth.iter().flat_map(|p| &p.images) {
            let row = m
                .rows
                .iter()
                .find(|r| r.path.ends_with(&image.chexpert_path))
                .unwrap_or_else(|| panic!("{} missing", image.chexpert_path));
            let wanted: Vec<Option<bool>> = image
                .chexpert_labels
                .iter()
                .map(|mention| match mention {
                    Mention::Positive => Some(true),
                    Mention::Negative => Some(false),
                    Mention::Uncertain => {
                        uncertain += 1;
                        uncertain_as
                    }
                    // Not mentioned is unknown, never negative.
                    Mention::NotMentioned => None,
                })
                .collect();
            assert_eq!(
                row.targets, wanted,
                "{} under --uncertain {policy}",
                image.chexpert_path
            );
            assert!(
                row.group
                    .as_deref()
                    .is_some_and(|g| image.chexpert_path.contains(g))
            );
        }
        assert!(uncertain > 0, "the fixture has uncertain mentions");
        assert!(
            stderr.contains(&format!("{uncertain} uncertain mentions")),
            "{stderr}"
        );
    }
}

#[test]
fn multi_label_manifests_read_as_findings_and_single_label_readers_say_why_not() {
    let wd = Workdir::new();
    multilabel::write_nih_style(&wd.join("nih"), 12, SEED).unwrap();
    let (code, _, stderr) = split(
        &wd,
        &[
            "--labels",
            "nih/Data_Entry_2017.csv",
            "--label-separator",
            "|",
            "-o",
            "m.csv",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let error = ortl_manifest::Manifest::read(&wd.join("m.csv"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("multi-label manifest") && error.contains("--label-column"),
        "{error}"
    );
    let any = ortl_manifest::multilabel::AnyManifest::read(&wd.join("m.csv")).unwrap();
    assert_eq!(any.task(), ortl_manifest::Task::MultiLabel);
    let images: usize = multilabel::truth(12, SEED)
        .iter()
        .map(|p| p.images.len())
        .sum();
    assert_eq!(any.len(), images);
}

#[test]
fn dicom_files_split_by_their_patient_id() {
    use ortl_fixtures::dicom;
    let wd = Workdir::new();
    // 2 classes × 12 radiographs, three per patient; one file without a Patient ID.
    for (class, finding) in [
        ("normal", ortl_fixtures::Finding::Normal),
        ("tuberculosis", ortl_fixtures::Finding::Tuberculosis),
    ] {
        fs::create_dir_all(wd.join(&format!("dicom/{class}"))).unwrap();
        for i in 0..12u32 {
            let image = dicom::variant(&ortl_fixtures::chest_xray(finding, i, 3), i as usize);
            let path = wd.join(&format!("dicom/{class}/{class}-{i:02}.dcm"));
            let instance = format!("1.2.826.0.1.3680043.2.1125.{}.{i}", class.len());
            if class == "normal" && i == 11 {
                dicom::write(&path, &image, &instance).unwrap();
            } else {
                dicom::write_for_patient(&path, &image, &instance, &format!("{class}-P{}", i / 3))
                    .unwrap();
            }
        }
    }
    let (code, _, stderr) = split(
        &wd,
        &[
            "dicom",
            "--group-by-tag",
            "PatientID",
            "--val",
            "0.25",
            "-o",
            "m.csv",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("1 images have no PatientID"), "{stderr}");
    let m = Manifest::read(&wd.join("m.csv")).unwrap();
    assert_eq!(m.rows.len(), 24);
    let groups = groups_by_split(&m);
    // 8 patients (four per class) and the file without an ID, its own group.
    assert_eq!(groups.len(), 8 + 1, "{groups:?}");
    assert!(groups.values().any(|&s| s == Split::Val));
    let (code, _, stderr) = split(&wd, &["dicom", "--group-by-tag", "PatientNme"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not a DICOM attribute keyword"), "{stderr}");
}

#[test]
fn review_cases_refuse_or_name_what_would_mislead() {
    let wd = Workdir::new();
    nih_style(&wd);
    // Table-only flags with a class folder are refused, not ignored.
    let (code, _, stderr) = split(&wd, &["images", "--group-by", "Patient ID"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = split(&wd, &["images", "--labels", "labels.csv"]);
    assert_eq!(code, 2, "{stderr}");
    // More folds than patients.
    let mut folds = TABLE.to_vec();
    folds.extend(["--group-by", "Patient ID", "--folds", "99"]);
    let (code, _, stderr) = split(&wd, &folds);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--folds 99 needs at least 99 groups"),
        "{stderr}"
    );

    // One image spelled two ways is one image; a bare name in two folders is named;
    // line numbers count blank lines.
    let absolute = wd.join("images/normal/normal-001.png");
    fs::create_dir_all(wd.join("images/other")).unwrap();
    fs::copy(&absolute, wd.join("images/other/normal-002.png")).unwrap();
    let text = format!(
        "path,label\nnormal/normal-001.png,a\n\n{},a\nnormal-002.png,a\ntuberculosis/tuberculosis-000.png,b\n",
        absolute.display()
    );
    fs::write(wd.join("t.csv"), text).unwrap();
    let (code, stdout, stderr) =
        split(&wd, &["--labels", "t.csv", "--images", "images", "-o", "-"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.lines().count(),
        3,
        "two images and the header: {stdout}"
    );
    assert!(stderr.contains("1 repeating an image merged"), "{stderr}");
    assert!(
        stderr.contains("line 5: normal-002.png: 2 files of that name"),
        "{stderr}"
    );
}
