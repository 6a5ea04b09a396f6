//! Every gradient rule against central finite differences, through ONNX Runtime's CPU EP.
//!
//! Each case builds a small forward graph y = f(inputs), reduces it to the scalar
//! L = Σ y ⊙ R with a fixed random R (so every output element carries a distinct weight),
//! asks ortl for ∂L/∂input, and compares sampled coordinates with (L(x+ε) − L(x−ε)) / 2ε.
//! ORT has no float64 Conv, so everything runs in float32 with ε = 1e-2 and a tolerance of
//! 3e-3 + 3e-2·|g| (central differences' O(ε²) error plus float32 rounding of L).

mod common;

use common::{Input, check, fixed, input, positive, ranged, spread};
use ortl_autodiff::{batch_norm, gradients};
use ortl_onnx::builder::Conv;
use ortl_onnx::builder::{float, int, ints};
use ortl_onnx::{Attr, DataType, Dim, GraphBuilder, Tensor, shapes};

fn conv_attrs(k: i64, stride: i64, pad: i64, dilation: i64) -> Conv {
    Conv {
        dilations: Some(vec![dilation, dilation]),
        ..Conv::square(k, stride, pad)
    }
}

#[test]
fn conv_3x3_same() {
    check(
        "conv3",
        vec![input("x", &[2, 3, 6, 6]), input("w", &[4, 3, 3, 3])],
        |b, n| b.conv(&n[0], &n[1], None, &conv_attrs(3, 1, 1, 1)),
    );
}

#[test]
fn conv_strided_padded_odd_size_with_bias() {
    check(
        "conv_s2",
        vec![
            input("x", &[2, 3, 7, 7]),
            input("w", &[4, 3, 3, 3]),
            input("bias", &[4]),
        ],
        |b, n| b.conv(&n[0], &n[1], Some(&n[2]), &conv_attrs(3, 2, 1, 1)),
    );
}

#[test]
fn conv_stem_7x7_stride_2() {
    check(
        "conv7",
        vec![input("x", &[1, 3, 11, 11]), input("w", &[2, 3, 7, 7])],
        |b, n| b.conv(&n[0], &n[1], None, &conv_attrs(7, 2, 3, 1)),
    );
}

#[test]
fn conv_1x1_strided_and_dilated_3x3() {
    // Unstrided 1×1: dX is a Conv with Wᵀ rather than a ConvTranspose.
    check(
        "conv1x1_s1",
        vec![input("x", &[2, 4, 5, 5]), input("w", &[3, 4, 1, 1])],
        |b, n| b.conv(&n[0], &n[1], None, &conv_attrs(1, 1, 0, 1)),
    );
    check(
        "conv1x1",
        vec![input("x", &[2, 4, 6, 6]), input("w", &[3, 4, 1, 1])],
        |b, n| b.conv(&n[0], &n[1], None, &conv_attrs(1, 2, 0, 1)),
    );
    check(
        "conv_dil",
        vec![input("x", &[1, 2, 8, 8]), input("w", &[2, 2, 3, 3])],
        |b, n| b.conv(&n[0], &n[1], None, &conv_attrs(3, 1, 2, 2)),
    );
}

#[test]
fn grouped_and_depthwise_conv() {
    check(
        "conv_grouped",
        vec![
            input("x", &[2, 4, 6, 6]),
            input("w", &[6, 2, 3, 3]),
            input("bias", &[6]),
        ],
        |b, n| {
            let attrs = Conv {
                group: Some(2),
                ..conv_attrs(3, 2, 1, 1)
            };
            b.conv(&n[0], &n[1], Some(&n[2]), &attrs)
        },
    );
    check(
        "conv_depthwise",
        vec![input("x", &[2, 3, 7, 7]), input("w", &[3, 1, 3, 3])],
        |b, n| {
            let attrs = Conv {
                group: Some(3),
                ..conv_attrs(3, 1, 1, 1)
            };
            b.conv(&n[0], &n[1], None, &attrs)
        },
    );
}

