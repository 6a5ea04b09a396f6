//! Transformers and ConvNeXt in their exporters' forms ([`ortl_models::exports::vit`] and
//! [`convnext`](ortl_models::exports::convnext)): the analysis cuts each at the embedding its
//! classifier reads, the cut computes the original's values, `--features` with `--pool`
//! pools a token tensor, and what cannot be cut is refused naming the node and the fix.

use ndarray::{ArrayD, IxDyn};
use ortl_models::exports::{self, ConvNextHead, TokenHead};
use ortl_models::import::{cut, cut_at, find_pool};
use ortl_models::{Backbone, TokenPool};
use ortl_onnx::{DataType, Dim, Model, ValueInfo, io};
use ortl_runtime::Feed;
use ortl_runtime::testing::run;

const VITS: [TokenHead; 3] = [
    TokenHead::ClassToken,
    TokenHead::MeanFcNorm,
    TokenHead::DynamoClassToken,
];
const CONVNEXTS: [ConvNextHead; 3] = [
    ConvNextHead::GlobalAveragePool,
    ConvNextHead::ReduceMean,
    ConvNextHead::AsStrided,
];

/// As read back from a file, the way users bring it.
fn written(model: Model) -> Model {
    io::from_bytes(&io::to_bytes(&model), None).unwrap()
}

fn pixels(n: usize, size: usize) -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(&[n, 3, size, size]), |i| {
        ((i[0] * 7 + i[1] * 13 + i[2] * 5 + i[3] * 3) % 17) as f32 / 8.0 - 1.0
    })
}

/// The tensor the backbone's graph was cut at: the input of the reshape to a 1×1 map.
fn cut_tensor(backbone: &Backbone) -> String {
    let reshape = backbone.graph.producer(&backbone.features).unwrap();
    assert_eq!(reshape.op, "Reshape");
    reshape.inputs[0].clone()
}

/// The shape ortl infers for `value` in the backbone's graph, at `size` when its input is
/// dynamic.
fn shape_of(backbone: &Backbone, value: &str, size: i64) -> Vec<Option<i64>> {
    let mut graph = backbone.graph.clone();
    graph.inputs[0].shape = Some(vec![
        Dim::Symbolic("N".into()),
        Dim::Fixed(3),
        Dim::Fixed(size),
        Dim::Fixed(size),
    ]);
    ortl_onnx::fold::fold(&mut graph);
    ortl_onnx::shapes::infer(&graph).unwrap()[value]
        .shape
        .clone()
}

/// The original model's `value` and the backbone's features, on the same pixels.
fn original_and_cut(
    model: &Model,
    value: &str,
    backbone: &Backbone,
    size: usize,
) -> (Vec<f32>, Vec<f32>) {
    let mut original = model.clone();
    original.graph.outputs = vec![ValueInfo::new(
        value,
        DataType::Float,
        vec![Dim::Unknown; 2],
    )];
    let expected = run(&original, vec![("input", Feed::F32(pixels(2, size)))]);
    let got = run(
        &Model::new(backbone.graph.clone()),
        vec![(backbone.input.as_str(), Feed::F32(pixels(2, size)))],
    );
    let flat = |a: &ArrayD<f32>| a.iter().copied().collect::<Vec<_>>();
    (flat(&expected[value]), flat(got.values().next().unwrap()))
}

fn assert_close(expected: &[f32], got: &[f32], case: &str) {
    assert_eq!(expected.len(), got.len(), "{case}");
    let worst = expected
        .iter()
        .zip(got)
        .map(|(e, g)| (e - g).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-5, "{case}: differs by {worst}");
}

/// Every ViT form is cut at the embedding its classifier reads, `[N, 16]`: the class token
/// after the final LayerNorm (Gather, or Slice and Squeeze), or timm's `fc_norm` of the
/// token mean; and the cut computes what the original computes there.
#[test]
fn each_vit_form_is_cut_at_its_class_token_or_normalised_mean() {
    for head in VITS {
        let model = written(exports::vit(head, 3, 5));
        let backbone = cut(model.clone(), "vit", None).unwrap_or_else(|e| panic!("{head:?}: {e}"));
        let at = cut_tensor(&backbone);
        assert_eq!(at, head.embedding(), "{head:?}");
        let size = exports::VIT_SIZE;
        assert_eq!(
            shape_of(&backbone, &at, size)[1..],
            [Some(exports::WIDTH)],
            "{head:?}"
        );
        assert_eq!(backbone.channels, exports::WIDTH as usize, "{head:?}");
        assert_eq!(
            backbone.size,
            Some((size as usize, size as usize)),
            "{head:?}"
        );
        assert!(
            backbone.cut.contains(head.embedding()),
            "{head:?}: {}",
            backbone.cut
        );
        let what = if head == TokenHead::MeanFcNorm {
            "mean of the tokens"
        } else {
            "class token"
        };
        assert!(backbone.cut.contains(what), "{head:?}: {}", backbone.cut);
        let (expected, got) = original_and_cut(&model, &at, &backbone, size as usize);
        assert_close(&expected, &got, &format!("{head:?}"));
    }
}

