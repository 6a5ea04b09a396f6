//! ortl-train's pretrained files from a model hub, end to end: a hub on 127.0.0.1
//! (ortl_fixtures::hub) answers as huggingface.co does, and ortl-train runs as a user runs it
//! with the HF_* variables pointing at it and at a fresh cache per test.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use ortl_fixtures::Workdir;
use ortl_fixtures::hub::{Hub as TestHub, sha256_hex};
use ortl_fixtures::workdir::run;
use ortl_hub::spec::ResolveError;
use ortl_hub::{HubError, HubFile, WeightsSpec};
use ortl_imaging::AugmentSpec;
use ortl_manifest::train_record::{TrainRecord, Weights};
use safetensors::{Dtype, tensor::TensorView};

const BIN: &str = env!("CARGO_BIN_EXE_ortl-train");

/// timm's MobileNetV2 module prefixes against torchvision's (what `rename_for` applies).
const MOBILENET_RENAME: &str = include_str!("../../models/data/rename/mobilenetv2_100.tsv");

/// The shared small tensors folder, unaugmented.
fn tensors(wd: &Workdir) {
    common::tensors_with(wd, AugmentSpec::default());
}

/// ortl-train on `tensors` with its cache in `hf_home` and the hub at `endpoint`; nothing
/// from the caller's HF_* environment leaks in.
fn command(wd: &Workdir, hf_home: &Path, endpoint: &str, output: &str) -> Command {
    let mut command = wd.command(BIN);
    for name in [
        "HF_HUB_CACHE",
        "HF_HUB_OFFLINE",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
    ] {
        command.env_remove(name);
    }
    command
        .env("HF_HOME", hf_home)
        .env("HF_ENDPOINT", endpoint)
        .args(["tensors", "-o", output, "--batch", "8", "--threads", "1"]);
    command
}

/// [`command`] with `extra` arguments, run.
fn train(
    wd: &Workdir,
    hf_home: &Path,
    endpoint: &str,
    output: &str,
    extra: &[&str],
) -> (i32, String, String) {
    run(command(wd, hf_home, endpoint, output).args(extra))
}

/// An endpoint nothing listens on (a port just freed).
fn dead_endpoint() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

/// stderr without the progress lines (those ending in " …").
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !l.ends_with(" …")).collect()
}

/// The `ortl-train: backbone …` line of a run's log.
fn backbone_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with("ortl-train: backbone "))
        .unwrap_or_else(|| panic!("no backbone line in: {stderr}"))
}