#[test]
fn conv_same_upper_auto_pad() {
    check(
        "conv_same",
        vec![input("x", &[1, 2, 6, 6]), input("w", &[2, 2, 3, 3])],
        |b, n| {
            b.op(
                "Conv",
                &[&n[0], &n[1]],
                vec![
                    ("kernel_shape", ints(&[3, 3])),
                    ("strides", ints(&[2, 2])),
                    ("auto_pad", Attr::String("SAME_UPPER".into())),
                ],
            )
        },
    );
}

#[test]
fn max_pool_overlapping_windows() {
    check("maxpool", vec![spread("x", &[2, 3, 7, 7])], |b, n| {
        b.op_n(
            "MaxPool",
            &[&n[0]],
            2,
            vec![
                ("kernel_shape", ints(&[3, 3])),
                ("strides", ints(&[2, 2])),
                ("pads", ints(&[1, 1, 1, 1])),
            ],
        )
        .remove(0)
    });
}

#[test]
fn average_pool_and_global_average_pool() {
    check("avgpool", vec![input("x", &[2, 3, 6, 6])], |b, n| {
        b.op(
            "AveragePool",
            &[&n[0]],
            vec![("kernel_shape", ints(&[2, 2])), ("strides", ints(&[2, 2]))],
        )
    });
    check(
        "avgpool_overlap",
        vec![input("x", &[1, 2, 5, 5])],
        |b, n| {
            b.op(
                "AveragePool",
                &[&n[0]],
                vec![("kernel_shape", ints(&[3, 3])), ("strides", ints(&[1, 1]))],
            )
        },
    );
    check("gap", vec![input("x", &[2, 3, 4, 5])], |b, n| {
        b.global_average_pool(&n[0])
    });
    // Padded, counting the padding (PyTorch's default, Inception-v3) or not (Keras, timm's
    // Inception-ResNet-v2), with a stride that leaves the last padded row partly used.
    for include in [1, 0] {
        check(
            &format!("avgpool_pad_include_{include}"),
            vec![input("x", &[1, 2, 6, 5])],
            |b, n| {
                b.op(
                    "AveragePool",
                    &[&n[0]],
                    vec![
                        ("kernel_shape", ints(&[3, 3])),
                        ("strides", ints(&[2, 1])),
                        ("pads", ints(&[1, 1, 1, 1])),
                        ("count_include_pad", int(include)),
                    ],
                )
            },
        );
    }
    // As exporters write windows out: torch.export spells the default auto_pad NOTSET;
    // tf2onnx may keep Keras' "same" as SAME_UPPER (5 → 3 with stride 2: one padded cell
    // at the end, not counted).
    check("avgpool_notset", vec![input("x", &[1, 2, 6, 6])], |b, n| {
        b.op(
            "AveragePool",
            &[&n[0]],
            vec![
                ("kernel_shape", ints(&[2, 2])),
                ("strides", ints(&[2, 2])),
                ("pads", ints(&[0, 0, 0, 0])),
                ("auto_pad", Attr::String("NOTSET".into())),
                ("ceil_mode", int(0)),
            ],
        )
    });
    // Ceil mode (timm's ResNet-D: AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)
    // on odd maps): the last window half outside; then padded, counting the padding or not.
    // (Not a last window starting in the end padding: ONNX's shape inference keeps it
    // where ONNX Runtime's kernel drops it.)
    for (case, x, kernel, pads, include) in [
        ("avgpool_ceil", [1, 2, 7, 5], [2, 2], [0, 0, 0, 0], 0),
        (
            "avgpool_ceil_pad_include",
            [1, 2, 8, 7],
            [3, 3],
            [1, 1, 1, 1],
            1,
        ),
        (
            "avgpool_ceil_pad_exclude",
            [1, 2, 8, 7],
            [3, 3],
            [1, 1, 1, 1],
            0,
        ),
    ] {
        check(case, vec![input("x", &x)], |b, n| {
            b.op(
                "AveragePool",
                &[&n[0]],
                vec![
                    ("kernel_shape", ints(&kernel)),
                    ("strides", ints(&[2, 2])),
                    ("pads", ints(&pads)),
                    ("ceil_mode", int(1)),
                    ("count_include_pad", int(include)),
                ],
            )
        });
    }
    check(
        "avgpool_same_upper",
        vec![input("x", &[1, 2, 5, 5])],
        |b, n| {
            b.op(
                "AveragePool",
                &[&n[0]],
                vec![
                    ("kernel_shape", ints(&[2, 2])),
                    ("strides", ints(&[2, 2])),
                    ("auto_pad", Attr::String("SAME_UPPER".into())),
                    ("count_include_pad", int(0)),
                ],
            )
        },
    );
}

