//! Whole transformer blocks as the PyTorch exporters write them, every parameter's gradient
//! against central finite differences (see `common`), and every node of the differentiated
//! graph covered by ONNX Runtime's CUDA kernels. Sizes are small; the forms are the
//! exporters': a ViT encoder block (torch.onnx.export, opset 17), a ConvNeXt block and a
//! shifted Swin window block (torchvision's `shifted_window_attention`).

mod common;

use common::{Checked, Input, check, input, ranged};
use ortl_onnx::{GraphBuilder, Tensor};

/// A weight of a layer: small, so attention stays away from saturation.
fn weight(name: &'static str, dims: &[usize]) -> Input {
    ranged(name, dims, (-0.5, 0.5))
}

/// A LayerNorm scale (or layer scale) near 1.
fn scale(name: &'static str, dims: &[usize]) -> Input {
    ranged(name, dims, (0.5, 1.5))
}

fn constant_i64(b: &mut GraphBuilder, values: &[i64]) -> String {
    b.constant(Tensor::i64s(values))
}

fn reshape(b: &mut GraphBuilder, x: &str, shape: &[i64]) -> String {
    let shape = constant_i64(b, shape);
    b.reshape(x, &shape)
}

/// `x·W + bias`, as torch.onnx.export writes nn.Linear on a token tensor.
fn linear(b: &mut GraphBuilder, x: &str, w: &str, bias: &str) -> String {
    let product = b.matmul(x, w);
    b.add(&product, bias)
}

/// nn.GELU() in its exported Erf form: x·½(1 + erf(x/√2)) as Div, Erf, Add, Mul, Mul.
fn gelu(b: &mut GraphBuilder, x: &str) -> String {
    let root2 = b.constant(Tensor::scalar(std::f32::consts::SQRT_2));
    let scaled = b.div(x, &root2);
    let erf = b.erf(&scaled);
    let one = b.constant(Tensor::scalar(1.0));
    let shifted = b.add(&erf, &one);
    let product = b.mul(x, &shifted);
    let half = b.constant(Tensor::scalar(0.5));
    b.mul(&product, &half)
}

/// Token `index` of axis 0 (q, k or v of a stacked qkv).
fn pick(b: &mut GraphBuilder, x: &str, index: i64) -> String {
    let index = b.constant(Tensor::i64(&[], vec![index]));
    b.gather(x, &index, 0)
}

/// Softmax(q·kᵀ·scale + bias)·v over `[…, heads, tokens, d]`, with the products as MatMul
/// (torch.onnx.export's decomposition) or Einsum (exports of `torch.einsum` attention);
/// `bias` adds to the logits before the softmax.
fn attention(
    b: &mut GraphBuilder,
    [q, k, v]: [&str; 3],
    d: usize,
    einsum: bool,
    bias: impl FnOnce(&mut GraphBuilder, String) -> String,
) -> String {
    let logits = if einsum {
        b.einsum("bhid,bhjd->bhij", &[q, k])
    } else {
        let kt = b.transpose(k, &[0, 1, 3, 2]);
        b.matmul(q, &kt)
    };
    let factor = b.constant(Tensor::scalar(1.0 / (d as f32).sqrt()));
    let logits = b.mul(&logits, &factor);
    let logits = bias(b, logits);
    let p = b.softmax(&logits, -1);
    if einsum {
        b.einsum("bhij,bhjd->bhid", &[&p, v])
    } else {
        b.matmul(&p, v)
    }
}

/// Reports a block's errors and checks its differentiated graph runs on CUDA.
fn report(block: &str, checked: &Checked) {
    println!(
        "{block}: {} coordinates, max |analytic − numeric| {:.2e}, max relative error {:.2e}",
        checked.coordinates, checked.max_abs, checked.max_rel
    );
    let gaps = ortl_runtime::kernels::cuda().gaps(&checked.backward);
    assert!(
        gaps.is_empty(),
        "{block}: nodes without a CUDA kernel: {}",
        gaps.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    );
}

const TOKENS: usize = 5;
const WIDTH: usize = 8;
const HEADS: usize = 2;

