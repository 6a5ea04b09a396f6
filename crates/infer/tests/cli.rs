//! ortl-infer run as a user runs it, with a small model built by ortl-models.

use ortl_onnx::builder::Gemm;
use std::fs;
use std::process::{Command, Stdio};

use ortl_fixtures::Workdir;
use ortl_fixtures::workdir::{run, run_with_stdin};
use ortl_models::classifier::keys;
use ortl_models::{ClassifierSpec, Head, ResNetConfig, classifier};

const BIN: &str = env!("CARGO_BIN_EXE_ortl-infer");

/// A data set of 5 images per class and an (untrained) classifier for it at 32×32.
fn setup(wd: &Workdir) {
    wd.dataset("data", 5);
    let backbone = ortl_models::resnet::resnet(&ResNetConfig::tiny(), 1);
    let spec = ClassifierSpec {
        task: ortl_manifest::Task::SingleLabel,
        classes: vec!["normal".into(), "tuberculosis".into()],
        height: 32,
        width: 32,
        head: Head::Linear { dropout: 0.0 },
        seed: 1,
    };
    let (mut model, _) = classifier(&backbone, &spec);
    model
        .metadata
        .insert(keys::RESIZE.into(), "bilinear".into());
    ortl_onnx::io::save(&model, &wd.join("model.onnx")).unwrap();
}

fn infer(wd: &Workdir, args: &[&str]) -> (i32, String, String) {
    run(wd.command(BIN).arg("--model").arg("model.onnx").args(args))
}