#[test]
fn batch_norm_inference_mode_with_trainable_scale_and_shift() {
    check(
        "bn",
        vec![
            input("x", &[3, 4, 3, 3]),
            input("gamma", &[4]),
            input("beta", &[4]),
            fixed("mean", &[4]),
            fixed("var", &[4]),
        ],
        |b, n| b.batch_norm([&n[0], &n[1], &n[2], &n[3], &n[4]], 1e-3),
    );
}

#[test]
fn batch_norm_on_batch_statistics() {
    // The statistics depend on x: its gradient has the two extra terms of the closed form.
    for (case, dims) in [
        ("bn_train", &[3, 4, 3, 3][..]),
        ("bn_train_1d", &[5, 6][..]),
    ] {
        check(
            case,
            vec![
                input("x", dims),
                input("gamma", &dims[1..2]),
                input("beta", &dims[1..2]),
            ],
            |b, n| {
                let outputs = batch_norm::Outputs::named(case, &format!("{case}_y"));
                let node =
                    batch_norm::node(case, [&n[0], &n[1], &n[2]], dims.len(), 1e-3, &outputs);
                b.graph_mut().nodes.push(node);
                outputs.y
            },
        );
    }
}

#[test]
fn activations() {
    for op in ["Relu", "Sigmoid", "Tanh", "Exp", "Abs", "Neg"] {
        check(op, vec![input("x", &[3, 5])], |b, n| {
            b.op(op, &[&n[0]], vec![])
        });
    }
    for op in ["Log", "Sqrt"] {
        check(op, vec![positive("x", &[3, 5])], |b, n| {
            b.op(op, &[&n[0]], vec![])
        });
    }
    check("clip", vec![input("x", &[4, 5])], |b, n| {
        let (lo, hi) = (
            b.constant(Tensor::scalar(-0.5)),
            b.constant(Tensor::scalar(0.6)),
        );
        b.clip(&n[0], Some(&lo), Some(&hi))
    });
    check("softmax", vec![input("x", &[3, 4])], |b, n| {
        b.softmax(&n[0], -1)
    });
    check("log_softmax", vec![input("x", &[3, 4])], |b, n| {
        b.log_softmax(&n[0], 1)
    });
}

#[test]
fn broadcasting_arithmetic() {
    for op in ["Add", "Sub", "Mul"] {
        check(
            op,
            vec![input("a", &[2, 3, 4]), input("b", &[3, 1])],
            |b, n| b.op(op, &[&n[0], &n[1]], vec![]),
        );
    }
    check(
        "div",
        vec![input("a", &[2, 3]), positive("b", &[3])],
        |b, n| b.div(&n[0], &n[1]),
    );
    check(
        "sum3",
        vec![
            input("a", &[2, 3]),
            input("b", &[2, 3]),
            input("c", &[1, 3]),
        ],
        |b, n| b.sum(&[&n[0], &n[1], &n[2]]),
    );
}

