//! Grad-CAM of vision transformers: the tiny ViT in each exporter form
//! ([`ortl_models::exports::vit`]), cut and given a head by ortl, is explained on the patch
//! grid of the tokens its attention block reads, and the map equals Grad-CAM's definition with
//! each channel's weight (the mean gradient over the patches) taken by finite differences.

use ndarray::{ArrayD, Axis, IxDyn};
use ortl_explain::{Method, TokenGrid, cam, cam_model, expose_features, locate, one_hot};
use ortl_models::exports::{self, TokenHead};
use ortl_models::{ClassifierSpec, Head, Layout, classifier, import::cut};
use ortl_onnx::builder::Gemm;
use ortl_onnx::{DataType, Dim, GraphBuilder, Model, Tensor, io};
use ortl_runtime::Feed;

const SIZE: usize = exports::VIT_SIZE as usize;
const CLASSES: usize = 3;
const GRID: usize = (exports::VIT_SIZE / exports::PATCH) as usize;
const WIDTH: usize = exports::WIDTH as usize;

/// The exported ViT with an ortl head, as ortl-train writes it.
fn vit_classifier(head: TokenHead) -> Model {
    classifier_of(exports::vit(head, 5, 3), SIZE)
}

/// `export`, read back from its bytes, with an ortl head at `size`×`size`.
fn classifier_of(export: Model, size: usize) -> Model {
    let export = io::from_bytes(&io::to_bytes(&export), None).unwrap();
    let backbone = cut(export, "export", None).unwrap();
    let spec = ClassifierSpec {
        task: ortl_manifest::Task::SingleLabel,
        classes: (0..CLASSES).map(|c| format!("class{c}")).collect(),
        height: size,
        width: size,
        head: Head::Linear { dropout: 0.0 },
        seed: 3,
    };
    classifier(&backbone, &spec).0
}

fn images(n: usize) -> ArrayD<u8> {
    ArrayD::from_shape_fn(IxDyn(&[n, SIZE, SIZE, 3]), |i| {
        ((i[0] * 53 + i[1] * 29 + i[2] * 17 + i[3] * 7) % 251) as u8
    })
}

fn run(model: &Model, feeds: Vec<(&str, Feed)>) -> std::collections::BTreeMap<String, ArrayD<f32>> {
    let runtime = ortl_runtime::testing::runtime();
    let mut session = runtime
        .load(&Default::default(), &io::to_bytes(model))
        .unwrap_or_else(|e| panic!("ORT accepts the graph: {e}"));
    ortl_runtime::run(&mut session, feeds).unwrap()
}

#[test]
fn grad_cam_of_each_vit_form_is_the_definition_on_its_patch_grid() {
    let chosen = [0, 2];
    for head in [
        TokenHead::ClassToken,
        TokenHead::MeanFcNorm,
        TokenHead::DynamoClassToken,
    ] {
        let model = vit_classifier(head);
        let target = locate(&model, None).unwrap_or_else(|e| panic!("{head:?}: {e}"));
        let tokens = 1 + (GRID * GRID) as i64;
        assert_eq!(
            target.tokens,
            Some(TokenGrid { tokens, leading: 1 }),
            "{head:?}"
        );
        assert_eq!(target.layout, Layout::Nhwc);
        assert_eq!(target.spatial(), (GRID, GRID), "{head:?}");
        // The last block's input: after that block only a class token has a gradient.
        assert!(
            model
                .graph
                .consumers(&target.features)
                .any(|n| n.op == "LayerNormalization" && n.inputs[1] == "ln_1.weight"),
            "{head:?}: {}",
            target.features
        );

        let out = run(
            &expose_features(&model, &target),
            vec![("image", Feed::U8(images(chosen.len())))],
        );
        let features = out[&target.features].clone();
        assert_eq!(features.shape(), [chosen.len(), tokens as usize, WIDTH]);
        let graph = cam_model(&model, &target, Method::GradCam).unwrap();
        let weights = one_hot(&chosen, CLASSES).into_dyn();
        let out = run(
            &graph,
            vec![
                (target.features.as_str(), Feed::F32(features.clone())),
                (cam::CLASS_WEIGHTS, Feed::F32(weights)),
            ],
        );
        let maps = &out[cam::CAM];
        assert_eq!(maps.shape(), [chosen.len(), GRID, GRID], "{head:?}");

        let alphas = finite_difference_weights(&graph, &target.features, &features, &chosen);
        for (i, alpha) in alphas.iter().enumerate() {
            let expected: Vec<f32> = (0..GRID * GRID)
                .map(|p| {
                    let token = features.index_axis(Axis(0), i);
                    let sum: f32 = (0..WIDTH).map(|k| alpha[k] * token[[1 + p, k]]).sum();
                    sum.max(0.0)
                })
                .collect();
            let got: Vec<f32> = maps.index_axis(Axis(0), i).iter().copied().collect();
            let scale = expected.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
            for (p, (e, g)) in expected.iter().zip(&got).enumerate() {
                assert!(
                    (e - g).abs() <= 2e-2 * scale,
                    "{head:?} image {i} patch {p}: {g} vs finite differences {e}"
                );
            }
            let (low, high) = got
                .iter()
                .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
            assert!(high > low, "{head:?} image {i}: a constant map {got:?}");
        }
    }
}