#[test]
fn one_row_per_image_in_input_order_with_labels_from_class_folders() {
    let wd = Workdir::new();
    setup(&wd);
    let (code, stdout, stderr) = infer(
        &wd,
        &[
            "data/tuberculosis/tuberculosis-003.png",
            "data",
            "--batch",
            "4",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "path,label,class,predicted,predicted_class,p_normal,p_tuberculosis,split,model,model_epoch"
    );
    assert_eq!(lines.len(), 1 + 1 + 10);
    assert!(lines[1].starts_with("data/tuberculosis/tuberculosis-003.png,1,tuberculosis,"));
    assert!(lines[2].starts_with("data/normal/normal-000.png,0,normal,"));
    assert!(lines[11].starts_with("data/tuberculosis/tuberculosis-004.png,1,"));
    for line in &lines[1..] {
        let f: Vec<&str> = line.split(',').collect();
        let (p0, p1): (f32, f32) = (f[5].parse().unwrap(), f[6].parse().unwrap());
        assert!((p0 + p1 - 1.0).abs() < 1e-4);
        let predicted: usize = f[3].parse().unwrap();
        assert_eq!(predicted, usize::from(p1 > p0));
    }
    assert!(
        stderr.contains("11 images classified, 0 skipped"),
        "{stderr}"
    );
    // ortl-report reads exactly what ortl-infer writes (top-k columns included).
    let predictions =
        ortl_manifest::Predictions::read(stdout.as_bytes(), "stdout".as_ref()).unwrap();
    assert_eq!(predictions.classes, ["normal", "tuberculosis"]);
    assert_eq!(predictions.labels.len(), 11);
    assert_eq!(
        predictions.paths[0],
        "data/tuberculosis/tuberculosis-003.png"
    );
    let (_, with_top_k, _) = infer(&wd, &["data", "--top-k", "2"]);
    let read = ortl_manifest::Predictions::read(with_top_k.as_bytes(), "stdout".as_ref()).unwrap();
    assert_eq!(read.probabilities.len(), 10);
}

#[test]
fn probabilities_equal_the_models_on_the_stored_training_tensors() {
    let wd = Workdir::new();
    setup(&wd);
    let mut text = String::from("path,label,class,split\n");
    for (label, class) in ["normal", "tuberculosis"].iter().enumerate() {
        for i in 0..5 {
            text += &format!("data/{class}/{class}-{i:03}.png,{label},{class},val\n");
        }
    }
    fs::write(wd.join("manifest.csv"), &text).unwrap();
    let manifest = ortl_manifest::multilabel::AnyManifest::read(&wd.join("manifest.csv")).unwrap();
    let job = ortl_augment::Job {
        height: 32,
        width: 32,
        filter: ortl_imaging::Filter::Bilinear,
        spec: Default::default(),
        copies: 0,
        keep_original: false,
        seed: 1,
        shard_size: 64,
        decoding: Default::default(),
        strict: true,
    };
    fs::create_dir(wd.join("t")).unwrap();
    ortl_augment::write_tensors(
        &manifest,
        "manifest.csv",
        &job,
        &wd.join("t"),
        &wd.join("t"),
        || {},
    )
    .unwrap();
    let set = ortl_manifest::TensorSet::open(&wd.join("t")).unwrap();
    let stored = set.load_shard(&set.meta.shards[0]).unwrap().into_dyn();
    let runtime = ortl_runtime::testing::runtime();
    let mut session = runtime
        .session(&Default::default())
        .unwrap()
        .commit_from_file(wd.join("model.onnx"))
        .unwrap();
    let expected = ortl_runtime::run(
        &mut session,
        vec![("image", ortl_runtime::Feed::U8(stored))],
    )
    .unwrap()
    .remove("probabilities")
    .unwrap();

    let (code, stdout, stderr) = infer(
        &wd,
        &[
            "--manifest",
            "manifest.csv",
            "--split",
            "val",
            "--format",
            "jsonl",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 10);
    for (i, row) in rows.iter().enumerate() {
        let p = row["p_tuberculosis"].as_f64().unwrap() as f32;
        assert!(
            (p - expected[[i, 1]]).abs() < 1e-6,
            "row {i}: {p} vs {}",
            expected[[i, 1]]
        );
        assert_eq!(row["label"], serde_json::json!(i / 5));
    }
}

#[test]
fn stdin_paths_corrupt_images_and_strict() {
    let wd = Workdir::new();
    setup(&wd);
    fs::write(wd.join("data/normal/broken.png"), "not a png").unwrap();
    let (code, stdout, stderr) = run_with_stdin(
        wd.command(BIN).args([
            "--model",
            "model.onnx",
            "-",
            "--no-header",
            "--format",
            "tsv",
        ]),
        b"data/normal/normal-001.png\ndata/normal/broken.png\ndata/normal/normal-002.png\n",
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 2);
    assert!(stdout.starts_with("data/normal/normal-001.png\t0\tnormal\t"));
    assert!(
        stderr.contains("broken.png") && stderr.contains("2 images classified, 1 skipped"),
        "{stderr}"
    );

    let (code, _, stderr) = infer(&wd, &["data/normal/broken.png", "--strict"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("broken.png") && stderr.contains("--strict"),
        "{stderr}"
    );
}

#[test]
fn a_closed_pipe_ends_quietly_and_bad_models_are_usage_errors() {
    let wd = Workdir::new();
    setup(&wd);
    let mut head = Command::new("head")
        .arg("-n")
        .arg("2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wd
        .command(BIN)
        .args([
            "--model",
            "model.onnx",
            "data",
            "data",
            "data",
            "--batch",
            "1",
        ])
        .stdout(head.stdin.take().unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let shown = head.wait_with_output().unwrap().stdout;
    assert_eq!(String::from_utf8_lossy(&shown).lines().count(), 2);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Whether `head` exits before the last rows are written depends on scheduling (30 rows
    // fit a pipe's buffer); a reader gone before the first row makes the write fail for sure.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = wd
        .command(BIN)
        .args(["--model", "model.onnx", "data", "--batch", "1"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "nothing on stderr once the reader is gone"
    );

    fs::write(wd.join("junk.onnx"), "junk").unwrap();
    let (code, _, stderr) = run(wd.command(BIN).args(["--model", "junk.onnx", "data"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("junk.onnx"), "{stderr}");
}

#[test]
fn top_k_tta_and_unordered() {
    let wd = Workdir::new();
    setup(&wd);
    // A mirrored copy of an image: flip-TTA must give both the same probabilities.
    let original = ortl_imaging::image::open(wd.join("data/normal/normal-001.png")).unwrap();
    fs::create_dir(wd.join("mirror")).unwrap();
    original
        .fliph()
        .save(wd.join("mirror/normal-001-mirrored.png"))
        .unwrap();
    let probabilities = |args: &[&str]| -> Vec<String> {
        let (code, stdout, stderr) = infer(&wd, args);
        assert_eq!(code, 0, "{stderr}");
        stdout
            .lines()
            .skip(1)
            .map(|l| l.split(',').skip(5).take(2).collect::<Vec<_>>().join(","))
            .collect()
    };
    let pair = [
        "data/normal/normal-001.png",
        "mirror/normal-001-mirrored.png",
    ];
    let plain = probabilities(&pair);
    assert_ne!(
        plain[0], plain[1],
        "the model is not mirror-symmetric by itself"
    );
    let mut with_tta: Vec<&str> = pair.to_vec();
    with_tta.extend(["--tta", "flip"]);
    let tta = probabilities(&with_tta);
    assert_eq!(tta[0], tta[1], "flip TTA averages an image with its mirror");

    let (_, stdout, _) = infer(&wd, &["data", "--top-k", "2"]);
    assert!(
        stdout
            .lines()
            .next()
            .unwrap()
            .ends_with(",top1,top2,split,model,model_epoch")
    );
    for line in stdout.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f[7], f[4], "top1 is the predicted class");
        assert_ne!(f[7], f[8]);
    }

    let (_, ordered, _) = infer(&wd, &["data", "--batch", "3"]);
    let (code, unordered, stderr) = infer(&wd, &["data", "--batch", "3", "--unordered"]);
    assert_eq!(code, 0, "{stderr}");
    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines.sort();
        lines
    };
    assert_eq!(sorted(&ordered), sorted(&unordered), "same rows, any order");
}

#[test]
fn a_foreign_classifier_without_metadata_is_wrapped_and_runs() {
    use ortl_onnx::{DataType, Dim, GraphBuilder, Tensor, ValueInfo};
    let wd = Workdir::new();
    setup(&wd);
    // A torchvision-style export: float [N,3,32,32] → tiny ResNet → GAP → Flatten → Gemm
    // logits for 3 classes, no softmax, no ortl metadata.
    let backbone = ortl_models::resnet::resnet(&ResNetConfig::tiny(), 4);
    let mut b = GraphBuilder::from_graph(backbone.graph.clone());
    let pooled = b.global_average_pool(&backbone.features);
    let flat = b.flatten(&pooled, 1);
    let w = b.param(
        "fc.weight",
        Tensor::f32(
            &[3, 256],
            (0..768).map(|i| ((i % 17) as f32 - 8.0) * 0.01).collect(),
        ),
    );
    let bias = b.param("fc.bias", Tensor::f32(&[3], vec![0.1, 0.0, -0.1]));
    let logits = b.gemm(&flat, &w, Some(&bias), &Gemm::B_TRANSPOSED);
    let mut graph = b.finish();
    graph.inputs[0] = ValueInfo::new(
        &backbone.input,
        DataType::Float,
        vec![
            Dim::Symbolic("batch".into()),
            Dim::Fixed(3),
            Dim::Fixed(32),
            Dim::Fixed(32),
        ],
    );
    graph.outputs = vec![ValueInfo::new(
        &logits,
        DataType::Float,
        vec![Dim::Symbolic("batch".into()), Dim::Fixed(3)],
    )];
    let mut model = ortl_onnx::Model::new(graph);
    model.producer_name = "pytorch".into();
    ortl_onnx::io::save(&model, &wd.join("foreign.onnx")).unwrap();

    let (code, stdout, stderr) =
        run(wd
            .command(BIN)
            .args(["--model", "foreign.onnx", "data/normal"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("not an ortl model")
            && stderr.contains("imagenet")
            && stderr.contains("softmax appended"),
        "{stderr}"
    );
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some("path,label,class,predicted,predicted_class,p_0,p_1,p_2,split,model,model_epoch")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 5);
    for row in rows {
        let f: Vec<&str> = row.split(',').collect();
        assert_eq!(
            (f[1], f[2]),
            ("", ""),
            "no class names: no labels from folder names"
        );
        let sum: f32 = f[5..8].iter().map(|p| p.parse::<f32>().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-4, "{row}");
    }
}

/// Hostile or broken models: each is one line on stderr naming the file (and the node
/// where there is one), never a panic.
#[test]
fn broken_models_are_one_line_errors_naming_file_and_node() {
    use ortl_onnx::{DataType, Dim, GraphBuilder, Model};
    let wd = Workdir::new();
    setup(&wd);
    let valid = fs::read(wd.join("model.onnx")).unwrap();
    fs::write(wd.join("truncated.onnx"), &valid[..valid.len() / 3]).unwrap();
    let classifier = |op: &str, input: &str, opset: i64| {
        let mut b = GraphBuilder::new("hostile");
        let n = Dim::Symbolic("N".into());
        let image = b.input(
            "image",
            DataType::Float,
            vec![n.clone(), Dim::Fixed(3), Dim::Fixed(8), Dim::Fixed(8)],
        );
        let source = if input.is_empty() {
            image.clone()
        } else {
            input.to_string()
        };
        let pooled = b.global_average_pool(&source);
        let flat = b.flatten(&pooled, 1);
        let logits = b.op(op, &[&flat], vec![]);
        b.output(&logits, DataType::Float, vec![n, Dim::Fixed(3)]);
        let mut model = Model::new(b.finish());
        model.opsets = vec![(String::new(), opset)];
        model
    };
    let cases = [
        (
            "unknown-op.onnx",
            classifier("Frobnicate", "", 17),
            "Frobnicate",
        ),
        ("dangling.onnx", classifier("Relu", "ghost", 17), "ghost"),
        ("future-opset.onnx", classifier("Relu", "", 99), "opset"),
    ];
    for (file, model, _) in &cases {
        fs::write(wd.join(file), ortl_onnx::io::to_bytes(model)).unwrap();
    }
    let mut all: Vec<(&str, &str)> = cases.iter().map(|(f, _, m)| (*f, *m)).collect();
    all.push(("truncated.onnx", "truncated.onnx"));
    for (file, expected) in all {
        let (code, _, stderr) = run(wd.command(BIN).args(["--model", file, "data"]));
        assert!(code == 1 || code == 2, "{file}: exit {code}: {stderr}");
        assert!(!stderr.contains("panicked"), "{file}: {stderr}");
        // A foreign model is announced on a line of its own; the error is the last line.
        let error = stderr.trim_end().lines().last().unwrap();
        assert_eq!(
            stderr
                .lines()
                .filter(|l| !l.contains("is not an ortl model"))
                .count(),
            1,
            "{file}: {stderr}"
        );
        assert!(
            error.contains(file) && error.contains(expected),
            "{file}: {error}"
        );
    }
}

#[test]
fn a_manifest_whose_classes_disagree_with_the_model_is_a_usage_error() {
    let wd = Workdir::new();
    setup(&wd);
    fs::write(
        wd.join("m.csv"),
        "path,label,class,split\ndata/normal/normal-000.png,0,normal,val\ndata/tuberculosis/tuberculosis-000.png,1,covid,val\n",
    )
    .unwrap();
    let (code, stdout, stderr) = infer(&wd, &["--manifest", "m.csv"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains(
            "m.csv: class 'covid' is not one of the model's classes (normal, tuberculosis)"
        ),
        "{stderr}"
    );
}

#[test]
fn cuda_without_a_usable_gpu_names_the_device_not_the_model() {
    let wd = Workdir::new();
    setup(&wd);
    let (code, stdout, stderr) = infer(&wd, &["data", "--device", "cuda"]);
    if code == 0 {
        // This machine has a GPU and ONNX Runtime's CUDA provider: nothing to refuse.
        assert!(stdout.lines().count() > 1, "{stderr}");
        return;
    }
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--device cuda:0"), "{stderr}");
    assert!(
        stderr.contains("make setup-cuda") || stderr.contains("CUDA 13 and cuDNN 9"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("model.onnx") && !stderr.contains("cannot load it"),
        "the model is not at fault: {stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
}

#[test]
fn shards_concatenate_to_the_unsharded_output_byte_for_byte() {
    let wd = Workdir::new();
    setup(&wd);
    for format in ["csv", "jsonl"] {
        let (code, whole, stderr) = infer(&wd, &["data", "--format", format, "--batch", "3"]);
        assert_eq!(code, 0, "{stderr}");
        // 10 images in 4 shards (2, 3, 2, 3 rows), each run as its own process.
        let mut joined = String::new();
        for i in 1..=4 {
            let shard = format!("{i}/4");
            let (code, part, stderr) = infer(&wd, &["data", "--format", format, "--shard", &shard]);
            assert_eq!(code, 0, "{stderr}");
            assert!(
                stderr.contains(&format!("{} images classified", [2, 3, 2, 3][i - 1])),
                "{stderr}"
            );
            joined += &part;
        }
        assert_eq!(joined, whole, "{format}");
    }
    let (code, _, stderr) = infer(&wd, &["data", "--shard", "5/4"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("1 ≤ I ≤ N"), "{stderr}");
}

#[test]
fn a_missing_input_path_is_a_usage_error_naming_it() {
    let wd = Workdir::new();
    setup(&wd);
    let (code, stdout, stderr) = infer(&wd, &["data", "data/normal/no-such-image.png"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("data/normal/no-such-image.png: no such file or folder"),
        "{stderr}"
    );
}

#[test]
fn a_model_folder_an_empty_split_and_flip4_get_messages_that_say_what_to_do() {
    let wd = Workdir::new();
    setup(&wd);
    std::fs::create_dir(wd.join("run")).unwrap();
    std::fs::copy(wd.join("model.onnx"), wd.join("run/model.onnx")).unwrap();
    let (code, _, stderr) = run(wd.command(BIN).args(["--model", "run", "data"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("run is a folder") && stderr.contains("--model run/model.onnx"),
        "{stderr}"
    );

    let mut text = String::from("path,label,class,split\n");
    for (label, class) in ["normal", "tuberculosis"].iter().enumerate() {
        text += &format!("data/{class}/{class}-000.png,{label},{class},train\n");
        text += &format!("data/{class}/{class}-001.png,{label},{class},val\n");
    }
    fs::write(wd.join("m.csv"), text).unwrap();
    let (code, stdout, stderr) = infer(&wd, &["--manifest", "m.csv", "--split", "test"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("no rows in split 'test' (it has train, val)"),
        "{stderr}"
    );

    let (code, _, stderr) = infer(&wd, &["data", "--tta", "flip4"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("rarely suit radiographs"), "{stderr}");
    let (_, _, stderr) = infer(&wd, &["data", "--tta", "flip"]);
    assert!(!stderr.contains("warning"), "{stderr}");
}

/// A classifier exported with dynamic height and width (the default of many exporters),
/// at an old opset: refused with the flag to use, then run at the size given.
#[test]
fn a_dynamic_size_classifier_runs_at_the_size_given() {
    use ortl_models::exports::{Classifier, Export, mobile};
    let wd = Workdir::new();
    setup(&wd);
    let model = mobile(&Export {
        opset: 11,
        size: None,
        classifier: Classifier::ShapeFlatten,
        classes: 3,
        seed: 2,
    });
    ortl_onnx::io::save(&model, &wd.join("dynamic.onnx")).unwrap();
    let (code, _, stderr) = run(wd
        .command(BIN)
        .args(["--model", "dynamic.onnx", "data/normal"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("dynamic") && stderr.contains("--size HxW"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let (code, stdout, stderr) =
        run(wd
            .command(BIN)
            .args(["--model", "dynamic.onnx", "--size", "48x40", "data/normal"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("input 48x40"), "{stderr}");
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 5);
    for row in rows {
        let fields: Vec<&str> = row.split(',').collect();
        // The probabilities: after the five leading columns, before split,model,model_epoch.
        let sum: f32 = fields[5..fields.len() - 3]
            .iter()
            .map(|p| p.parse::<f32>().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-4, "{row}");
    }

    // A fixed-size model given another --size is told to drop it.
    let (code, _, stderr) =
        run(wd
            .command(BIN)
            .args(["--model", "model.onnx", "--size", "48x40", "data/normal"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("drop --size"), "{stderr}");
}

/// Paths in the rows: relative to the working directory and tidied, whatever folder the
/// manifest or the command line reached them through.
#[test]
fn row_paths_are_relative_to_the_working_directory_and_tidied() {
    let wd = Workdir::new();
    setup(&wd);
    fs::create_dir(wd.join("out")).unwrap();
    let manifest = "path,label,class,split\n../data/normal/normal-000.png,0,normal,val\n";
    fs::write(wd.join("out/manifest.csv"), manifest).unwrap();
    let (code, stdout, stderr) =
        run(wd
            .command(BIN)
            .args(["--model", "model.onnx", "--manifest", "out/manifest.csv"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("data/normal/normal-000.png,"),
        "{stdout}"
    );
    let (code, stdout, stderr) = run(wd.command(BIN).args([
        "--model",
        "model.onnx",
        "./out/../data/normal/normal-001.png",
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("data/normal/normal-001.png,"),
        "{stdout}"
    );
}

/// DICOM files in every fixture form classify exactly as the PNGs they were made from, a
/// folder of extensionless DICOM files (as PACS exports name them) is read, and what was
/// applied is summarised on stderr.
#[test]
fn dicom_inputs_classify_as_their_pngs_and_the_models_window_applies() {
    let wd = Workdir::new();
    setup(&wd);
    // The seed Workdir::dataset draws the PNGs with, so that both hold the same images.
    ortl_fixtures::dicom::write_dataset(&wd.join("dicom"), 5, 2026).unwrap();
    fs::create_dir(wd.join("pacs")).unwrap();
    fs::copy(
        wd.join("dicom/normal/normal-003.dcm"),
        wd.join("pacs/IM000001"),
    )
    .unwrap();
    let probabilities = |stdout: &str| -> Vec<String> {
        stdout
            .lines()
            .skip(1)
            // predicted, predicted_class and the two probabilities (not the model column).
            .map(|l| l.split(',').skip(3).take(4).collect::<Vec<_>>().join(","))
            .collect()
    };
    let (code, png, stderr) = infer(&wd, &["data"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, dcm, stderr) = infer(&wd, &["dicom"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(probabilities(&png), probabilities(&dcm));
    assert_eq!(dcm.lines().count(), 11);
    assert!(
        stderr.contains("images: DICOM MONOCHROME1, window from the file, inverted"),
        "{stderr}"
    );
    let (code, pacs, stderr) = infer(&wd, &["pacs"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        probabilities(&pacs)[0],
        probabilities(&png)[3],
        "normal-003 without an extension"
    );

    // A model trained on min-max windowed tensors windows new images the same way.
    let mut model = ortl_onnx::io::load(&wd.join("model.onnx")).unwrap();
    model.metadata.insert(keys::WINDOW.into(), "min-max".into());
    ortl_onnx::io::save(&model, &wd.join("minmax.onnx")).unwrap();
    let run_minmax = |extra: &[&str]| {
        run(wd
            .command(BIN)
            .args(["--model", "minmax.onnx", "data"])
            .args(extra))
    };
    let (code, stretched, stderr) = run_minmax(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert_ne!(probabilities(&stretched), probabilities(&png));
    assert!(stderr.contains("images: 8-bit, window min-max"), "{stderr}");
    let (code, same, stderr) = run_minmax(&["--window", "auto"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(probabilities(&same), probabilities(&png));
    assert!(
        stderr
            .contains("--window auto differs from the window the model was trained with (min-max)"),
        "{stderr}"
    );
}

/// Predictions say what they evaluated: each row's split, the model file and its epoch;
/// `--split` without `--manifest` is a usage error; `-o` replaces a file only with
/// `--force`; a run that classifies nothing fails and leaves no file.
#[test]
fn predictions_carry_split_model_and_epoch_and_outputs_need_force() {
    let wd = Workdir::new();
    setup(&wd);
    let mut model = ortl_onnx::io::load(&wd.join("model.onnx")).unwrap();
    model.metadata.insert(keys::EPOCH.into(), "16".into());
    ortl_onnx::io::save(&model, &wd.join("best.onnx")).unwrap();
    let mut text = String::from("path,label,class,split\n");
    for (i, split) in ["train", "val", "val", "test"].iter().enumerate() {
        text += &format!("data/normal/normal-{i:03}.png,0,normal,{split}\n");
    }
    fs::write(wd.join("manifest.csv"), &text).unwrap();

    let (code, _, stderr) =
        run(wd
            .command(BIN)
            .args(["--model", "best.onnx", "data", "--split", "val"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--manifest"), "{stderr}");

    let (code, stdout, stderr) =
        run(wd
            .command(BIN)
            .args(["--model", "best.onnx", "--manifest", "manifest.csv"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("1 of the manifest's images are training images"),
        "{stderr}"
    );
    let read = ortl_manifest::Predictions::read(stdout.as_bytes(), "stdout".as_ref()).unwrap();
    use ortl_manifest::Split;
    assert_eq!(
        read.splits,
        [
            Some(Split::Train),
            Some(Split::Val),
            Some(Split::Val),
            Some(Split::Test)
        ]
    );
    assert_eq!(read.training_rows(None), 1);
    assert_eq!(read.models.len(), 1);
    assert_eq!(read.models[0].to_string(), "best.onnx, epoch 16");

    // Files given directly have no split; a model without the epoch key has no epoch.
    let (code, stdout, _) = infer(&wd, &["data/normal/normal-000.png"]);
    assert_eq!(code, 0);
    assert!(
        stdout.lines().nth(1).unwrap().ends_with(",,model.onnx,"),
        "{stdout}"
    );

    let args = [
        "--model",
        "best.onnx",
        "--manifest",
        "manifest.csv",
        "--split",
        "val",
    ];
    fs::write(wd.join("preds.csv"), "keep").unwrap();
    let (code, _, stderr) = run(wd.command(BIN).args(args).args(["-o", "preds.csv"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("pass --force"), "{stderr}");
    assert_eq!(fs::read_to_string(wd.join("preds.csv")).unwrap(), "keep");
    let (code, stdout, stderr) =
        run(wd
            .command(BIN)
            .args(args)
            .args(["-o", "preds.csv", "--force"]));
    assert_eq!((code, stdout.as_str()), (0, ""), "{stderr}");
    assert_eq!(
        fs::read_to_string(wd.join("preds.csv"))
            .unwrap()
            .lines()
            .count(),
        3
    );

    fs::write(wd.join("broken.png"), "not a png").unwrap();
    let (code, _, stderr) =
        run(wd
            .command(BIN)
            .args(["--model", "best.onnx", "broken.png", "-o", "none.csv"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no image could be classified"), "{stderr}");
    assert!(!wd.join("none.csv").exists());
}

/// `--help` is the spec: it fits 78 columns on any terminal and shows a multi-label pipe.
#[test]
fn help_fits_78_columns_and_shows_a_multi_label_example() {
    let wd = Workdir::new();
    let (code, help, _) = run(wd.command(BIN).arg("--help").env("COLUMNS", "200"));
    assert_eq!(code, 0);
    for line in help.lines() {
        assert!(line.chars().count() <= 78, "{line}");
    }
    assert!(
        help.contains("--threshold-from val.csv --threshold-rule sensitivity=0.9"),
        "{help}"
    );
}
