//! Golden hashes of the graphs ortl builds: the proof that a refactoring (issue #39: operator
//! registry, typed graph building) changes nothing. Every graph below is built twice (the two
//! builds must be the same bytes, or a golden could never hold), serialized with
//! `ortl_onnx::io::to_bytes`, and its SHA-256 compared with `tests/data/graph-goldens.tsv`
//! (`name<TAB>sha256`, sorted by name). One failure lists every changed, missing and new name.
//!
//! Re-record only for a deliberate change to the graphs, and say in the commit why they changed:
//!
//! ```text
//! ORTL_BLESS_GOLDENS=1 cargo test -p ortl-train --test goldens
//! ```
//!
//! Covered: the inference classifier of every `-mini` family with each head (and one
//! multi-label); the frozen backbone and the head alone (the feature cache's two halves); the
//! step graph of every `-mini` family, plain and blocked (NCHWc, blocks of 8 and 16 fixed here
//! rather than probed from this CPU), with BatchNorms frozen and training, head-only on images
//! and on cached features, each optimizer updated in the graph, each loss, the update on the
//! host and in the graph, clipping, an L2 penalty, a partial freeze; ResNet50's step; and the
//! Grad-CAM and Grad-CAM++ graphs ortl-infer builds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::ValueEnum;
use ortl_autodiff::loss::Loss;
use ortl_autodiff::optim::{Optimizer, OptimizerKind};
use ortl_manifest::Task;
use ortl_models::heads::HeadOutput;
use ortl_models::{Backbone, ClassifierSpec, Head, classifier};
use ortl_onnx::Model;
use ortl_runtime::Device;
use ortl_train::graph::{self, BnMode, ConvLayout, TrainSpec, Trainable, UpdateOn};
use sha2::{Digest, Sha256};

const GOLDENS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/graph-goldens.tsv");
const BLESS: &str = "ORTL_BLESS_GOLDENS";
const RECORD: &str = "ORTL_BLESS_GOLDENS=1 cargo test -p ortl-train --test goldens";
/// Fewer graphs than this means cases were lost, not that the graphs agree.
const AT_LEAST: usize = 100;

const FAMILIES: [&str; 7] = [
    "resnet-mini",
    "mobilenet-mini",
    "vgg-mini",
    "densenet-mini",
    "efficientnet-mini",
    "inception-mini",
    "inception-resnet-mini",
];
const BACKBONE_SEED: u64 = 7;
const HEAD_SEED: u64 = 3;

/// The image side each backbone is built for: small enough to be quick, large enough for
/// every family (Inception's stem needs 75), ResNet50 at the tutorial's 224; pinned rather
/// than taken from `minimum_size`, so that a change there is not a graph change.
fn size(family: &str) -> usize {
    match family {
        "inception-mini" | "inception-resnet-mini" => 75,
        "resnet50" => 224,
        _ => 32,
    }
}

fn backbone(family: &str) -> Backbone {
    ortl_models::zoo::builtin(family, BACKBONE_SEED)
        .unwrap_or_else(|| panic!("'{family}' is not a built-in backbone"))
}

fn head_name(head: &Head) -> String {
    head.to_string().replace(':', "=")
}

fn heads() -> [Head; 3] {
    ["linear", "tutorial", "mlp:16,8"].map(|h| h.parse().expect("a valid head"))
}

fn classifier_of(backbone: &Backbone, head: &Head, task: Task) -> (Model, HeadOutput) {
    let classes = match task {
        Task::SingleLabel => vec!["normal", "tuberculosis"],
        Task::MultiLabel => vec!["effusion", "nodule", "pneumonia"],
    };
    let side = size(&backbone.name);
    let spec = ClassifierSpec {
        classes: classes.into_iter().map(String::from).collect(),
        height: side,
        width: side,
        head: head.clone(),
        seed: HEAD_SEED,
        task,
    };
    assert_eq!(backbone.unfit_size(side, side), None, "{}", backbone.name);
    classifier(backbone, &spec)
}

fn task_name(task: Task) -> &'static str {
    match task {
        Task::SingleLabel => "single",
        Task::MultiLabel => "multi",
    }
}

/// One step graph as ortl-train builds it (`Trainer::build`, `--export-step-graph`).
#[derive(Clone, Debug)]
struct Step {
    family: &'static str,
    head: Head,
    task: Task,
    trainable: Trainable,
    bn_mode: BnMode,
    loss: Option<Loss>,
    optimizer: OptimizerKind,
    weight_decay: f32,
    update_on: UpdateOn,
    /// The NCHWc block, `None` for the plain graph.
    block: Option<i64>,
    /// The head-only step reading cached pooled features.
    features: bool,
    clip_norm: Option<f32>,
    l2: Option<f32>,
}