#[test]
fn gemm_every_transposition_and_matmul() {
    for (ta, tb) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let a = if ta == 1 { [4, 3] } else { [3, 4] };
        let w = if tb == 1 { [5, 4] } else { [4, 5] };
        check(
            &format!("gemm{ta}{tb}"),
            vec![input("a", &a), input("w", &w), input("c", &[5])],
            move |b, n| {
                b.op(
                    "Gemm",
                    &[&n[0], &n[1], &n[2]],
                    vec![
                        ("transA", int(ta)),
                        ("transB", int(tb)),
                        ("alpha", float(0.7)),
                        ("beta", float(1.3)),
                    ],
                )
            },
        );
    }
    check(
        "matmul3d",
        vec![input("a", &[2, 3, 4]), input("w", &[4, 5])],
        |b, n| b.matmul(&n[0], &n[1]),
    );
    // Both operands batched, as attention multiplies queries by keys: the same batch, one
    // broadcast along a leading axis, and a rank-2 A against a batched B.
    for (case, a, b) in [
        ("matmul_batched", &[2, 3, 4, 5][..], &[2, 3, 5, 2][..]),
        ("matmul_broadcast_b", &[2, 3, 4, 5], &[3, 5, 2]),
        ("matmul_broadcast_1", &[2, 1, 4, 5], &[2, 3, 5, 2]),
        ("matmul_rank2_a", &[4, 5], &[3, 5, 2]),
    ] {
        check(case, vec![input("a", a), input("b", b)], |g, n| {
            g.matmul(&n[0], &n[1])
        });
    }
}

#[test]
fn shape_operators() {
    check("flatten", vec![input("x", &[2, 3, 2, 2])], |b, n| {
        b.flatten(&n[0], 1)
    });
    check("transpose", vec![input("x", &[2, 3, 4])], |b, n| {
        b.transpose(&n[0], &[2, 0, 1])
    });
    check("reshape", vec![input("x", &[2, 6])], |b, n| {
        let s = b.constant(Tensor::i64s(&[3, 4]));
        b.reshape(&n[0], &s)
    });
    check(
        "concat",
        vec![input("a", &[2, 3]), input("b", &[2, 2])],
        |b, n| b.concat(&[&n[0], &n[1]], 1),
    );
    check("pad", vec![input("x", &[1, 2, 3, 3])], |b, n| {
        let p = b.constant(Tensor::i64s(&[0, 0, 1, 2, 0, 0, 2, 1]));
        b.pad(&n[0], &p)
    });
    check("reduce_mean", vec![input("x", &[2, 3, 4])], |b, n| {
        b.reduce_mean(&n[0], &[0, 2], false)
    });
    check("reduce_sum", vec![input("x", &[2, 3, 4])], |b, n| {
        let axes = b.constant(Tensor::i64s(&[1]));
        b.reduce_sum(&n[0], Some(&axes), true)
    });
}

/// CumSum (ViT/DINOv2 position ids, Swin masks) along each axis, every exclusive/reverse.
#[test]
fn cumsum_every_direction() {
    for (axis, exclusive, reverse) in [(1, 0, 0), (-1, 1, 0), (2, 0, 1), (0, 1, 1)] {
        let case = format!("cumsum axis {axis} exclusive {exclusive} reverse {reverse}");
        check(&case, vec![input("x", &[2, 3, 4])], |b, n| {
            let axis = b.constant(Tensor::i64(&[], vec![axis]));
            b.op(
                "CumSum",
                &[&n[0], &axis],
                vec![("exclusive", int(exclusive)), ("reverse", int(reverse))],
            )
        });
    }
}