/// A LayerNorm between ConvNeXt's pooling and its classifier stays in the backbone: the cut
/// is the normalised embedding, at any image size; Grad-CAM's search still finds the map.
#[test]
fn convnext_is_cut_after_the_layernorm_on_its_pooled_features() {
    for head in CONVNEXTS {
        let model = written(exports::convnext(head, 3, 5));
        let backbone =
            cut(model.clone(), "convnext", None).unwrap_or_else(|e| panic!("{head:?}: {e}"));
        let at = cut_tensor(&backbone);
        assert_eq!(at, head.embedding(), "{head:?}");
        assert_eq!(
            shape_of(&backbone, &at, 40)[1..],
            [Some(exports::WIDTH)],
            "{head:?}"
        );
        assert!(
            backbone.cut.contains("LayerNormalization"),
            "{head:?}: {}",
            backbone.cut
        );
        assert_eq!(backbone.size, None, "{head:?}");
        let (expected, got) = original_and_cut(&model, &at, &backbone, 40);
        assert_close(&expected, &got, &format!("{head:?}"));
        // The export's own classifier reads the `as_strided` Gather, not a pooling; the
        // classifier ortl builds is explained in crates/explain/tests/token_cam.rs.
        if head != ConvNextHead::AsStrided {
            let pool = find_pool(&model.graph).unwrap();
            assert_eq!(pool.features, exports::CONVNEXT_FEATURES, "{head:?}");
        }
    }
}

/// `--features` naming the tokens with `--pool cls` is the class token the analysis finds;
/// with `--pool mean`, the mean over every token.
#[test]
fn named_tokens_are_pooled_as_pool_asks() {
    let head = TokenHead::ClassToken;
    let model = written(exports::vit(head, 3, 5));
    let found = cut(model.clone(), "vit", None).unwrap();
    let size = exports::VIT_SIZE as usize;
    for pool in [TokenPool::Cls, TokenPool::Mean] {
        let named = cut_at(model.clone(), "vit", None, Some(head.tokens()), Some(pool)).unwrap();
        assert_eq!(named.channels, exports::WIDTH as usize);
        assert!(named.cut.contains("--pool"), "{}", named.cut);
        let pooling = named.graph.producer(&cut_tensor(&named)).unwrap();
        assert_eq!(pooling.inputs[0], head.tokens(), "{pool:?}");
        let (tokens, got) = original_and_cut(&model, head.tokens(), &named, size);
        let width = exports::WIDTH as usize;
        let tokens_per_image = exports::TOKENS as usize * width;
        let expected: Vec<f32> = tokens
            .chunks(tokens_per_image)
            .flat_map(|image| match pool {
                TokenPool::Cls => image[..width].to_vec(),
                TokenPool::Mean => (0..width)
                    .map(|c| {
                        image.chunks(width).map(|token| token[c]).sum::<f32>()
                            / exports::TOKENS as f32
                    })
                    .collect(),
            })
            .collect();
        assert_close(&expected, &got, &format!("{pool:?}"));
        if pool == TokenPool::Cls {
            let (_, auto) = original_and_cut(&model, head.tokens(), &found, size);
            assert_close(&auto, &got, "the class token the analysis finds");
        }
    }
}