impl Step {
    fn of(family: &'static str) -> Self {
        Step {
            family,
            head: Head::Tutorial,
            task: Task::SingleLabel,
            trainable: Trainable::All,
            bn_mode: BnMode::Frozen,
            loss: None,
            optimizer: OptimizerKind::Adam,
            weight_decay: 0.0,
            update_on: UpdateOn::Host,
            block: None,
            features: false,
            clip_norm: None,
            l2: None,
        }
    }

    /// ortl-train's default for the head and task.
    fn loss(&self) -> Loss {
        self.loss.unwrap_or(match (self.task, &self.head) {
            (Task::MultiLabel, _) => Loss::SigmoidBinary,
            (_, Head::Tutorial) => Loss::SigmoidCategorical,
            _ => Loss::SoftmaxCrossEntropy,
        })
    }

    fn name(&self) -> String {
        let value = |v: &dyn Fn() -> Option<clap::builder::PossibleValue>| {
            v().expect("named").get_name().to_string()
        };
        let mut name = format!(
            "step/{}/{}/{}/freeze={}/bn={}/{}/{}/update={}/{}",
            self.family,
            head_name(&self.head),
            task_name(self.task),
            self.trainable,
            value(&|| self.bn_mode.to_possible_value()),
            self.loss(),
            value(&|| self.optimizer.to_possible_value()),
            value(&|| self.update_on.to_possible_value()),
            match self.block {
                None => "plain".to_string(),
                Some(block) => format!("blocked{block}"),
            },
        );
        if self.weight_decay != 0.0 {
            name += &format!("/decay={}", self.weight_decay);
        }
        if self.features {
            name += "/features";
        }
        if let Some(clip) = self.clip_norm {
            name += &format!("/clip={clip}");
        }
        if let Some(l2) = self.l2 {
            name += &format!("/l2={l2}");
        }
        name
    }

    fn build(&self) -> Model {
        let backbone = backbone(self.family);
        let (model, mut head) = classifier_of(&backbone, &self.head, self.task);
        if let Some(coefficient) = self.l2 {
            // As ortl-train's --l2: every dense kernel of the head.
            head.l2 = model
                .graph
                .nodes
                .iter()
                .filter(|n| {
                    n.op == "Gemm" && n.inputs.get(1).is_some_and(|w| w.starts_with("head."))
                })
                .map(|n| (n.inputs[1].clone(), coefficient))
                .collect();
        }
        let layout = match self.block {
            None => ConvLayout::Plain,
            Some(_) => ConvLayout::Blocked,
        };
        let spec = TrainSpec {
            trainable: self.trainable.clone(),
            bn_mode: self.bn_mode,
            head_bn_momentum: 0.99,
            backbone_bn_momentum: 0.9,
            loss: self.loss(),
            optimizer: Optimizer::keras(self.optimizer, self.weight_decay, 0.9),
            clip_norm: self.clip_norm,
            conv_layout: layout,
            update_on: self.update_on,
        };
        let mut step = ortl_train::build_step(&model, &head, &spec).expect("builds");
        if self.features {
            step = graph::on_features(step, &head.pooled, backbone.channels);
        }
        graph::apply_conv_layout(&mut step, layout, Device::Cpu, self.block).expect("layout");
        step.model
    }
}

type Build = Box<dyn Fn() -> Model + Send + Sync>;