#[test]
fn frozen_inputs_get_no_backward_ops() {
    let mut b = GraphBuilder::new("frozen");
    let x = b.input(
        "x",
        DataType::Float,
        vec![Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(4), Dim::Fixed(4)],
    );
    let w1 = b.param("w1", Tensor::f32(&[2, 2, 3, 3], vec![0.1; 36]));
    let w2 = b.param("w2", Tensor::f32(&[2, 2, 1, 1], vec![0.1; 4]));
    let h = b.conv(&x, &w1, None, &conv_attrs(3, 1, 1, 1));
    let y = b.conv(&h, &w2, None, &conv_attrs(1, 1, 0, 1));
    let loss = b.reduce_sum(&y, None, false);
    let shapes = shapes::infer(b.graph()).unwrap();
    let before = b.graph().nodes.len();
    gradients(&mut b, &loss, &["w2".to_string()], &shapes).unwrap();
    let added: Vec<&str> = b.graph().nodes[before..]
        .iter()
        .map(|n| n.op.as_str())
        .collect();
    // Only the last layer's dW: no ConvTranspose (dX) anywhere, one weight GEMM.
    assert!(!added.contains(&"ConvTranspose"), "{added:?}");
    assert_eq!(
        added.iter().filter(|&&op| op == "Gemm").count(),
        1,
        "{added:?}"
    );
}

/// Values across the kinks of the hard activations (±2.5 for hard-sigmoid, ±3 for
/// hard-swish).
fn wide(name: &'static str, dims: &[usize]) -> Input {
    Input {
        name,
        dims: dims.to_vec(),
        grad: true,
        range: (-5.0, 5.0),
    }
}

#[test]
fn exporters_activations() {
    check("hard_sigmoid", vec![wide("x", &[4, 6])], |b, n| {
        b.hard_sigmoid(&n[0], 0.25, 0.4)
    });
    check("hard_swish", vec![wide("x", &[4, 6])], |b, n| {
        b.hard_swish(&n[0])
    });
    check("leaky_relu", vec![input("x", &[4, 5])], |b, n| {
        b.leaky_relu(&n[0], 0.1)
    });
    check("elu", vec![input("x", &[4, 5])], |b, n| b.elu(&n[0], 0.7));
    // A float-to-float Cast (exporters leave them in) passes the gradient through.
    check("cast", vec![input("x", &[3, 4])], |b, n| {
        let cast = b.cast(&n[0], DataType::Float);
        b.mul(&cast, &n[0])
    });
    for op in ["Selu", "Erf", "Softplus"] {
        check(op, vec![input("x", &[3, 5])], |b, n| {
            b.op(op, &[&n[0]], vec![])
        });
    }
    // A per-channel slope that trains, as in PReLU layers.
    check(
        "prelu",
        vec![input("x", &[2, 3, 2, 2]), input("slope", &[3, 1, 1])],
        |b, n| b.prelu(&n[0], &n[1]),
    );
    check(
        "pow",
        vec![positive("a", &[2, 3]), positive("b", &[3])],
        |b, n| b.pow(&n[0], &n[1]),
    );
    check("pow_constant", vec![positive("a", &[2, 3])], |b, n| {
        let exponent = b.constant(Tensor::scalar(2.5));
        b.pow(&n[0], &exponent)
    });
    // A squeeze-and-excitation gate: x · hard-sigmoid(W · mean(x)).
    check(
        "squeeze_excitation",
        vec![input("x", &[2, 4, 3, 3]), input("w", &[4, 4, 1, 1])],
        |b, n| {
            let pooled = b.global_average_pool(&n[0]);
            let gate = b.conv(&pooled, &n[1], None, &Conv::default());
            let gate = b.op("HardSigmoid", &[&gate], vec![]);
            b.mul(&n[0], &gate)
        },
    );
}

#[test]
fn layer_normalization() {
    check(
        "layer_norm",
        vec![
            input("x", &[2, 3, 4]),
            input("scale", &[4]),
            input("bias", &[4]),
        ],
        |b, n| b.layer_norm(&n[0], &n[1], Some(&n[2]), -1, 1e-3),
    );
    check(
        "layer_norm_two_axes",
        vec![input("x", &[2, 3, 4]), input("scale", &[3, 4])],
        |b, n| b.layer_norm(&n[0], &n[1], None, 1, 1e-3),
    );
    // Channels-last over the last axis without bias (timm's fc_norm off), and over two axes
    // of a rank-4 tensor with a bias.
    check(
        "layer_norm_no_bias",
        vec![input("x", &[2, 3, 3, 4]), input("scale", &[4])],
        |b, n| b.layer_norm(&n[0], &n[1], None, -1, 1e-5),
    );
    check(
        "layer_norm_axis_2_bias",
        vec![
            input("x", &[2, 3, 3, 4]),
            input("scale", &[3, 4]),
            input("bias", &[3, 4]),
        ],
        |b, n| b.layer_norm(&n[0], &n[1], Some(&n[2]), 2, 1e-5),
    );
}