/// A safetensors file of (name, dtype, dims, little-endian bytes).
fn safetensors_bytes(tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// The timm name of torchvision-named `ortl` tensor: its longest mapped module prefix
/// replaced by timm's, read from the TSV itself (not through `Rename`, which it checks).
fn timm_name(ortl: &str) -> Option<String> {
    MOBILENET_RENAME
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .map(|(timm, tv)| (timm.trim(), tv.trim()))
        .filter(|(_, tv)| {
            ortl.strip_prefix(tv)
                .is_some_and(|rest| rest.starts_with('.'))
        })
        .max_by_key(|(_, tv)| tv.len())
        .map(|(timm, tv)| format!("{timm}{}", &ortl[tv.len()..]))
}

/// A value no initialiser draws: a function of the tensor's and the element's index, small,
/// and positive for running variances.
fn distinctive(tensor: usize, element: usize, variance: bool) -> f32 {
    let v = ((tensor * 7919 + element * 104_729) % 2001) as f32 / 10_000.0 - 0.1;
    if variance { v.abs() + 0.5 } else { v }
}

/// mobilenet-mini's parameters and BatchNorm statistics (by ortl's name) with distinctive
/// values, and the same as a safetensors file in timm's names with timm's extras: the
/// classifier and a `num_batches_tracked` counter per BatchNorm.
fn timm_mobilenet_mini() -> (BTreeMap<String, Vec<f32>>, Vec<u8>) {
    let backbone = ortl_models::zoo::builtin("mobilenet-mini", 5).unwrap();
    let rename = ortl_models::pretrained::rename_for("mobilenet-mini").unwrap();
    let mut names = ortl_models::backbone::parameters(&backbone.graph);
    let statistics = backbone.buffers();
    names.extend(statistics.iter().cloned());
    assert!(!statistics.is_empty() && names.len() > 2 * statistics.len());
    let mut values = BTreeMap::new();
    let mut file = Vec::new();
    for (t, name) in names.iter().enumerate() {
        let init = &backbone.graph.initializers[name];
        let data: Vec<f32> = (0..init.numel())
            .map(|e| distinctive(t, e, name.ends_with("running_var")))
            .collect();
        assert_ne!(init.as_f32().unwrap(), &data[..], "{name}: init values");
        let timm = timm_name(name).unwrap_or_else(|| panic!("{name}: no timm prefix maps to it"));
        assert_eq!(rename.apply(&timm), *name, "{timm} must rename back");
        assert_ne!(&timm, name);
        if let Some(module) = timm.strip_suffix(".running_mean") {
            file.push((
                format!("{module}.num_batches_tracked"),
                Dtype::I64,
                vec![],
                12345i64.to_le_bytes().to_vec(),
            ));
        }
        file.push((
            timm,
            Dtype::F32,
            init.dims.iter().map(|&d| d as usize).collect(),
            data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ));
        values.insert(name.clone(), data);
    }
    file.push((
        "classifier.weight".into(),
        Dtype::F32,
        vec![10, 8],
        vec![0; 320],
    ));
    file.push(("classifier.bias".into(), Dtype::F32, vec![10], vec![0; 40]));
    (values, safetensors_bytes(&file))
}

/// Every served tensor is in `initializers` bit for bit.
fn assert_bitwise(
    what: &str,
    initializers: &BTreeMap<String, ortl_onnx::Tensor>,
    served: &BTreeMap<String, Vec<f32>>,
) {
    for (name, values) in served {
        let tensor = initializers
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no {name}"));
        let got: Vec<u32> = tensor
            .as_f32()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        let want: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
        assert!(got == want, "{what}: {name} differs from the served values");
    }
}

#[test]
fn mini_backbone_weights_in_timms_names_download_load_exactly_and_are_recorded() {
    let wd = Workdir::new();
    tensors(&wd);
    let (served, bytes) = timm_mobilenet_mini();
    assert!(bytes.len() >= 1024, "served as an LFS file");
    let sha256 = sha256_hex(&bytes);
    let server = TestHub::start();
    let repo = "test-org/mobilenet-mini.timm";
    let commit = server.put(repo, "model.safetensors", &bytes);
    let expected = Weights::Hub {
        repo: repo.into(),
        revision: commit.clone(),
        file: "model.safetensors".into(),
        sha256: sha256.clone(),
        pinned: false,
    };

    // In process: resolved through the client, loaded through the rename map, exactly.
    let hub = ortl_hub::Hub::new("test", wd.join("hf-lib/hub"), server.url(), false);
    let spec =
        WeightsSpec::Hub(HubFile::parse(&format!("hf:{repo}"), Some("model.safetensors")).unwrap());
    let resolved = ortl_hub::resolve("mobilenet-mini", &spec, &hub).unwrap();
    assert_eq!(resolved.weights, expected);
    assert!(resolved.source.is_none());
    assert_eq!(fs::read(&resolved.path).unwrap(), bytes);
    let mut backbone = ortl_models::zoo::builtin("mobilenet-mini", 5).unwrap();
    ortl_models::weights::load_safetensors_renamed(
        &mut backbone,
        &resolved.path,
        ortl_models::pretrained::rename_for("mobilenet-mini").as_ref(),
    )
    .unwrap();
    assert_bitwise("loaded backbone", &backbone.graph.initializers, &served);

    // The command line: downloaded into HF_HOME/hub, loaded, trained and recorded. The
    // backbone is frozen (and its BatchNorm too) so the exported model still holds the
    // served values, which shows the run trained on them.
    let hf_home = wd.join("hf");
    let args = [
        "--backbone",
        "mobilenet-mini",
        "--weights",
        "hf:test-org/mobilenet-mini.timm",
        "--epochs",
        "1",
        "--freeze",
        "backbone",
        "--bn-mode",
        "frozen",
    ];
    let asked_before = server.requests().len();
    let (code, _, stderr) = train(&wd, &hf_home, server.url(), "run", &args);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        server.requests().len() > asked_before,
        "ortl-train asked the hub nothing: {stderr}"
    );
    assert!(
        stderr.contains("downloading hf:test-org/mobilenet-mini.timm:model.safetensors"),
        "{stderr}"
    );
    let provenance = |stderr: &str| {
        let line = backbone_line(stderr).to_string();
        for part in [
            format!("hf:{repo}@{commit}:model.safetensors"),
            sha256.clone(),
            "not pinned".into(),
        ] {
            assert!(line.contains(&part), "'{part}' missing from: {line}");
        }
    };
    provenance(&stderr);
    assert!(
        !ortl_hub::cache::list(&hf_home.join("hub"))
            .unwrap()
            .is_empty()
    );
    let record = TrainRecord::read(&wd.join("run/train.json")).unwrap();
    assert_eq!(record.settings.backbone_weights, expected);
    assert!(record.settings.backbone_pretrained);
    let model = ortl_onnx::io::load(&wd.join("run/model.onnx")).unwrap();
    let recorded = &model.metadata[ortl_models::classifier::keys::WEIGHTS];
    assert!(recorded.contains(&sha256), "{recorded}");
    assert_bitwise("model.onnx", &model.graph.initializers, &served);

    // The hub gone, the cache answers with the same provenance.
    drop(server);
    let (code, _, stderr) = train(&wd, &hf_home, &dead_endpoint(), "again", &args);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("downloading"), "{stderr}");
    provenance(&stderr);
    let again = TrainRecord::read(&wd.join("again/train.json")).unwrap();
    assert_eq!(again.settings.backbone_weights, expected);
}