/// Each image's Grad-CAM channel weights `α_k = mean_patches ∂S_c/∂A_pk`, as the central
/// difference of the score when channel k of every patch token moves by ±ε, divided by the
/// patch count; all perturbed copies in one batch (images do not interact).
fn finite_difference_weights(
    graph: &Model,
    input: &str,
    features: &ArrayD<f32>,
    chosen: &[usize],
) -> Vec<Vec<f32>> {
    const EPS: f32 = 1e-2;
    let n = chosen.len();
    let mut copies = Vec::new();
    let mut classes = Vec::new();
    for sign in [1.0, -1.0] {
        for k in 0..WIDTH {
            for (i, &class) in chosen.iter().enumerate() {
                let mut tokens = features.index_axis(Axis(0), i).to_owned();
                for p in 1..tokens.shape()[0] {
                    tokens[[p, k]] += sign * EPS;
                }
                copies.push(tokens);
                classes.push(class);
            }
        }
    }
    let views: Vec<_> = copies.iter().map(|c| c.view()).collect();
    let batch = ndarray::stack(Axis(0), &views).unwrap();
    let out = run(
        graph,
        vec![
            (input, Feed::F32(batch)),
            (
                cam::CLASS_WEIGHTS,
                Feed::F32(one_hot(&classes, CLASSES).into_dyn()),
            ),
        ],
    );
    let scores = &out[cam::SCORES];
    let score = |row: usize| scores[[row, classes[row]]];
    let patches = (GRID * GRID) as f32;
    (0..n)
        .map(|i| {
            (0..WIDTH)
                .map(|k| {
                    let plus = k * n + i;
                    let minus = WIDTH * n + plus;
                    (score(plus) - score(minus)) / (2.0 * EPS) / patches
                })
                .collect()
        })
        .collect()
}

#[test]
fn tokens_without_a_patch_grid_are_refused_by_name() {
    // tokens [N, 6, 4] → class token → Gemm → Softmax: no patch-embedding Conv to lay the
    // five other tokens out.
    let mut b = GraphBuilder::new("grid_less");
    let n = Dim::Symbolic("N".into());
    let tokens = b.input(
        "tokens",
        DataType::Float,
        vec![n.clone(), Dim::Fixed(6), Dim::Fixed(4)],
    );
    let first = b.constant(Tensor::i64(&[], vec![0]));
    let class_token = b.gather(&tokens, &first, 1);
    let w = b.param("fc.weight", Tensor::f32(&[2, 4], vec![0.5; 8]));
    let logits = b.gemm(&class_token, &w, None, &Gemm::B_TRANSPOSED);
    let probabilities = b.softmax(&logits, -1);
    b.output(&probabilities, DataType::Float, vec![n, Dim::Fixed(2)]);
    let err = locate(&Model::new(b.finish()), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the 6 tokens of 'tokens' form no patch grid") && err.contains("--cam-layer"),
        "{err}"
    );
}