#[test]
fn resize_every_mode_exporters_use() {
    let string = |s: &str| Attr::String(s.into());
    // (case, input size, output size, mode, coordinate transformation, nearest mode)
    let cases = [
        ("nearest_x2", 3, 6, "nearest", "asymmetric", "floor"),
        (
            "nearest_half_pixel",
            3,
            7,
            "nearest",
            "half_pixel",
            "round_prefer_floor",
        ),
        (
            "nearest_down",
            7,
            3,
            "nearest",
            "half_pixel",
            "round_prefer_ceil",
        ),
        (
            "linear_x2",
            3,
            6,
            "linear",
            "half_pixel",
            "round_prefer_floor",
        ),
        (
            "linear_align",
            4,
            7,
            "linear",
            "align_corners",
            "round_prefer_floor",
        ),
        (
            "linear_pytorch_down",
            7,
            3,
            "linear",
            "pytorch_half_pixel",
            "round_prefer_floor",
        ),
        (
            "linear_asymmetric",
            5,
            8,
            "linear",
            "asymmetric",
            "round_prefer_floor",
        ),
    ];
    for (case, from, to, mode, transform, nearest) in cases {
        check(
            case,
            vec![input("x", &[1, 2, from, from + 1])],
            move |b, n| {
                let sizes = b.constant(Tensor::i64s(&[1, 2, to as i64, to as i64 + 1]));
                b.op(
                    "Resize",
                    &[&n[0], "", "", &sizes],
                    vec![
                        ("mode", string(mode)),
                        ("coordinate_transformation_mode", string(transform)),
                        ("nearest_mode", string(nearest)),
                    ],
                )
            },
        );
    }
    check(
        "resize_scales",
        vec![input("x", &[1, 2, 3, 4])],
        move |b, n| {
            let scales = b.constant(Tensor::f32(&[4], vec![1.0, 1.0, 2.0, 1.5]));
            b.op(
                "Resize",
                &[&n[0], "", &scales],
                vec![("mode", string("linear"))],
            )
        },
    );
}