#[test]
fn offline_without_cache_is_one_line_exit_1_naming_repo_file_cache_and_alternative() {
    let wd = Workdir::new();
    tensors(&wd);
    let hf_home = wd.join("hf");
    // A finished run in the output folder: --force replaces it only once the weights are
    // in hand, so the failed download leaves it be.
    std::fs::create_dir_all(wd.join("run")).unwrap();
    std::fs::write(wd.join("run/model.onnx"), b"the previous run").unwrap();
    let (code, _, stderr) = run(command(&wd, &hf_home, &dead_endpoint(), "run")
        .env("HF_HUB_OFFLINE", "1")
        .args([
            "--backbone",
            "resnet-mini",
            "--weights",
            "hf:test-org/none",
            "--force",
        ]));
    assert_eq!(code, 1, "{stderr}");
    let lines = error_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    let line = lines[0];
    assert!(line.starts_with("ortl-train: "), "{line}");
    for part in [
        "test-org/none".to_string(),
        "model.safetensors".into(),
        hf_home.join("hub").display().to_string(),
        "--weights FILE".into(),
        "HF_HUB_OFFLINE".into(),
    ] {
        assert!(line.contains(&part), "'{part}' missing from: {line}");
    }
    assert_eq!(
        std::fs::read(wd.join("run/model.onnx")).unwrap(),
        b"the previous run"
    );
}