/// A ConvNeXt cut after the LayerNorm on its pooled features records a 1×1 map; Grad-CAM
/// explains the map its pooling reads instead (the stem's 4×4 grid at 16×16).
#[test]
fn a_convnext_cut_after_its_pooling_is_explained_on_the_map_it_pools() {
    use ortl_models::exports::ConvNextHead;
    for head in [
        ConvNextHead::GlobalAveragePool,
        ConvNextHead::ReduceMean,
        ConvNextHead::AsStrided,
    ] {
        let model = classifier_of(exports::convnext(head, 5, 3), 16);
        let target = ortl_explain::cam::locate(&model, None).unwrap();
        assert_eq!(target.tokens, None, "{head:?}");
        assert_eq!(target.dims[1..], [4, 4], "{head:?}: {target:?}");
    }
}

/// `--cam-method attention`: the last block's Softmax over token pairs, the class token's
/// row to the patches averaged over the heads, on the patch grid; the same map whatever the
/// class weights. A ConvNeXt has no attention to show, and says so.
#[test]
fn the_class_token_attention_map_is_the_mean_of_the_heads_over_the_patches() {
    for head in [TokenHead::ClassToken, TokenHead::DynamoClassToken] {
        let model = vit_classifier(head);
        let tokens = locate(&model, None).unwrap();
        let target = ortl_explain::attention_target(&model, &tokens)
            .unwrap_or_else(|e| panic!("{head:?}: {e}"));
        let heads = 2;
        assert_eq!(
            target.attention,
            Some(ortl_explain::Attention {
                heads,
                folded: false
            }),
            "{head:?}"
        );
        assert_eq!(target.spatial(), (GRID, GRID), "{head:?}");
        assert_eq!(
            model
                .graph
                .producer(&target.features)
                .map(|n| n.op.as_str()),
            Some("Softmax")
        );
        let n = 2;
        let out = run(
            &expose_features(&model, &target),
            vec![("image", Feed::U8(images(n)))],
        );
        let weights = out[&target.features].clone();
        let tokens_count = 1 + GRID * GRID;
        assert_eq!(
            weights.shape(),
            [n, heads as usize, tokens_count, tokens_count]
        );
        let graph = cam_model(&model, &target, Method::Attention).unwrap();
        let maps: Vec<ArrayD<f32>> = [[0, 0], [1, 2]]
            .iter()
            .map(|chosen| {
                let out = run(
                    &graph,
                    vec![
                        (target.features.as_str(), Feed::F32(weights.clone())),
                        (
                            cam::CLASS_WEIGHTS,
                            Feed::F32(one_hot(chosen, CLASSES).into_dyn()),
                        ),
                    ],
                );
                out[cam::CAM].clone()
            })
            .collect();
        assert_eq!(maps[0], maps[1], "{head:?}: the map depends on the class");
        assert_eq!(maps[0].shape(), [n, GRID, GRID]);
        for image in 0..n {
            for patch in 0..GRID * GRID {
                let expected = (0..heads as usize)
                    .map(|h| weights[[image, h, 0, 1 + patch]])
                    .sum::<f32>()
                    / heads as f32;
                let got = maps[0][[image, patch / GRID, patch % GRID]];
                assert!(
                    (got - expected).abs() < 1e-6,
                    "{head:?}: {got} vs {expected}"
                );
            }
        }
    }
    let convnext = classifier_of(
        exports::convnext(ortl_models::exports::ConvNextHead::GlobalAveragePool, 5, 3),
        16,
    );
    let target = locate(&convnext, None).unwrap();
    let refused = ortl_explain::attention_target(&convnext, &target)
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("explains a vision transformer") && refused.contains("use gradcam"),
        "{refused}"
    );
}