/// What cannot be cut says why and what to do: tokens without `--pool` (their shape, and
/// both pools), `--pool` on an embedding or without `--features`, and a classifier reading
/// a token other than the first (the node named).
#[test]
fn what_cannot_be_cut_is_refused_naming_the_shape_node_and_fix() {
    let head = TokenHead::ClassToken;
    let model = written(exports::vit(head, 3, 5));
    let refused = |features: Option<&str>, pool: Option<TokenPool>| {
        cut_at(model.clone(), "vit", None, features, pool).expect_err("refused")
    };
    let tokens = refused(Some(head.tokens()), None);
    assert!(tokens.contains("[N, 17, 16]"), "{tokens}");
    assert!(
        tokens.contains("--pool cls") && tokens.contains("--pool mean"),
        "{tokens}"
    );
    let embedding = refused(Some(head.embedding()), Some(TokenPool::Mean));
    assert!(
        embedding.contains("--pool mean pools tokens"),
        "{embedding}"
    );
    assert!(embedding.contains("[N, 16]"), "{embedding}");
    let alone = refused(None, Some(TokenPool::Cls));
    assert!(alone.contains("--features NAME"), "{alone}");

    // The second token, not the class token.
    let mut second = model.clone();
    let gather = second
        .graph
        .nodes
        .iter()
        .position(|n| n.outputs[0] == head.embedding())
        .unwrap();
    let index = second.graph.nodes[gather].inputs[1].clone();
    let constant = second
        .graph
        .nodes
        .iter_mut()
        .find(|n| n.outputs[0] == index)
        .unwrap();
    constant.attrs.insert(
        "value".into(),
        ortl_onnx::Attr::Tensor(ortl_onnx::Tensor::i64(&[], vec![1])),
    );
    let node = second.graph.nodes[gather].name.clone();
    let refusal = cut(second, "vit", None).expect_err("refused");
    assert!(refusal.contains(&format!("Gather '{node}'")), "{refusal}");
    assert!(
        refusal.contains("--features NAME --pool cls|mean"),
        "{refusal}"
    );
}

/// An encoder exported without a classifier (timm's `num_classes=0`, DINOv2) ends at its
/// class token or token mean: the cut is its output, and computes what the original does.
#[test]
fn an_encoder_without_a_classifier_is_cut_at_its_output() {
    for head in VITS {
        let mut model = exports::vit(head, 3, 5);
        model.graph.outputs = vec![ortl_onnx::ValueInfo {
            name: head.embedding().into(),
            dtype: ortl_onnx::DataType::Float,
            shape: None,
        }];
        ortl_onnx::passes::prune(&mut model.graph);
        let model = written(model);
        let backbone =
            cut(model.clone(), "encoder", None).unwrap_or_else(|e| panic!("{head:?}: {e}"));
        let at = cut_tensor(&backbone);
        assert_eq!(at, head.embedding(), "{head:?}");
        assert!(
            backbone.cut.contains("without a classifier"),
            "{head:?}: {}",
            backbone.cut
        );
        assert_eq!(backbone.channels, exports::WIDTH as usize, "{head:?}");
        let size = exports::VIT_SIZE as usize;
        let (expected, got) = original_and_cut(&model, &at, &backbone, size);
        assert_close(&expected, &got, &format!("{head:?}"));
    }
}

/// optimum declares the image's channel axis dynamic too (`[?, ?, ?, ?]`): the layout and
/// the three channels come from the patch embedding's convolution, and the cut is the one
/// the declared input gets. An input no convolution of 3 channels reads is refused by name.
#[test]
fn an_input_with_a_dynamic_channel_axis_takes_its_layout_from_the_first_convolution() {
    let declared = cut(
        written(exports::vit(TokenHead::ClassToken, 3, 5)),
        "vit",
        None,
    )
    .unwrap();
    let mut model = written(exports::vit(TokenHead::ClassToken, 3, 5));
    let dynamic = || Dim::Symbolic("d".into());
    let side = Dim::Fixed(exports::VIT_SIZE);
    model.graph.inputs[0].shape = Some(vec![dynamic(), dynamic(), side.clone(), side]);
    let dynamic = cut(model.clone(), "vit", None).unwrap();
    assert_eq!(dynamic.layout, ortl_models::Layout::Nchw);
    assert_eq!(cut_tensor(&dynamic), cut_tensor(&declared));
    assert_eq!(dynamic.channels, declared.channels);
    let conv = model
        .graph
        .nodes
        .iter_mut()
        .find(|n| n.op == "Conv")
        .unwrap();
    conv.inputs[0] = "elsewhere".into();
    let refused = cut(model, "vit", None).unwrap_err();
    assert!(
        refused.contains("input 'input' has shape [?, ?, 32, 32]")
            && refused.contains("no convolution of 3 input channels"),
        "{refused}"
    );
}