#[test]
fn a_missing_repository_is_not_found_naming_it_and_the_file() {
    let wd = Workdir::new();
    tensors(&wd);
    let server = TestHub::start();
    // Another repository exists; the one asked for does not.
    server.put("test-org/other", "model.safetensors", &[0; 2048]);
    let args = ["--backbone", "resnet-mini", "--weights", "hf:test-org/none"];
    let (code, _, stderr) = train(&wd, &wd.join("hf"), server.url(), "run", &args);
    assert_eq!(code, 1, "{stderr}");
    // The error is the last line, after the download's announcement.
    let line = stderr.lines().last().unwrap_or_default();
    assert!(line.starts_with("ortl-train: "), "{stderr}");
    // The hub answers 401 for a repository that does not exist (no token sent): still
    // "not found", not "gated".
    for part in [
        "test-org/none",
        "model.safetensors",
        "not found",
        "RepoNotFound",
    ] {
        assert!(line.contains(part), "'{part}' missing from: {stderr}");
    }
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path == "/test-org/none/resolve/main/model.safetensors"),
        "{:?}",
        server.requests()
    );
    assert!(
        ortl_hub::cache::list(&wd.join("hf/hub"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn imagenet_for_a_family_ortl_has_no_weights_for_is_a_usage_error() {
    let wd = Workdir::new();
    tensors(&wd);
    // Offline with no cache: only a usage error can come before any look at the hub.
    let (code, _, stderr) = run(command(&wd, &wd.join("hf"), &dead_endpoint(), "run")
        .env("HF_HUB_OFFLINE", "1")
        .args(["--backbone", "resnet-mini", "--weights", "imagenet"]));
    assert_eq!(code, 2, "{stderr}");
    let lines = error_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    for part in [
        "--weights imagenet",
        "resnet-mini",
        "resnet50",
        "mobilenet_v2",
        "efficientnet_b0",
    ] {
        assert!(lines[0].contains(part), "'{part}' missing from: {stderr}");
    }
    assert!(!stderr.contains("HF_HUB_OFFLINE"), "{stderr}");
}

#[test]
fn imagenet_weights_that_differ_from_the_pin_are_refused_but_kept() {
    // The tutorial's own entry, at the commit ortl pins, served with a file that is not
    // the pinned one.
    for backbone in ["resnet50", "efficientnet_b0"] {
        let source = ortl_models::pretrained::imagenet(backbone).unwrap();
        let pinned = source.sha256.clone().expect("a pinned hash");
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("hub");
        let server = TestHub::start();
        // A valid safetensors file, but not the one pinned.
        let bytes = safetensors_bytes(&[(
            "conv1.weight".into(),
            Dtype::F32,
            vec![16, 3, 3, 3],
            (0..16 * 27u32)
                .flat_map(|i| (i as f32).to_le_bytes())
                .collect(),
        )]);
        assert!(bytes.len() >= 1024);
        let commit = match &source.revision {
            Some(commit) => server.put_at(&source.repo, commit, &source.file, &bytes),
            None => server.put(&source.repo, &source.file, &bytes),
        };
        let hub = ortl_hub::Hub::new("test", cache.clone(), server.url(), false);
        let error = ortl_hub::resolve(backbone, &WeightsSpec::ImageNet, &hub).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, ResolveError::Hub(HubError::PinMismatch { .. })),
            "{message}"
        );
        for part in [
            pinned.as_str(),
            &sha256_hex(&bytes),
            &format!("--weights hf:{}@{commit}:{}", source.repo, source.file),
            "ortl pinned",
        ] {
            assert!(message.contains(part), "'{part}' missing from: {message}");
        }
        let revision = source.revision.as_deref().unwrap_or("main");
        assert!(
            server
                .requests()
                .iter()
                .any(|r| r.path == format!("/{}/resolve/{revision}/{}", source.repo, source.file)),
            "{:?}",
            server.requests()
        );
        // The hub's file is intact (its own hash holds): it stays in the cache.
        assert_eq!(ortl_hub::cache::list(&cache).unwrap().len(), 1);
    }
}

#[test]
fn an_onnx_backbone_from_the_hub_imports_and_trains() {
    use ortl_models::exports::{Classifier, Export, mobile};
    let wd = Workdir::new();
    tensors(&wd);
    let model = mobile(&Export {
        opset: 11,
        size: None,
        classifier: Classifier::ShapeFlatten,
        classes: 1000,
        seed: 1,
    });
    let bytes = ortl_onnx::io::to_bytes(&model);
    assert!(bytes.len() >= 1024);
    let server = TestHub::start();
    let commit = server.put("test-org/tiny-onnx", "model.onnx", &bytes);
    let hf_home = wd.join("hf");

    let args = [
        "--backbone",
        "hf:test-org/tiny-onnx:model.onnx",
        "--epochs",
        "1",
    ];
    let (code, _, stderr) = train(&wd, &hf_home, server.url(), "run", &args);
    assert_eq!(code, 0, "{stderr}");
    let line = backbone_line(&stderr);
    assert!(line.contains(&sha256_hex(&bytes)), "{line}");
    let record = TrainRecord::read(&wd.join("run/train.json")).unwrap();
    assert_eq!(record.settings.backbone, "hf:test-org/tiny-onnx:model.onnx");
    assert_eq!(
        record.settings.backbone_weights,
        Weights::Hub {
            repo: "test-org/tiny-onnx".into(),
            revision: commit,
            file: "model.onnx".into(),
            sha256: sha256_hex(&bytes),
            pinned: false,
        }
    );
    assert_eq!(
        record.settings.bn_mode, "frozen",
        "an imported backbone's default"
    );
    assert!(wd.join("run/model.onnx").is_file());

    // A hub backbone is a named .onnx file: usage errors before any download.
    let asked = server.requests().len();
    for (backbone, said) in [
        ("hf:test-org/tiny-onnx", "names no file"),
        ("hf:test-org/tiny-onnx:model.safetensors", "--weights"),
    ] {
        let args = ["--backbone", backbone, "--epochs", "1"];
        let (code, _, stderr) = train(&wd, &hf_home, server.url(), "bad", &args);
        assert_eq!(code, 2, "{backbone}: {stderr}");
        let lines = error_lines(&stderr);
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(lines[0].contains(said), "{backbone}: {stderr}");
    }
    assert_eq!(server.requests().len(), asked, "{:?}", server.requests());
}