/// A ViT encoder block: x + proj(attention(LN(x))), then + MLP(LN(·)) with GELU.
fn vit_block(einsum: bool) -> Checked {
    let (t, c, h) = (TOKENS, WIDTH, HEADS);
    let d = c / h;
    let inputs = vec![
        input("x", &[2, t, c]),
        scale("ln1_scale", &[c]),
        input("ln1_bias", &[c]),
        weight("qkv_w", &[c, 3 * c]),
        weight("qkv_b", &[3 * c]),
        weight("proj_w", &[c, c]),
        weight("proj_b", &[c]),
        scale("ln2_scale", &[c]),
        input("ln2_bias", &[c]),
        weight("fc1_w", &[c, 2 * c]),
        weight("fc1_b", &[2 * c]),
        weight("fc2_w", &[2 * c, c]),
        weight("fc2_b", &[c]),
    ];
    let case = if einsum { "vit_einsum" } else { "vit_matmul" };
    check(case, inputs, |b, n| {
        let x = &n[0];
        let normed = b.layer_norm(x, &n[1], Some(&n[2]), -1, 1e-6);
        let qkv = linear(b, &normed, &n[3], &n[4]);
        let qkv = reshape(b, &qkv, &[-1, t as i64, 3, h as i64, d as i64]);
        let qkv = b.transpose(&qkv, &[2, 0, 3, 1, 4]);
        let [q, k, v] = [0, 1, 2].map(|i| pick(b, &qkv, i));
        let out = attention(b, [&q, &k, &v], d, einsum, |_, logits| logits);
        let out = b.transpose(&out, &[0, 2, 1, 3]);
        let out = reshape(b, &out, &[-1, t as i64, c as i64]);
        let projected = linear(b, &out, &n[5], &n[6]);
        let x = b.add(x, &projected);
        let normed = b.layer_norm(&x, &n[7], Some(&n[8]), -1, 1e-6);
        let hidden = linear(b, &normed, &n[9], &n[10]);
        let hidden = gelu(b, &hidden);
        let mlp = linear(b, &hidden, &n[11], &n[12]);
        b.add(&x, &mlp)
    })
}

#[test]
fn vit_attention_block_as_torch_onnx_export_writes_it() {
    report("ViT block (MatMul attention)", &vit_block(false));
    report("ViT block (Einsum attention)", &vit_block(true));
}

/// A ConvNeXt block: x + γ·(MLP(LN(dwconv7×7(x)))) computed channels-last.
#[test]
fn convnext_block() {
    let c = 4;
    let inputs = vec![
        input("x", &[2, c, 5, 5]),
        weight("dw_w", &[c, 1, 7, 7]),
        weight("dw_b", &[c]),
        scale("ln_scale", &[c]),
        input("ln_bias", &[c]),
        weight("fc1_w", &[c, 4 * c]),
        weight("fc1_b", &[4 * c]),
        weight("fc2_w", &[4 * c, c]),
        weight("fc2_b", &[c]),
        scale("layer_scale", &[c]),
    ];
    let checked = check("convnext", inputs, |b, n| {
        let depthwise = ortl_onnx::builder::Conv {
            group: Some(c as i64),
            ..ortl_onnx::builder::Conv::square(7, 1, 3)
        };
        let y = b.conv(&n[0], &n[1], Some(&n[2]), &depthwise);
        let y = b.transpose(&y, &[0, 2, 3, 1]);
        let y = b.layer_norm(&y, &n[3], Some(&n[4]), -1, 1e-6);
        let y = linear(b, &y, &n[5], &n[6]);
        let y = gelu(b, &y);
        let y = linear(b, &y, &n[7], &n[8]);
        let y = b.mul(&y, &n[9]);
        let y = b.transpose(&y, &[0, 3, 1, 2]);
        b.add(&n[0], &y)
    });
    report("ConvNeXt block", &checked);
}

const SIDE: i64 = 4;
const WINDOW: i64 = 2;
const SHIFT: i64 = 1;

/// torch.roll(x, shift, axis) as exported: the last `shift` rows moved to the front, by
/// Slice and Concat (negative shifts move the first rows to the back).
fn roll(b: &mut GraphBuilder, x: &str, shift: i64, axis: i64) -> String {
    let cut = (SIDE - shift).rem_euclid(SIDE);
    let mut part = |start: i64, end: i64| {
        let (starts, ends, axes) = (
            constant_i64(b, &[start]),
            constant_i64(b, &[end]),
            constant_i64(b, &[axis]),
        );
        b.slice(x, &starts, &ends, Some(&axes), None)
    };
    let (tail, head) = (part(cut, SIDE), part(0, cut));
    b.concat(&[&tail, &head], axis)
}

/// `[B, H, W, C]` → `[B·windows, window², C]`, and back.
fn partition(b: &mut GraphBuilder, x: &str, c: i64) -> String {
    let per = SIDE / WINDOW;
    let y = reshape(b, x, &[-1, per, WINDOW, per, WINDOW, c]);
    let y = b.transpose(&y, &[0, 1, 3, 2, 4, 5]);
    reshape(b, &y, &[-1, WINDOW * WINDOW, c])
}

fn reverse(b: &mut GraphBuilder, x: &str, c: i64) -> String {
    let per = SIDE / WINDOW;
    let y = reshape(b, x, &[-1, per, per, WINDOW, WINDOW, c]);
    let y = b.transpose(&y, &[0, 1, 3, 2, 4, 5]);
    reshape(b, &y, &[-1, SIDE, SIDE, c])
}

/// Swin's relative position index: for tokens i, j of a window, the table row of their
/// offset (Δh + w − 1)·(2w − 1) + (Δw + w − 1).
fn relative_position_index() -> Vec<i64> {
    let tokens: Vec<(i64, i64)> = (0..WINDOW)
        .flat_map(|h| (0..WINDOW).map(move |w| (h, w)))
        .collect();
    let span = 2 * WINDOW - 1;
    tokens
        .iter()
        .flat_map(|&(hi, wi)| {
            tokens
                .iter()
                .map(move |&(hj, wj)| (hi - hj + WINDOW - 1) * span + (wi - wj + WINDOW - 1))
        })
        .collect()
}

