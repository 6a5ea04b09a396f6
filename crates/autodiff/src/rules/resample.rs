//! Resampling that is linear in its input along the last two axes: Resize (nearest and
//! linear modes, https://onnx.ai/onnx/operators/onnx__Resize.html) and Pad in edge and
//! reflect modes. Each is y = A_h · x · A_wᵀ for constant matrices A (out × in) built here
//! from the operator's definition, so dx = A_hᵀ · g · A_w: two MatMuls that broadcast over
//! the leading axes. Coordinates follow ONNX Runtime, in float32.

use ortl_onnx::{Attr, Tensor};

use crate::AutodiffError;
use crate::grad::{Ctx, Grads};
use crate::rules::shape::first_only;

/// An `out × in` matrix, row-major.
struct Matrix {
    rows: usize,
    cols: usize,
    values: Vec<f32>,
}

impl Matrix {
    fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            values: vec![0.0; rows * cols],
        }
    }

    fn add(&mut self, row: usize, col: usize, value: f32) {
        self.values[row * self.cols + col] += value;
    }

    fn transposed(&self) -> Tensor {
        let mut t = vec![0.0; self.values.len()];
        for r in 0..self.rows {
            for c in 0..self.cols {
                t[c * self.rows + r] = self.values[r * self.cols + c];
            }
        }
        Tensor::f32(&[self.cols as i64, self.rows as i64], t)
    }

    fn tensor(&self) -> Tensor {
        Tensor::f32(&[self.rows as i64, self.cols as i64], self.values.clone())
    }
}

/// dx = A_hᵀ · g · A_w, for the matrices of the resampled axes among the last two.
fn apply(ctx: &mut Ctx, g: String, height: Option<Matrix>, width: Option<Matrix>) -> String {
    let mut dx = g;
    if let Some(h) = height {
        let ht = ctx.b.constant(h.transposed());
        dx = ctx.b.matmul(&ht, &dx);
    }
    if let Some(w) = width {
        let w = ctx.b.constant(w.tensor());
        dx = ctx.b.matmul(&dx, &w);
    }
    dx
}

fn string_attr<'a>(ctx: &'a Ctx, name: &str, default: &'a str) -> &'a str {
    match ctx.node.attr(name) {
        Some(Attr::String(s)) => s,
        _ => default,
    }
}

/// Which of the last two axes change; an error if any other does.
fn spatial_axes(ctx: &Ctx, input: &[i64], output: &[i64]) -> Result<[bool; 2], AutodiffError> {
    let rank = input.len();
    if rank < 2 {
        return Err(ctx.error("resampling of a tensor of rank below 2"));
    }
    if input[..rank - 2] != output[..rank - 2] {
        return Err(ctx
            .error("gradient of resampling outside the last two (spatial) axes is not supported"));
    }
    Ok([
        input[rank - 2] != output[rank - 2],
        input[rank - 1] != output[rank - 1],
    ])
}

pub fn resize(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let input = ctx.dims(ctx.input(0))?;
    let output = ctx.dims(ctx.output(0))?;
    let mode = string_attr(ctx, "mode", "nearest").to_string();
    let transform = string_attr(ctx, "coordinate_transformation_mode", "half_pixel").to_string();
    let nearest = string_attr(ctx, "nearest_mode", "round_prefer_floor").to_string();
    let scales: Option<Vec<f32>> = ctx
        .node
        .inputs
        .get(2)
        .and_then(|s| ctx.b.graph().initializers.get(s))
        .and_then(|t| t.as_f32())
        .filter(|s| !s.is_empty())
        .map(<[f32]>::to_vec);
    let rank = input.len();
    let [resize_h, resize_w] = spatial_axes(ctx, &input, &output)?;
    let matrix = |axis: usize| -> Result<Matrix, AutodiffError> {
        let (n, out) = (input[axis] as usize, output[axis] as usize);
        let scale = scales.as_ref().map_or(out as f32 / n as f32, |s| s[axis]);
        resize_matrix(n, out, scale, &mode, &transform, &nearest).map_err(|e| ctx.error(e))
    };
    let height = if resize_h {
        Some(matrix(rank - 2)?)
    } else {
        None
    };
    let width = if resize_w {
        Some(matrix(rank - 1)?)
    } else {
        None
    };
    let dx = apply(ctx, g, height, width);
    Ok(first_only(ctx, dx))
}

