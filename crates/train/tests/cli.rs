//! ortl-train run as a user runs it, on a small generated tensors folder.

mod common;

use std::fs;

use ortl_fixtures::Workdir;
use ortl_fixtures::workdir::run;
use ortl_imaging::AugmentSpec;

const BIN: &str = env!("CARGO_BIN_EXE_ortl-train");

/// 12 images per class at 32×32, every 4th for validation, 2 copies flipped.
fn tensors(wd: &Workdir) {
    common::tensors_with(
        wd,
        AugmentSpec {
            flip: ortl_imaging::Flip::Horizontal,
            ..AugmentSpec::default()
        },
    );
}

fn train(wd: &Workdir, extra: &[&str]) -> (i32, String, String) {
    train_as(wd, "resnet-mini", extra)
}

fn train_as(wd: &Workdir, backbone: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "tensors",
        "-o",
        "run",
        "--backbone",
        backbone,
        "--batch",
        "8",
        "--threads",
        "1",
    ];
    args.extend_from_slice(extra);
    run(wd.command(BIN).args(&args))
}

#[test]
fn writes_a_complete_run_and_checkpoints_the_best_epoch() {
    let wd = Workdir::new();
    tensors(&wd);
    let (code, stdout, stderr) = train(&wd, &["--epochs", "3", "--checkpoint", "monitor=val_loss"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "progress goes to stderr");
    assert!(stderr.contains("Epoch 3/3"), "{stderr}");
    for file in ["model.onnx", "best.onnx", "history.csv", "train.json"] {
        assert!(wd.join("run").join(file).is_file(), "{file}");
    }
    // ortl-infer must decode and resize new images as these tensors were made.
    let model = ortl_onnx::io::load(&wd.join("run/model.onnx")).unwrap();
    assert_eq!(model.metadata["ortl.resize"], "bilinear-antialias");
    assert_eq!(model.metadata["ortl.window"], "min-max");
    let history = wd.read("run/history.csv");
    let mut lines = history.lines();
    assert_eq!(
        lines.next(),
        Some("epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,val_auc")
    );
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 3);
    let best = rows.iter().min_by(|a, b| a[3].total_cmp(&b[3])).unwrap()[0] as u64;
    let json: serde_json::Value = serde_json::from_str(&wd.read("run/train.json")).unwrap();
    assert_eq!(
        json["summary"]["best_epoch"], best,
        "best.onnx is the epoch with the lowest val_loss"
    );
    // Each model file says which epoch's weights it holds, and the log names the metric.
    let best_model = ortl_onnx::io::load(&wd.join("run/best.onnx")).unwrap();
    assert_eq!(best_model.metadata["ortl.epoch"], best.to_string());
    assert_eq!(model.metadata["ortl.epoch"], "3");
    assert!(
        stderr.contains(&format!("best epoch by val_loss {best} -> ")),
        "{stderr}"
    );
    assert!(stderr.contains("ortl-train: 3 epochs in "), "{stderr}");
    assert_eq!(
        json["bn_mode"], "train",
        "built-in backbones train their BatchNorm"
    );
    assert_eq!(
        json["classes"],
        serde_json::json!(["normal", "tuberculosis"])
    );
    // ortl-report reads both files through the same types ortl-train wrote them with.
    let record = ortl_manifest::TrainRecord::read(&wd.join("run/train.json")).unwrap();
    assert_eq!(record.summary.epochs_run, 3);
    assert_eq!(record.settings.checkpoint, "val_loss");
    assert_eq!(record.settings.schedule, "constant");
    assert_eq!(record.settings.early_stopping, "off");
    // --conv-layout auto: blocked exactly where ONNX Runtime has the kernels for this CPU.
    let block = ortl_runtime::testing::runtime().nchwc_block();
    let expected = block.map_or_else(|| "plain".into(), |b| format!("blocked (NCHW{b}c)"));
    assert_eq!(record.environment.conv_layout, expected);
    // --update-on auto: on the host, on the CPU.
    assert_eq!(record.environment.update_on.as_deref(), Some("host"));
    let said = match block {
        Some(_) => "blocked convolutions, epochs",
        None => "plain convolutions, epochs",
    };
    assert!(
        stderr.contains(said),
        "the log says how convolutions run, the details only with -v: {stderr}"
    );
    let epochs = ortl_manifest::history::read(&wd.join("run/history.csv")).unwrap();
    assert_eq!(epochs.len(), 3);
    assert_eq!(epochs[2].val_loss, rows[2][3]);

    // A finished run is only replaced with --force.
    let (code, _, stderr) = train(&wd, &["--epochs", "1"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    let (code, _, stderr) = train(&wd, &["--epochs", "1", "--force", "-v"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("ortl-train: 1 epoch in "), "{stderr}");
    if block.is_some() {
        assert!(
            stderr.contains("blocked convolutions (") && stderr.contains("nodes fused"),
            "-v details the blocked graph: {stderr}"
        );
    }
}

/// The lines of stderr that are not progress ("… building …").
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !l.ends_with(" …")).collect()
}

#[test]
fn early_stopping_stops_when_the_monitor_stalls() {
    let wd = Workdir::new();
    tensors(&wd);
    // No epoch can improve the loss by 100, so patience 1 stops after the second epoch.
    let (code, _, stderr) = train(
        &wd,
        &[
            "--epochs",
            "6",
            "--early-stopping",
            "monitor=loss,patience=1,min_delta=100",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        wd.read("run/history.csv").lines().count(),
        1 + 2,
        "{stderr}"
    );
    assert!(stderr.contains("stopped early"), "{stderr}");
}

#[test]
fn a_diverging_run_stops_with_the_epoch_step_and_cause() {
    let wd = Workdir::new();
    tensors(&wd);
    let (code, _, stderr) = train(
        &wd,
        &["--epochs", "3", "--optimizer", "sgd", "--lr", "1e30"],
    );
    assert_eq!(code, 1, "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(
        last.contains("epoch") && last.contains("step") && last.contains("--lr"),
        "{last}"
    );
    assert!(
        !wd.join("run/model.onnx").exists(),
        "no final model from a diverged run"
    );
}

#[test]
fn bad_settings_are_usage_errors() {
    let wd = Workdir::new();
    tensors(&wd);
    for (args, expected) in [
        (vec!["--schedule", "exp:1"], "exp:BASE,RATE,OFFSET"),
        (vec!["--backbone", "vgg99"], "vgg99"),
        (
            vec!["--backbone", "resnt-mini"],
            "'resnt-mini' is not a built-in backbone; did you mean 'resnet-mini'?",
        ),
        (
            vec!["--backbone", "weights/missing.onnx"],
            "weights/missing.onnx: no such file",
        ),
        (vec!["--early-stopping", "monitor=f1"], "f1"),
        (vec!["--freeze", "everything"], "upto:NAME"),
        (vec!["--optimizer", "adamx"], "possible values: adam, adamw"),
        (vec!["--checkpoint", "monitor=f1"], "unknown metric 'f1'"),
        (vec!["--bn-mode", "learn"], "possible values: frozen, train"),
        (vec!["--l2=-1"], "--l2"),
        (
            vec!["--device", "cuda", "--conv-layout", "blocked"],
            "--conv-layout blocked is for the CPU",
        ),
    ] {
        let mut full = vec!["tensors", "-o", "run"];
        full.extend(args.iter());
        let (code, _, stderr) = run(wd.command(BIN).args(&full));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn builtin_names_ignore_case_and_dashes() {
    let wd = Workdir::new();
    tensors(&wd);
    let (code, _, stderr) = train_as(&wd, "ResNet_Mini", &["--epochs", "1"]);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&wd.read("run/train.json")).unwrap();
    assert_eq!(json["backbone"], "resnet-mini");
    assert_eq!(
        json["bn_mode"], "train",
        "a built-in backbone whatever its spelling"
    );
}

/// history.csv without the timing column.
fn history_without_seconds(wd: &Workdir) -> Vec<String> {
    without_seconds(wd, "run/history.csv")
}

/// A CSV's rows without its `seconds` column (wall time, in history.csv and the step log).
fn without_seconds(wd: &Workdir, file: &str) -> Vec<String> {
    let text = wd.read(file);
    let at = text
        .lines()
        .next()
        .and_then(|header| header.split(',').position(|c| c == "seconds"))
        .expect("a seconds column");
    text.lines()
        .map(|l| {
            let mut fields: Vec<&str> = l.split(',').collect();
            fields.remove(at);
            fields.join(",")
        })
        .collect()
}

#[test]
fn two_epochs_and_a_resume_equal_four_in_one_go() {
    let wd = Workdir::new();
    tensors(&wd);
    let (code, _, stderr) = train(&wd, &["--epochs", "4", "--step-log", "steps.csv"]);
    assert_eq!(code, 0, "{stderr}");
    let straight = history_without_seconds(&wd);
    let model = fs::read(wd.join("run/model.onnx")).unwrap();
    let straight_steps = without_seconds(&wd, "steps.csv");
    // 18 training images in batches of 8: 3 steps an epoch, the last of 2 images.
    assert_eq!(straight_steps.len(), 1 + 4 * 3);
    assert_eq!(straight_steps[0], "epoch,step,loss,lr");
    assert!(straight_steps[3].starts_with("1,3,"), "{straight_steps:?}");
    let epoch_one: f64 = (1..=3)
        .map(|i| {
            let loss: f64 = straight_steps[i]
                .split(',')
                .nth(2)
                .unwrap()
                .parse()
                .unwrap();
            loss * if i == 3 { 2.0 } else { 8.0 }
        })
        .sum::<f64>()
        / 18.0;
    let history_loss: f64 = straight[1].split(',').nth(1).unwrap().parse().unwrap();
    assert!(
        (epoch_one - history_loss).abs() < 1e-9,
        "the steps' losses average to the epoch's: {epoch_one} vs {history_loss}"
    );

    let (code, _, stderr) = train(
        &wd,
        &["--epochs", "2", "--force", "--step-log", "split.csv"],
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = train(
        &wd,
        &["--epochs", "4", "--resume", "--step-log", "split.csv"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("resuming at epoch 3, step 0"), "{stderr}");
    assert_eq!(history_without_seconds(&wd), straight);
    assert_eq!(
        without_seconds(&wd, "split.csv"),
        straight_steps,
        "a resumed run's step log continues the first one's"
    );
    assert_eq!(
        fs::read(wd.join("run/model.onnx")).unwrap(),
        model,
        "bit-identical weights on CPU"
    );

    // Settings must match the first run's.
    let (code, _, stderr) = train(&wd, &["--epochs", "5", "--resume", "--lr", "0.5"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("lr (was"), "{stderr}");
}

/// What a plateau schedule and early stopping have seen lives in the checkpoint, apart from
/// their configuration: a run whose rate was cut resumes to the same history.
#[test]
fn plateau_and_early_stopping_state_survive_a_resume() {
    let wd = Workdir::new();
    tensors(&wd);
    let settings = [
        "--schedule",
        "plateau:1,0.5",
        "--early-stopping",
        "monitor=val_loss,patience=4",
        "--lr",
        "0.05",
    ];
    let with = |extra: &[&str]| {
        let mut args = settings.to_vec();
        args.extend_from_slice(extra);
        let (code, _, stderr) = train(&wd, &args);
        assert_eq!(code, 0, "{stderr}");
    };
    with(&["--epochs", "6"]);
    let straight = history_without_seconds(&wd);
    let rates: std::collections::BTreeSet<&str> = straight[1..]
        .iter()
        .map(|row| row.split(',').nth(5).unwrap())
        .collect();
    assert!(rates.len() > 1, "the plateau cut the rate: {straight:?}");
    with(&["--epochs", "3", "--force"]);
    with(&["--epochs", "6", "--resume"]);
    assert_eq!(history_without_seconds(&wd), straight);
}

#[test]
fn an_interrupted_run_checkpoints_exits_130_and_resumes_exactly() {
    let wd = Workdir::new();
    tensors(&wd);
    let args = ["--epochs", "30"];
    let (code, _, stderr) = train(&wd, &args);
    assert_eq!(code, 0, "{stderr}");
    let straight = history_without_seconds(&wd);
    fs::remove_dir_all(wd.join("run")).unwrap();

    let mut full = vec![
        "tensors",
        "-o",
        "run",
        "--backbone",
        "resnet-mini",
        "--batch",
        "8",
        "--threads",
        "1",
    ];
    full.extend_from_slice(&args);
    let child = wd
        .command(BIN)
        .args(&full)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the first epoch is on disk.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !wd.join("run/history.csv").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.lines().last().unwrap().contains("--resume"),
        "{stderr}"
    );
    assert!(
        !wd.join("run/model.onnx").exists(),
        "no final model from an interrupted run"
    );
    assert!(wd.join("run/checkpoint/checkpoint.json").exists());
    let leftovers = fs::read_dir(wd.join("run"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("partial")
        })
        .count();
    assert_eq!(leftovers, 0, "no half-written files");

    let mut resume = full.clone();
    resume.push("--resume");
    let (code, _, stderr) = run(wd.command(BIN).args(&resume));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        history_without_seconds(&wd),
        straight,
        "interrupted + resumed = uninterrupted"
    );
}

#[test]
fn fine_tune_trains_the_head_then_everything_at_a_tenth_of_the_rate() {
    let wd = Workdir::new();
    tensors(&wd);
    let (code, _, stderr) = train(&wd, &["--fine-tune", "1,2", "--lr", "0.002"]);
    assert_eq!(code, 0, "{stderr}");
    let rows: Vec<Vec<String>> = wd
        .read("run/history.csv")
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 3);
    let lr: Vec<f64> = rows.iter().map(|r| r[5].parse().unwrap()).collect();
    assert_eq!(lr, vec![0.002, 0.0002, 0.0002]);
    assert!(
        stderr.contains("epoch 1\n") && stderr.contains("epochs 2–3"),
        "{stderr}"
    );
}

#[test]
fn frozen_backbone_gives_the_same_head_with_and_without_the_feature_cache() {
    let wd = Workdir::new();
    tensors(&wd);
    let head_weights = |wd: &Workdir| -> Vec<(String, Vec<f32>)> {
        let model = ortl_onnx::io::load(&wd.join("run/model.onnx")).unwrap();
        model
            .graph
            .initializers
            .iter()
            .filter(|(n, _)| n.starts_with("head."))
            .map(|(n, t)| (n.clone(), t.as_f32().unwrap().to_vec()))
            .collect()
    };
    let args = [
        "--epochs", "3", "--freeze", "backbone", "--head", "tutorial", "--force",
    ];
    let (code, _, stderr) = train(&wd, &args);
    assert_eq!(code, 0, "{stderr}");
    let cached = head_weights(&wd);
    let mut uncached_args = args.to_vec();
    uncached_args.push("--no-feature-cache");
    let (code, _, stderr) = train(&wd, &uncached_args);
    assert_eq!(code, 0, "{stderr}");
    let uncached = head_weights(&wd);
    assert_eq!(cached.len(), uncached.len());
    assert!(cached.len() >= 10, "tutorial head: 3 dense + 3 BN");
    for ((name, a), (_, b)) in cached.iter().zip(&uncached) {
        let diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-4, "{name} differs by {diff}");
    }
}

#[test]
fn partial_freezing_and_l2_are_recorded() {
    let wd = Workdir::new();
    tensors(&wd);
    let (code, _, stderr) = train(
        &wd,
        &["--epochs", "1", "--freeze", "upto:layer2", "--l2", "0.01"],
    );
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&wd.read("run/train.json")).unwrap();
    assert_eq!(json["freeze"], "upto:layer2");
    assert_eq!(json["l2"], 0.01, "written as given, not widened from f32");
    let model = ortl_onnx::io::load(&wd.join("run/model.onnx")).unwrap();
    let (code, _, _) = train(&wd, &["--epochs", "1", "--force"]);
    assert_eq!(code, 0);
    let full = ortl_onnx::io::load(&wd.join("run/model.onnx")).unwrap();
    let initial = {
        let backbone = ortl_models::resnet::resnet(
            &ortl_models::ResNetConfig::named("resnet-mini").unwrap(),
            12,
        );
        backbone.graph.initializers["layer1.0.conv1.weight"].clone()
    };
    assert_eq!(
        model.graph.initializers["layer1.0.conv1.weight"], initial,
        "frozen layers keep their weights"
    );
    assert_ne!(
        full.graph.initializers["layer1.0.conv1.weight"], initial,
        "without freezing they train"
    );
}

#[test]
fn an_image_below_the_backbones_minimum_size_is_one_line_naming_both() {
    let wd = Workdir::new();
    tensors(&wd);
    let (code, _, stderr) = train_as(&wd, "inception-mini", &["--epochs", "1"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(error_lines(&stderr).len(), 1, "{stderr}");
    assert!(
        stderr.contains("32x32") && stderr.contains("inception-mini's minimum of"),
        "{stderr}"
    );
    assert!(stderr.contains("ortl-augment --size"), "{stderr}");
}

/// Backbones as other exporters write them: a dynamic-size classifier at opset 11 cut where
/// graph analysis finds its pooled features, an encoder cut at a named tensor, and a graph
/// with an operator ortl cannot differentiate, named with the freeze that trains around it.
#[test]
fn exported_backbones_train_and_untrainable_operators_are_named_up_front() {
    use ortl_models::exports::{Classifier, Export, FEATURES, mobile};
    let wd = Workdir::new();
    tensors(&wd);
    let export = |classifier| Export {
        opset: 11,
        size: None,
        classifier,
        classes: 1000,
        seed: 1,
    };
    ortl_onnx::io::save(
        &mobile(&export(Classifier::ShapeFlatten)),
        &wd.join("export.onnx"),
    )
    .unwrap();
    ortl_onnx::io::save(&mobile(&export(Classifier::None)), &wd.join("encoder.onnx")).unwrap();

    let (code, _, stderr) = train_as(&wd, "export.onnx", &["--epochs", "1"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("backbone export"), "{stderr}");
    let model = ortl_onnx::io::load(&wd.join("run/model.onnx")).unwrap();
    assert_eq!(model.opset(), Some(17));
    assert!(
        model
            .graph
            .nodes
            .iter()
            .all(|n| n.op != "Shape" && n.op != "Constant")
    );

    // An encoder's output map is taken, and the log says where it was cut and why.
    let (code, _, stderr) = train_as(&wd, "encoder.onnx", &["--epochs", "1", "--force"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("no classifier found"), "{stderr}");
    let (code, _, stderr) = train_as(
        &wd,
        "encoder.onnx",
        &["--epochs", "1", "--force", "--features", FEATURES],
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = train_as(&wd, "encoder.onnx", &["--force", "--features", "nope"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no tensor named 'nope'"), "{stderr}");

    // An operator without a gradient rule (Softsign) in the part that trains.
    let mut odd = mobile(&export(Classifier::ShapeFlatten));
    let node = odd
        .graph
        .nodes
        .iter_mut()
        .find(|n| n.op == "LeakyRelu")
        .unwrap();
    node.op = "Softsign".into();
    node.attrs.clear();
    let name = node.name.clone();
    ortl_onnx::io::save(&odd, &wd.join("odd.onnx")).unwrap();
    let (code, _, stderr) = train_as(&wd, "odd.onnx", &["--epochs", "1", "--force"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("node '{name}' (Softsign)"))
            && stderr.contains(&format!("--freeze upto:{name}")),
        "{stderr}"
    );
    let upto = format!("upto:{name}");
    let (code, _, stderr) = train_as(
        &wd,
        "odd.onnx",
        &["--epochs", "1", "--force", "--freeze", &upto],
    );
    assert_eq!(code, 0, "{stderr}");
}

/// torch.export fixes the traced size into shape arithmetic (ShuffleNet's channel shuffle
/// becomes a Reshape to [-1, 2, C/2, 28, 28]); at another size such a graph fails on its
/// first batch, so ortl-train checks up front, at the file's size or 224, and names the
/// ways out.
#[test]
fn a_graph_with_sizes_fixed_at_export_is_refused_at_another_size() {
    use ortl_models::exports::{CHANNELS, Classifier, Export, FEATURES, mobile};
    use ortl_onnx::{Node, Tensor};
    let wd = Workdir::new();
    tensors(&wd);
    // A file exported at 48×48, and a dynamic-size one whose shuffle holds 224×224's map
    // (checked at 224 when the file does not say).
    for (name, size, traced) in [("traced", Some(48), 48), ("dynamic", None, 224)] {
        let mut model = mobile(&Export {
            opset: 17,
            size,
            classifier: Classifier::ShapeFlatten,
            classes: 1000,
            seed: 1,
        });
        let mut folded = model.graph.clone();
        folded.inputs[0].shape = Some(vec![
            ortl_onnx::Dim::Symbolic("N".into()),
            ortl_onnx::Dim::Fixed(3),
            ortl_onnx::Dim::Fixed(traced),
            ortl_onnx::Dim::Fixed(traced),
        ]);
        ortl_onnx::fold::fold(&mut folded);
        let map = ortl_onnx::shapes::infer(&folded).unwrap()[FEATURES]
            .shape
            .clone();
        let (h, w) = (map[2].unwrap(), map[3].unwrap());
        let graph = &mut model.graph;
        let producer = graph
            .nodes
            .iter_mut()
            .find(|n| n.outputs[0] == FEATURES)
            .unwrap();
        producer.outputs[0] = "unshuffled".into();
        for (i, (input, target, output)) in [
            ("unshuffled", vec![-1, 2, CHANNELS / 2, h, w], "grouped"),
            ("grouped", vec![-1, CHANNELS, h, w], FEATURES),
        ]
        .into_iter()
        .enumerate()
        {
            let shape = format!("shuffle_shape_{i}");
            graph
                .initializers
                .insert(shape.clone(), Tensor::i64s(&target));
            graph.nodes.push(Node {
                name: format!("shuffle_{i}"),
                op: "Reshape".into(),
                domain: String::new(),
                inputs: vec![input.into(), shape],
                outputs: vec![output.into()],
                attrs: Default::default(),
            });
        }
        let file = format!("{name}.onnx");
        ortl_onnx::io::save(&model, &wd.join(&file)).unwrap();
        let (code, _, stderr) = train_as(&wd, &file, &["--epochs", "1", "--force"]);
        assert_eq!(code, 2, "{stderr}");
        let origin = match size {
            Some(_) => "exported for 48x48 images, it runs at that size".to_string(),
            None => "it runs at 224x224".to_string(),
        };
        assert!(
            stderr.contains(&format!("{origin} but not at the tensors' 32x32"))
                && stderr.contains("node 'shuffle_0' (Reshape): cannot reshape [N, 16, ")
                && stderr.contains(&format!("ortl-augment --size {traced}x{traced}")),
            "{stderr}"
        );
        assert_eq!(error_lines(&stderr).len(), 1, "{stderr}");
    }
}

/// Provenance: a built-in backbone is random (its seed) unless --weights loads a
/// torchvision state_dict, and says so in the log, train.json and the model's metadata; the
/// tutorial preset on random weights warns once.
#[test]
fn weights_files_load_and_every_run_says_whether_it_is_pretrained() {
    use safetensors::{Dtype, tensor::TensorView};
    let wd = Workdir::new();
    tensors(&wd);
    let (code, _, stderr) = train(
        &wd,
        &["--epochs", "1", "--preset", "tutorial", "--seed", "9"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("randomly initialised (seed 9), not pretrained"),
        "{stderr}"
    );
    assert_eq!(
        stderr
            .matches("warning: the tutorial fine-tunes ImageNet weights")
            .count(),
        1,
        "{stderr}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(wd.join("run/train.json")).unwrap()).unwrap();
    assert_eq!(json["backbone_weights"]["kind"], "random");
    assert_eq!(json["backbone_pretrained"], false);

    // torchvision's names, the classifier and step counters included, as save_file writes.
    let source = ortl_models::zoo::builtin("resnet-mini", 4).unwrap();
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = source
        .graph
        .initializers
        .iter()
        .map(|(name, t)| {
            let bytes = t
                .as_f32()
                .unwrap()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            (
                name.clone(),
                Dtype::F32,
                t.dims.iter().map(|&d| d as usize).collect(),
                bytes,
            )
        })
        .collect();
    tensors.push(("fc.bias".into(), Dtype::F32, vec![1000], vec![0; 4000]));
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    fs::write(
        wd.join("resnet.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    let (code, _, stderr) = train(
        &wd,
        &[
            "--epochs",
            "1",
            "--preset",
            "tutorial",
            "--force",
            "--weights",
            "resnet.safetensors",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("pretrained: resnet.safetensors (sha256 "),
        "{stderr}"
    );
    assert!(!stderr.contains("warning: the tutorial"), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(wd.join("run/train.json")).unwrap()).unwrap();
    assert_eq!(json["backbone_weights"]["file"], "resnet.safetensors");
    assert_eq!(
        json["backbone_weights"]["sha256"].as_str().unwrap().len(),
        64
    );
    let model = ortl_onnx::io::load(&wd.join("run/model.onnx")).unwrap();
    assert!(model.metadata["ortl.backbone_weights"].contains("resnet.safetensors"));

    // A file for another network is a usage error listing what does not fit.
    let (code, _, stderr) = train_as(
        &wd,
        "vgg-mini",
        &["--force", "--weights", "resnet.safetensors"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("missing from the file")
            && stderr.contains("in the file but not in the backbone"),
        "{stderr}"
    );
}

/// `--help` states every default, the preset's where it differs.
#[test]
fn help_states_the_defaults() {
    let wd = Workdir::new();
    let (code, stdout, _) = run(wd.command(BIN).arg("--help"));
    assert_eq!(code, 0);
    for text in [
        "Images per optimizer step. [default: 32]",
        "[default: 10; with\n          --preset tutorial: 100]",
        "[default: 12]",
        "[default: adam]",
        "[default: 0.001]",
        "[default: resnet50]",
        "[default: val_accuracy; val_auc for multi-label tensors]",
    ] {
        let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat(&stdout).contains(&flat(text)), "{text}");
    }
}

/// Multi-label tensors train a sigmoid per finding with masked binary cross-entropy by
/// default, checkpoint on macro val_auc, and record the task; flags meant for one class per
/// image are refused with the flag that fits.
#[test]
fn multi_label_tensors_train_a_sigmoid_per_finding() {
    let wd = Workdir::new();
    let findings = common::multilabel_tensors(&wd, 16);
    let (code, _, stderr) = train(&wd, &["--epochs", "2", "--pos-weight", "auto"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("best epoch by val_auc"), "{stderr}");
    // auto: each finding's negatives over its positives among the training images' known labels.
    assert!(
        stderr.contains("--pos-weight auto: Cardiomegaly "),
        "{stderr}"
    );
    let record: serde_json::Value = serde_json::from_str(&wd.read("run/train.json")).unwrap();
    assert_eq!(record["task"], "multi-label");
    assert_eq!(record["loss"], "sigmoid-bce");
    assert_eq!(record["checkpoint"], "val_auc");
    assert_eq!(record["pos_weight"], "auto");
    assert_eq!(record["classes"], serde_json::json!(findings));
    let history = ortl_manifest::history::read(&wd.join("run/history.csv")).unwrap();
    for epoch in &history {
        assert!((0.0..=1.0).contains(&epoch.val_auc), "{epoch:?}");
        assert!((0.0..=1.0).contains(&epoch.val_accuracy), "{epoch:?}");
    }
    let model = ortl_onnx::io::load(&wd.join("run/best.onnx")).unwrap();
    assert_eq!(model.metadata["ortl.task"], "multi-label");
    assert!(model.graph.nodes.iter().any(|n| n.op == "Sigmoid"));
    // Head only: the frozen backbone's features are cached and the head trains on them.
    let (code, _, stderr) = train(&wd, &["--epochs", "2", "--freeze", "backbone", "--force"]);
    assert_eq!(code, 0, "{stderr}");
    for (flags, wanted) in [
        (&["--class-weights", "auto"][..], "--pos-weight"),
        (&["--loss", "softmax-ce"][..], "sigmoid-bce"),
        (
            &["--pos-weight", "1,2"][..],
            "2 values for the 3 findings (Cardiomegaly, Effusion, Nodule)",
        ),
    ] {
        let mut args = vec!["--epochs", "1", "--force"];
        args.extend_from_slice(flags);
        let (code, _, stderr) = train(&wd, &args);
        assert_eq!(code, 2, "{flags:?}: {stderr}");
        assert!(
            stderr.contains(wanted) && stderr.lines().count() == 1,
            "{stderr}"
        );
    }
}

#[test]
fn pos_weight_is_refused_for_single_label_tensors() {
    let wd = Workdir::new();
    tensors(&wd);
    let (code, _, stderr) = train(&wd, &["--epochs", "1", "--pos-weight", "auto"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--class-weights"), "{stderr}");
}