#[test]
fn pad_modes_slice_split_gather_expand() {
    for mode in ["reflect", "edge"] {
        check(mode, vec![input("x", &[1, 2, 4, 5])], move |b, n| {
            let p = b.constant(Tensor::i64s(&[0, 0, 2, 1, 0, 0, 1, 3]));
            b.op(
                "Pad",
                &[&n[0], &p],
                vec![("mode", Attr::String(mode.into()))],
            )
        });
    }
    check("slice", vec![input("x", &[2, 3, 6, 5])], |b, n| {
        let starts = b.constant(Tensor::i64s(&[1, -4]));
        let ends = b.constant(Tensor::i64s(&[3, 100]));
        let axes = b.constant(Tensor::i64s(&[1, 2]));
        b.slice(&n[0], &starts, &ends, Some(&axes), None)
    });
    check(
        "split_one_part_used",
        vec![input("x", &[2, 6, 3])],
        |b, n| {
            let sizes = b.constant(Tensor::i64s(&[2, 4]));
            let parts = b.split(&n[0], Some(&sizes), 1, 2);
            b.mul(&parts[1], &parts[1])
        },
    );
    check("slice_strided", vec![input("x", &[2, 7, 6, 3])], |b, n| {
        // Swin's patch merging, `x[:, 0::2, 1::2, :]` (7 rows: the last step overshoots),
        // times a sum over `x[:, :, 1:6:3, :]`.
        let starts = b.constant(Tensor::i64s(&[0, 1]));
        let ends = b.constant(Tensor::i64s(&[i64::MAX, i64::MAX]));
        let axes = b.constant(Tensor::i64s(&[1, 2]));
        let steps = b.constant(Tensor::i64s(&[2, 2]));
        let merged = b.slice(&n[0], &starts, &ends, Some(&axes), Some(&steps));
        let (start, end, axis, step) = (
            b.constant(Tensor::i64s(&[1])),
            b.constant(Tensor::i64s(&[6])),
            b.constant(Tensor::i64s(&[2])),
            b.constant(Tensor::i64s(&[3])),
        );
        let thirds = b.slice(&n[0], &start, &end, Some(&axis), Some(&step));
        let sum_axes = b.constant(Tensor::i64s(&[1, 2]));
        let thirds = b.reduce_sum(&thirds, Some(&sum_axes), true);
        b.mul(&merged, &thirds)
    });
    check("split_both", vec![input("x", &[2, 6])], |b, n| {
        let parts = b.split(&n[0], None, -1, 2);
        b.mul(&parts[0], &parts[1])
    });
    check("gather_scalar", vec![input("x", &[2, 5, 3])], |b, n| {
        let k = b.constant(Tensor::i64(&[], vec![-2]));
        b.gather(&n[0], &k, 1)
    });
    check("gather_list", vec![input("x", &[2, 5, 3])], |b, n| {
        let k = b.constant(Tensor::i64s(&[4, 0, 4]));
        b.gather(&n[0], &k, 1)
    });
    check("expand", vec![input("x", &[3, 1])], |b, n| {
        let s = b.constant(Tensor::i64s(&[2, 3, 4]));
        b.expand(&n[0], &s)
    });
}

/// Convolutions over a grid of kernels, strides, pads and input sizes, including sizes
/// whose last window leaves a remainder (the dX ConvTranspose's output_padding).
#[test]
fn conv_grid_of_sizes_strides_pads_and_remainders() {
    let mut cases = 0;
    for k in [1i64, 2, 3, 5] {
        for stride in [1i64, 2, 3] {
            for pad in [0i64, 1, 2] {
                for size in [5usize, 6, 8] {
                    if pad >= k || (size as i64 + 2 * pad) < k {
                        continue;
                    }
                    cases += 1;
                    check(
                        &format!("conv_k{k}_s{stride}_p{pad}_n{size}"),
                        vec![
                            input("x", &[1, 2, size, size + 1]),
                            input("w", &[2, 2, k as usize, k as usize]),
                        ],
                        move |b, n| {
                            let uneven = Conv {
                                pads: Some(vec![pad, 0, pad, pad]),
                                ..Conv::square(k, stride, pad)
                            };
                            b.conv(&n[0], &n[1], None, &uneven)
                        },
                    );
                }
            }
        }
    }
    assert!(cases > 50, "{cases} cases");
}

/// Where passes the gradient to either branch by a fixed condition; a branch may be a
/// broadcast scalar (`masked_fill`) or a smaller tensor.
#[test]
fn where_both_branches() {
    check(
        "where",
        vec![input("a", &[2, 3, 4]), input("b", &[3, 1])],
        |b, n| {
            let mask = b.constant(Tensor::f32(
                &[3, 4],
                (0..12).map(|i| (i % 3) as f32).collect(),
            ));
            let zero = b.constant(Tensor::scalar(0.0));
            let condition = b.equal(&mask, &zero);
            b.where_(&condition, &n[0], &n[1])
        },
    );
    // Far from the fill's edge at 0, so a step never crosses it.
    check("masked_fill", vec![spread("x", &[2, 4])], |b, n| {
        let zero = b.constant(Tensor::scalar(0.0));
        let positive = b.greater(&n[0], &zero);
        let keep = b.not(&positive);
        let fill = b.constant(Tensor::scalar(-100.0));
        let filled = b.where_(&keep, &fill, &n[0]);
        b.mul(&filled, &n[0])
    });
}