/// The matrix of a 1-D resize from `n` to `out` samples.
fn resize_matrix(
    n: usize,
    out: usize,
    scale: f32,
    mode: &str,
    transform: &str,
    nearest: &str,
) -> Result<Matrix, String> {
    let mut m = Matrix::zeros(out, n);
    let last = (n - 1) as f32;
    for o in 0..out {
        let x = o as f32;
        let source = match transform {
            "half_pixel" => (x + 0.5) / scale - 0.5,
            "pytorch_half_pixel" if out > 1 => (x + 0.5) / scale - 0.5,
            "pytorch_half_pixel" => 0.0,
            "align_corners" if out > 1 => x * last / (out - 1) as f32,
            "align_corners" => 0.0,
            "asymmetric" => x / scale,
            "tf_half_pixel_for_nearest" => (x + 0.5) / scale,
            other => {
                return Err(format!(
                    "coordinate_transformation_mode '{other}' has no gradient rule"
                ));
            }
        };
        match mode {
            "nearest" => {
                let index = match nearest {
                    "round_prefer_floor" if source == source.floor() + 0.5 => source.floor(),
                    "round_prefer_ceil" if source == source.floor() + 0.5 => source.ceil(),
                    "round_prefer_floor" | "round_prefer_ceil" => source.round(),
                    "floor" => source.floor(),
                    "ceil" => source.ceil(),
                    other => return Err(format!("nearest_mode '{other}' is not an ONNX mode")),
                };
                m.add(o, index.clamp(0.0, last) as usize, 1.0);
            }
            "linear" => {
                let source = source.clamp(0.0, last);
                let low = source.floor();
                let high = (low + 1.0).min(last);
                let weight = source - low;
                m.add(o, low as usize, 1.0 - weight);
                m.add(o, high as usize, weight);
            }
            other => {
                return Err(format!(
                    "Resize mode '{other}' has no gradient rule (nearest and linear have); freeze the layers up to it"
                ));
            }
        }
    }
    Ok(m)
}

/// Pad in edge or reflect mode along the last two axes (`pads` read by `shape::pad`).
pub fn pad(ctx: &mut Ctx, g: String, mode: &str, pads: &[i64]) -> Grads {
    let input = ctx.dims(ctx.input(0))?;
    let output = ctx.dims(ctx.output(0))?;
    let rank = input.len();
    let [pad_h, pad_w] = spatial_axes(ctx, &input, &output)?;
    let matrix = |axis: usize| -> Result<Matrix, AutodiffError> {
        let (n, before) = (input[axis], pads[axis]);
        if before < 0 || pads[rank + axis] < 0 {
            return Err(ctx.error("gradient of a cropping (negative) Pad"));
        }
        let mut m = Matrix::zeros(output[axis] as usize, n as usize);
        for o in 0..output[axis] {
            let i = o - before;
            let source = match mode {
                "edge" => i.clamp(0, n - 1),
                "reflect" if i < 0 => -i,
                "reflect" if i >= n => 2 * (n - 1) - i,
                "reflect" => i,
                other => {
                    return Err(
                        ctx.error(format!("gradient of Pad mode '{other}' is not supported"))
                    );
                }
            };
            if !(0..n).contains(&source) {
                return Err(ctx.error("a reflect Pad wider than its input"));
            }
            m.add(o as usize, source as usize, 1.0);
        }
        Ok(m)
    };
    let height = if pad_h { Some(matrix(rank - 2)?) } else { None };
    let width = if pad_w { Some(matrix(rank - 1)?) } else { None };
    let dx = apply(ctx, g, height, width);
    Ok(first_only(ctx, dx))
}

use super::Gradient::{self, Missing, Rule};

/// Every operator of the family (`ortl_onnx::ops::resample` lists them too) and its gradient.
pub(super) const GRADIENTS: &[(&str, Gradient)] =
    &[("Resize", Rule(resize)), ("Upsample", Missing)];