fn cases() -> Vec<(String, Build)> {
    let mut cases: Vec<(String, Build)> = Vec::new();
    let mut add = |name: String, build: Build| cases.push((name, build));

    // Inference classifiers, and the two halves of a head-only run's feature cache.
    for family in FAMILIES {
        for head in heads() {
            let name = format!("classifier/{family}/{}/single", head_name(&head));
            add(
                name,
                Box::new(move || classifier_of(&backbone(family), &head, Task::SingleLabel).0),
            );
        }
        add(
            format!("feature-extractor/{family}/tutorial/single"),
            Box::new(move || {
                let backbone = backbone(family);
                let (model, head) = classifier_of(&backbone, &Head::Tutorial, Task::SingleLabel);
                graph::feature_extractor(&model, &head.pooled, backbone.channels)
            }),
        );
        add(
            format!("head-model/{family}/tutorial/single"),
            Box::new(move || {
                let backbone = backbone(family);
                let (model, head) = classifier_of(&backbone, &Head::Tutorial, Task::SingleLabel);
                graph::head_model(&model, &head.pooled, backbone.channels)
            }),
        );
    }
    add(
        "classifier/resnet50/tutorial/single".into(),
        Box::new(|| classifier_of(&backbone("resnet50"), &Head::Tutorial, Task::SingleLabel).0),
    );
    for head in heads() {
        add(
            format!("classifier/resnet-mini/{}/multi", head_name(&head)),
            Box::new(move || classifier_of(&backbone("resnet-mini"), &head, Task::MultiLabel).0),
        );
    }

    // Step graphs.
    let mut steps = Vec::new();
    for family in FAMILIES {
        let base = Step::of(family);
        for block in [None, Some(8)] {
            for bn_mode in [BnMode::Frozen, BnMode::Train] {
                steps.push(Step {
                    block,
                    bn_mode,
                    ..base.clone()
                });
            }
        }
        steps.push(Step {
            trainable: Trainable::Head,
            ..base.clone()
        });
        steps.push(Step {
            trainable: Trainable::Head,
            features: true,
            ..base.clone()
        });
        steps.push(Step {
            update_on: UpdateOn::Graph,
            ..base.clone()
        });
    }
    let base = Step::of("resnet-mini");
    // AdamW without weight decay is Adam, the same bytes; the decayed forms follow.
    for optimizer in OptimizerKind::value_variants() {
        steps.push(Step {
            optimizer: *optimizer,
            update_on: UpdateOn::Graph,
            ..base.clone()
        });
    }
    steps.extend([
        Step {
            optimizer: OptimizerKind::Adamw,
            weight_decay: 0.01,
            update_on: UpdateOn::Graph,
            ..base.clone()
        },
        Step {
            optimizer: OptimizerKind::Sgd,
            weight_decay: 0.01,
            update_on: UpdateOn::Graph,
            ..base.clone()
        },
        Step {
            update_on: UpdateOn::Graph,
            block: Some(8),
            bn_mode: BnMode::Train,
            ..base.clone()
        },
        Step {
            block: Some(16),
            ..base.clone()
        },
        Step {
            trainable: Trainable::Head,
            features: true,
            update_on: UpdateOn::Graph,
            ..base.clone()
        },
        Step {
            trainable: Trainable::Upto("layer3".into()),
            ..base.clone()
        },
        Step {
            clip_norm: Some(1.0),
            ..base.clone()
        },
        Step {
            clip_norm: Some(1.0),
            update_on: UpdateOn::Graph,
            ..base.clone()
        },
        Step {
            l2: Some(0.01),
            ..base.clone()
        },
        Step {
            task: Task::MultiLabel,
            ..base.clone()
        },
        Step {
            task: Task::MultiLabel,
            bn_mode: BnMode::Train,
            update_on: UpdateOn::Graph,
            ..base.clone()
        },
        Step {
            task: Task::MultiLabel,
            trainable: Trainable::Head,
            features: true,
            ..base.clone()
        },
    ]);
    for head in heads() {
        for loss in Loss::value_variants() {
            steps.push(Step {
                head: head.clone(),
                loss: Some(*loss),
                ..base.clone()
            });
        }
        steps.push(Step {
            head: head.clone(),
            trainable: Trainable::Head,
            features: true,
            ..base.clone()
        });
    }
    // ResNet50 at full size: the tutorial's backbone, in the CPU's default (blocked) layout
    // and the plain one, with BatchNorms training, and updated in the graph (CUDA's form).
    let resnet50 = Step::of("resnet50");
    steps.extend([
        resnet50.clone(),
        Step {
            block: Some(8),
            ..resnet50.clone()
        },
        Step {
            bn_mode: BnMode::Train,
            ..resnet50.clone()
        },
        Step {
            update_on: UpdateOn::Graph,
            ..resnet50.clone()
        },
    ]);
    // The sweeps overlap (resnet-mini's Adam in the graph is both a family's and an
    // optimizer's case): each graph once.
    let mut seen = BTreeSet::new();
    for step in steps {
        if seen.insert(step.name()) {
            add(step.name(), Box::new(move || step.build()));
        }
    }

    // Grad-CAM graphs as ortl-infer builds them (crates/infer/src/explain.rs).
    for family in ["resnet-mini", "inception-mini"] {
        // The built-in CNNs have no attention to map.
        for method in ortl_explain::Method::value_variants()
            .iter()
            .filter(|m| **m != ortl_explain::Method::Attention)
        {
            let method = *method;
            add(
                format!("cam/{family}/tutorial/single/{method}"),
                Box::new(move || {
                    let (model, _) =
                        classifier_of(&backbone(family), &Head::Tutorial, Task::SingleLabel);
                    let target = ortl_explain::locate(&model, None).expect("a feature map");
                    ortl_explain::cam_model(&model, &target, method).expect("a CAM graph")
                }),
            );
        }
        add(
            format!("cam-features/{family}/tutorial/single"),
            Box::new(move || {
                let (model, _) =
                    classifier_of(&backbone(family), &Head::Tutorial, Task::SingleLabel);
                let target = ortl_explain::locate(&model, None).expect("a feature map");
                ortl_explain::expose_features(&model, &target)
            }),
        );
    }
    cases
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Builds every case twice, on all cores; returns name → hash, or the names whose two builds
/// differed.
fn hash_all(cases: &[(String, Build)]) -> Result<BTreeMap<String, String>, Vec<String>> {
    let next = AtomicUsize::new(0);
    let hashes = Mutex::new(BTreeMap::new());
    let unstable = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some((name, build)) = cases.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let first = ortl_onnx::io::to_bytes(&build());
                    let second = ortl_onnx::io::to_bytes(&build());
                    if first != second {
                        unstable.lock().unwrap().push(name.clone());
                    }
                    hashes.lock().unwrap().insert(name.clone(), sha256(&first));
                }
            });
        }
    });
    let mut unstable = unstable.into_inner().unwrap();
    if unstable.is_empty() {
        Ok(hashes.into_inner().unwrap())
    } else {
        unstable.sort();
        Err(unstable)
    }
}