/// The region each pixel of the shifted map came from (torchvision's `attn_mask` labels
/// before partitioning), partitioned into windows: `[windows, window²]`.
fn shift_regions() -> Vec<f32> {
    let band = |i: i64| {
        if i < SIDE - WINDOW {
            0
        } else if i < SIDE - SHIFT {
            1
        } else {
            2
        }
    };
    let per = SIDE / WINDOW;
    let mut regions = Vec::new();
    for wh in 0..per {
        for ww in 0..per {
            for h in 0..WINDOW {
                for w in 0..WINDOW {
                    let (row, col) = (wh * WINDOW + h, ww * WINDOW + w);
                    regions.push((band(row) * 3 + band(col)) as f32);
                }
            }
        }
    }
    regions
}

/// A shifted Swin window block: x + shift⁻¹(reverse(attention(partition(shift(LN(x)))))),
/// the logits biased by a table gathered at a constant index and by the shift mask, which
/// the graph computes from the regions as torchvision does (Sub, Equal, Not, Where).
#[test]
fn swin_shifted_window_block() {
    let c = 4;
    let (heads, d) = (2, 2);
    let n_tokens = (WINDOW * WINDOW) as usize;
    let windows = ((SIDE / WINDOW) * (SIDE / WINDOW)) as usize;
    let span = (2 * WINDOW - 1) as usize;
    let inputs = vec![
        input("x", &[1, SIDE as usize, SIDE as usize, c]),
        scale("ln_scale", &[c]),
        input("ln_bias", &[c]),
        weight("qkv_w", &[c, 3 * c]),
        weight("qkv_b", &[3 * c]),
        input("bias_table", &[span * span, heads]),
        weight("proj_w", &[c, c]),
        weight("proj_b", &[c]),
    ];
    let checked = check("swin", inputs, |b, n| {
        let c = c as i64;
        let y = b.layer_norm(&n[0], &n[1], Some(&n[2]), -1, 1e-5);
        let y = roll(b, &y, -SHIFT, 1);
        let y = roll(b, &y, -SHIFT, 2);
        let y = partition(b, &y, c);
        let qkv = linear(b, &y, &n[3], &n[4]);
        let qkv = reshape(b, &qkv, &[-1, n_tokens as i64, 3, heads as i64, d as i64]);
        let qkv = b.transpose(&qkv, &[2, 0, 3, 1, 4]);
        let [q, k, v] = [0, 1, 2].map(|i| pick(b, &qkv, i));
        let out = attention(b, [&q, &k, &v], d, false, |b, logits| {
            let index = b.constant(Tensor::i64(
                &[(n_tokens * n_tokens) as i64],
                relative_position_index(),
            ));
            let bias = b.gather(&n[5], &index, 0);
            let bias = reshape(b, &bias, &[n_tokens as i64, n_tokens as i64, heads as i64]);
            let bias = b.transpose(&bias, &[2, 0, 1]);
            let logits = b.add(&logits, &bias);
            // The shift mask: -100 between tokens of different regions, 0 within one.
            let regions = b.constant(Tensor::f32(
                &[windows as i64, n_tokens as i64],
                shift_regions(),
            ));
            let rows = reshape(b, &regions, &[windows as i64, 1, n_tokens as i64]);
            let cols = reshape(b, &regions, &[windows as i64, n_tokens as i64, 1]);
            let apart = b.sub(&rows, &cols);
            let zero = b.constant(Tensor::scalar(0.0));
            let same = b.equal(&apart, &zero);
            let different = b.not(&same);
            let far = b.constant(Tensor::scalar(-100.0));
            let mask = b.where_(&different, &far, &apart);
            let mask = b.where_(&same, &zero, &mask);
            let mask = reshape(
                b,
                &mask,
                &[1, windows as i64, 1, n_tokens as i64, n_tokens as i64],
            );
            let per_window = reshape(
                b,
                &logits,
                &[
                    -1,
                    windows as i64,
                    heads as i64,
                    n_tokens as i64,
                    n_tokens as i64,
                ],
            );
            let masked = b.add(&per_window, &mask);
            reshape(
                b,
                &masked,
                &[-1, heads as i64, n_tokens as i64, n_tokens as i64],
            )
        });
        let out = b.transpose(&out, &[0, 2, 1, 3]);
        let out = reshape(b, &out, &[-1, n_tokens as i64, c]);
        let out = linear(b, &out, &n[6], &n[7]);
        let out = reverse(b, &out, c);
        let out = roll(b, &out, SHIFT, 1);
        let out = roll(b, &out, SHIFT, 2);
        b.add(&n[0], &out)
    });
    report("Swin shifted window block", &checked);
}
