//! Graph snippets the gradient rules share. Opset 17 conventions: ReduceSum takes its axes
//! as an input, ReduceMean as an attribute.

use ortl_onnx::shapes::Shape;
use ortl_onnx::{GraphBuilder, Tensor};

pub fn scalar(b: &mut GraphBuilder, value: f32) -> String {
    b.constant(Tensor::scalar(value))
}

/// A one-element constant of shape `[1; rank]`, to broadcast over a rank-`rank` tensor (see
/// `optim` for why the rank matters to ONNX Runtime).
pub fn scalar_of_rank(b: &mut GraphBuilder, value: f32, rank: usize) -> String {
    b.constant(Tensor::f32(&vec![1; rank], vec![value]))
}

/// Sum over `axes`.
pub fn reduce_sum(b: &mut GraphBuilder, x: &str, axes: &[i64], keepdims: bool) -> String {
    let axes = b.constant(Tensor::i64s(axes));
    b.reduce_sum(x, Some(&axes), keepdims)
}

/// Sum of all elements, as a scalar.
pub fn sum_all(b: &mut GraphBuilder, x: &str) -> String {
    b.reduce_sum(x, None, false)
}

pub fn reshape(b: &mut GraphBuilder, x: &str, shape: &[i64]) -> String {
    let shape = b.constant(Tensor::i64s(shape));
    b.reshape(x, &shape)
}

/// Reshapes `x` to the run-time shape of `like`.
pub fn reshape_like(b: &mut GraphBuilder, x: &str, like: &str) -> String {
    let shape = b.shape(like);
    b.reshape(x, &shape)
}

/// Broadcasts `x` to the run-time shape of `like`.
pub fn expand_like(b: &mut GraphBuilder, x: &str, like: &str) -> String {
    let shape = b.shape(like);
    b.expand(x, &shape)
}

/// Reduces a gradient of broadcast shape `grad_shape` back to an operand of `input_shape`
/// (numpy broadcasting, aligned right): sum over the leading axes the operand lacks and
/// over the axes where it has size 1.
pub fn unbroadcast(
    b: &mut GraphBuilder,
    grad: &str,
    grad_shape: &Shape,
    input_shape: &Shape,
) -> String {
    if grad_shape == input_shape {
        return grad.to_string();
    }
    let lead = grad_shape.len() - input_shape.len();
    let axes: Vec<i64> = (0..grad_shape.len())
        .filter(|&i| i < lead || (input_shape[i - lead] == Some(1) && grad_shape[i] != Some(1)))
        .map(|i| i as i64)
        .collect();
    let summed = if axes.is_empty() {
        grad.to_string()
    } else {
        reduce_sum(b, grad, &axes, true)
    };
    if lead == 0 {
        return summed;
    }
    let target: Vec<i64> = input_shape.iter().map(|d| d.unwrap_or(-1)).collect();
    reshape(b, &summed, &target)
}