fn read_goldens() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(GOLDENS)
        .unwrap_or_else(|e| panic!("{GOLDENS}: {e}; record it with {RECORD}"));
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let (name, hash) = line
                .split_once('\t')
                .unwrap_or_else(|| panic!("{GOLDENS}:{}: expected name<TAB>sha256", i + 1));
            assert!(
                hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                "{GOLDENS}:{}: '{hash}' is not a SHA-256",
                i + 1
            );
            (name.to_string(), hash.to_string())
        })
        .collect()
}

fn write_goldens(hashes: &BTreeMap<String, String>) {
    let text: String = hashes
        .iter()
        .map(|(name, hash)| format!("{name}\t{hash}\n"))
        .collect();
    let path = std::path::Path::new(GOLDENS);
    std::fs::create_dir_all(path.parent().expect("a folder")).expect("create tests/data");
    std::fs::write(path, text).expect("write the goldens");
}

#[test]
fn every_graph_ortl_builds_matches_its_golden_hash() {
    let cases = cases();
    let names: BTreeSet<&str> = cases.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), cases.len(), "two cases share a name");
    assert!(
        cases.len() >= AT_LEAST,
        "only {} graphs built, expected at least {AT_LEAST}",
        cases.len()
    );
    let hashes = match hash_all(&cases) {
        Ok(hashes) => hashes,
        Err(unstable) => panic!(
            "{} graphs differ between two builds in one process, so no golden can hold: {}",
            unstable.len(),
            unstable.join(", ")
        ),
    };
    if std::env::var_os(BLESS).is_some_and(|v| v == "1") {
        write_goldens(&hashes);
        eprintln!("recorded {} golden hashes in {GOLDENS}", hashes.len());
        return;
    }
    let goldens = read_goldens();
    assert!(
        goldens.len() >= AT_LEAST,
        "{GOLDENS} has only {} entries, expected at least {AT_LEAST}",
        goldens.len()
    );
    let mut problems = Vec::new();
    for (name, hash) in &hashes {
        match goldens.get(name) {
            Some(golden) if golden == hash => {}
            Some(golden) => problems.push(format!("changed: {name} (golden {golden}, now {hash})")),
            None => problems.push(format!("new, not in the goldens: {name}")),
        }
    }
    for name in goldens.keys().filter(|n| !hashes.contains_key(*n)) {
        problems.push(format!("in the goldens, no longer built: {name}"));
    }
    assert!(
        problems.is_empty(),
        "{} of {} graphs differ from {GOLDENS}:\n  {}\n\
         A refactoring must leave every graph byte for byte as it was. If this change to the \
         graphs is deliberate, re-record with `{RECORD}` and say in the commit message why \
         each graph changed.",
        problems.len(),
        hashes.len(),
        problems.join("\n  ")
    );
}