/// Max and Min, the gradient to the operand that gives the output.
#[test]
fn max_and_min() {
    for op in ["Max", "Min"] {
        check(
            op,
            vec![
                spread("a", &[3, 4]),
                spread("b", &[4]),
                spread("c", &[3, 1]),
            ],
            |b, n| b.op(op, &[&n[0], &n[1], &n[2]], vec![]),
        );
    }
}

/// Einsum's two-operand forms as exporters write attention.
#[test]
fn einsum_attention_forms() {
    for (equation, a, b) in [
        ("bhid,bhjd->bhij", &[2, 2, 3, 4][..], &[2, 2, 5, 4][..]),
        ("bhij,bhjd->bhid", &[2, 2, 3, 5], &[2, 2, 5, 4]),
        ("bid,bjd->bij", &[2, 3, 4], &[2, 5, 4]),
        ("b i d, b j d -> b j i", &[2, 3, 4], &[2, 5, 4]),
        ("ij,jk", &[3, 4], &[4, 2]),
    ] {
        check(equation, vec![input("a", a), input("b", b)], |g, n| {
            g.einsum(equation, &[&n[0], &n[1]])
        });
    }
}

/// Forms whose gradient is not an Einsum are refused, naming the equation.
#[test]
fn einsum_forms_without_a_gradient_are_refused() {
    for (equation, shapes) in [
        ("ij->ji", vec![vec![2, 3]]),
        ("ij,jk,kl->il", vec![vec![2, 3], vec![3, 4], vec![4, 2]]),
        ("ii,ij->ij", vec![vec![3, 3], vec![3, 2]]),
        ("ij,kj->k", vec![vec![2, 3], vec![4, 3]]),
    ] {
        let mut b = GraphBuilder::new("refused");
        let names: Vec<String> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                b.input(
                    &format!("x{i}"),
                    DataType::Float,
                    s.iter().map(|&d| Dim::Fixed(d)).collect(),
                )
            })
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let y = b.einsum(equation, &refs);
        let loss = b.reduce_sum(&y, None, false);
        let shapes = ortl_autodiff::rules::registry().infer(b.graph()).unwrap();
        let err = gradients(&mut b, &loss, &names, &shapes)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("'{equation}'")), "{err}");
    }
}

/// Softmax and LogSoftmax over an axis other than the last, as attention over keys or a
/// channel softmax writes them; an opset-11 Softmax written out in its flattened form.
#[test]
fn softmax_over_any_axis() {
    for axis in [0, 1, -2] {
        check(
            &format!("softmax axis {axis}"),
            vec![input("x", &[2, 3, 4])],
            |b, n| b.softmax(&n[0], axis),
        );
        check(
            &format!("log_softmax axis {axis}"),
            vec![input("x", &[2, 3, 4])],
            |b, n| b.log_softmax(&n[0], axis),
        );
    }
    check("softmax opset 11", vec![input("x", &[2, 3, 4])], |b, n| {
        let y = b.op("Softmax", &[&n[0]], vec![("axis", int(1))]);
        ortl_onnx::opset::convert(b.graph_mut(), 11).unwrap();
        y
    });
}

/// Gelu from opset 20, exact and tanh-approximated, as import writes it for opset 17.
#[test]
fn gelu_both_approximations() {
    for approximate in ["none", "tanh"] {
        check(
            &format!("gelu {approximate}"),
            vec![ranged("x", &[3, 5], (-3.0, 3.0))],
            |b, n| {
                let y = b.op(
                    "Gelu",
                    &[&n[0]],
                    vec![("approximate", Attr::String(approximate.into()))],
                );
                ortl_onnx::opset::convert(b.graph_mut(), 20).unwrap();
                y
            },
        );
    }
}
