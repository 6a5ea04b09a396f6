//! Typed constructors for the operators ortl emits (opset 17): a misspelled operator or
//! attribute fails to compile. Each method is a thin wrapper over [`GraphBuilder::op`] that
//! emits exactly the node the string form would: same operator, input order, attributes and
//! generated name. Attributes that are `None` in an attribute struct are left out of the
//! node (ONNX's default applies), so a graph states only what its builder chose.
//!
//! The string form [`GraphBuilder::op`] stays for nodes copied through from an imported
//! graph (their operator is data), for exporters' forms of other opsets that tests imitate,
//! and for tests that deliberately build arbitrary operators.

use super::{GraphBuilder, float, int, ints};
use crate::ir::{Attr, DataType, Tensor};

/// Conv's attributes (https://onnx.ai/onnx/operators/onnx__Conv.html).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conv {
    pub kernel_shape: Option<Vec<i64>>,
    pub strides: Option<Vec<i64>>,
    /// `[top, left, bottom, right]` for 2-D.
    pub pads: Option<Vec<i64>>,
    pub dilations: Option<Vec<i64>>,
    pub group: Option<i64>,
    pub auto_pad: Option<&'static str>,
}

impl Conv {
    /// A `k×k` kernel with the same stride and padding on every side.
    pub fn square(k: i64, stride: i64, pad: i64) -> Self {
        Self {
            kernel_shape: Some(vec![k, k]),
            strides: Some(vec![stride, stride]),
            pads: Some(vec![pad; 4]),
            ..Self::default()
        }
    }

    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        let mut attrs = Vec::new();
        let lists = [
            ("kernel_shape", &self.kernel_shape),
            ("strides", &self.strides),
            ("pads", &self.pads),
            ("dilations", &self.dilations),
        ];
        for (name, values) in lists {
            if let Some(values) = values {
                attrs.push((name, ints(values)));
            }
        }
        if let Some(group) = self.group {
            attrs.push(("group", int(group)));
        }
        if let Some(auto_pad) = self.auto_pad {
            attrs.push(("auto_pad", Attr::String(auto_pad.into())));
        }
        attrs
    }
}

/// MaxPool's and AveragePool's attributes
/// (https://onnx.ai/onnx/operators/onnx__AveragePool.html).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pool {
    pub kernel_shape: Vec<i64>,
    pub strides: Option<Vec<i64>>,
    pub pads: Option<Vec<i64>>,
    pub auto_pad: Option<&'static str>,
    pub ceil_mode: Option<bool>,
    /// AveragePool only.
    pub count_include_pad: Option<bool>,
}

impl Pool {
    /// A `k×k` window moving by `stride`, unpadded.
    pub fn square(k: i64, stride: i64) -> Self {
        Self {
            kernel_shape: vec![k, k],
            strides: Some(vec![stride, stride]),
            ..Self::default()
        }
    }

    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        let mut attrs = vec![("kernel_shape", ints(&self.kernel_shape))];
        if let Some(strides) = &self.strides {
            attrs.push(("strides", ints(strides)));
        }
        if let Some(pads) = &self.pads {
            attrs.push(("pads", ints(pads)));
        }
        if let Some(auto_pad) = self.auto_pad {
            attrs.push(("auto_pad", Attr::String(auto_pad.into())));
        }
        if let Some(ceil) = self.ceil_mode {
            attrs.push(("ceil_mode", int(i64::from(ceil))));
        }
        if let Some(include) = self.count_include_pad {
            attrs.push(("count_include_pad", int(i64::from(include))));
        }
        attrs
    }
}

/// Gemm's attributes (https://onnx.ai/onnx/operators/onnx__Gemm.html):
/// Y = alpha·A'·B' + beta·C.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Gemm {
    pub trans_a: Option<bool>,
    pub trans_b: Option<bool>,
    pub alpha: Option<f32>,
    pub beta: Option<f32>,
}

impl Gemm {
    /// A dense layer with its weight stored `[out, in]`, as PyTorch does.
    pub const B_TRANSPOSED: Gemm = Gemm {
        trans_a: None,
        trans_b: Some(true),
        alpha: None,
        beta: None,
    };
    pub const A_TRANSPOSED: Gemm = Gemm {
        trans_a: Some(true),
        trans_b: None,
        alpha: None,
        beta: None,
    };

    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        let mut attrs = Vec::new();
        if let Some(t) = self.trans_a {
            attrs.push(("transA", int(i64::from(t))));
        }
        if let Some(t) = self.trans_b {
            attrs.push(("transB", int(i64::from(t))));
        }
        if let Some(alpha) = self.alpha {
            attrs.push(("alpha", float(alpha)));
        }
        if let Some(beta) = self.beta {
            attrs.push(("beta", float(beta)));
        }
        attrs
    }
}

/// Inputs that are present, followed by optional ones: an absent optional input before a
/// present one is written as the empty name, as ONNX requires.
fn with_optional<'a>(required: &[&'a str], optional: &[Option<&'a str>]) -> Vec<&'a str> {
    let last = optional
        .iter()
        .rposition(Option::is_some)
        .map_or(0, |i| i + 1);
    let mut inputs = required.to_vec();
    inputs.extend(optional[..last].iter().map(|o| o.unwrap_or("")));
    inputs
}

macro_rules! no_attributes {
    ($($(#[$doc:meta])* $name:ident($($input:ident),+) => $op:literal;)+) => {
        impl GraphBuilder {
            $(
                $(#[$doc])*
                pub fn $name(&mut self, $($input: &str),+) -> String {
                    self.op($op, &[$($input),+], vec![])
                }
            )+
        }
    };
}

no_attributes! {
    add(a, b) => "Add";
    sub(a, b) => "Sub";
    mul(a, b) => "Mul";
    div(a, b) => "Div";
    pow(base, exponent) => "Pow";
    matmul(a, b) => "MatMul";
    greater(a, b) => "Greater";
    less(a, b) => "Less";
    equal(a, b) => "Equal";
    greater_or_equal(a, b) => "GreaterOrEqual";
    less_or_equal(a, b) => "LessOrEqual";
    and(a, b) => "And";
    or(a, b) => "Or";
    not(x) => "Not";
    neg(x) => "Neg";
    abs(x) => "Abs";
    sign(x) => "Sign";
    reciprocal(x) => "Reciprocal";
    sqrt(x) => "Sqrt";
    exp(x) => "Exp";
    log(x) => "Log";
    erf(x) => "Erf";
    tanh(x) => "Tanh";
    relu(x) => "Relu";
    sigmoid(x) => "Sigmoid";
    hard_swish(x) => "HardSwish";
    /// PRelu with a slope that broadcasts against `x`.
    prelu(x, slope) => "PRelu";
    identity(x) => "Identity";
    /// Dropout in inference (no ratio input): the identity.
    dropout(x) => "Dropout";
    /// The run-time shape of `x`, as int64.
    shape(x) => "Shape";
    /// The element count of `x`, as an int64 scalar.
    size(x) => "Size";
    global_average_pool(x) => "GlobalAveragePool";
    /// `x` reshaped to the int64 tensor `shape`.
    reshape(x, shape) => "Reshape";
    /// `x` broadcast to the int64 tensor `shape`.
    expand(x, shape) => "Expand";
    /// `x` with size-1 axes inserted at the int64 `axes`.
    unsqueeze(x, axes) => "Unsqueeze";
    /// `x` without its size-1 `axes` (an int64 tensor).
    squeeze(x, axes) => "Squeeze";
    /// `x` zero-padded by the int64 `pads` (`[begins…, ends…]`).
    pad(x, pads) => "Pad";
    /// ONNX `Where`: `a` where `condition`, else `b`.
    where_(condition, a, b) => "Where";
    /// `start, start + delta, …` below `limit`.
    range(start, limit, delta) => "Range";
}

impl GraphBuilder {
    /// The element-wise sum of `parts`.
    pub fn sum(&mut self, parts: &[&str]) -> String {
        self.op("Sum", parts, vec![])
    }

    /// The element-wise minimum of `parts`.
    pub fn min(&mut self, parts: &[&str]) -> String {
        self.op("Min", parts, vec![])
    }

    /// The element-wise maximum of `parts`.
    pub fn max(&mut self, parts: &[&str]) -> String {
        self.op("Max", parts, vec![])
    }

    /// The Einstein summation `equation` (e.g. `"bhid,bhjd->bhij"`) over `operands`.
    pub fn einsum(&mut self, equation: &str, operands: &[&str]) -> String {
        self.op(
            "Einsum",
            operands,
            vec![("equation", Attr::String(equation.into()))],
        )
    }

    pub fn concat(&mut self, parts: &[&str], axis: i64) -> String {
        self.op("Concat", parts, vec![("axis", int(axis))])
    }

    /// `x` split along `axis` into `outputs` parts, of the int64 `sizes` if given, else
    /// equal.
    pub fn split(
        &mut self,
        x: &str,
        sizes: Option<&str>,
        axis: i64,
        outputs: usize,
    ) -> Vec<String> {
        let inputs = with_optional(&[x], &[sizes]);
        self.op_n("Split", &inputs, outputs, vec![("axis", int(axis))])
    }

    pub fn transpose(&mut self, x: &str, perm: &[i64]) -> String {
        self.op("Transpose", &[x], vec![("perm", ints(perm))])
    }

    /// Transpose without `perm`: the axes reversed.
    pub fn reverse_axes(&mut self, x: &str) -> String {
        self.op("Transpose", &[x], vec![])
    }

    pub fn flatten(&mut self, x: &str, axis: i64) -> String {
        self.op("Flatten", &[x], vec![("axis", int(axis))])
    }

    /// The slices of `x` at the int64 `indices` along `axis`.
    pub fn gather(&mut self, x: &str, indices: &str, axis: i64) -> String {
        self.op("Gather", &[x, indices], vec![("axis", int(axis))])
    }

    /// `x[starts..ends]` along `axes` (all, if `None`) by `steps` (1, if `None`); every
    /// operand is an int64 tensor.
    pub fn slice(
        &mut self,
        x: &str,
        starts: &str,
        ends: &str,
        axes: Option<&str>,
        steps: Option<&str>,
    ) -> String {
        let inputs = with_optional(&[x, starts, ends], &[axes, steps]);
        self.op("Slice", &inputs, vec![])
    }

    /// `x` limited to the scalar bounds given.
    pub fn clip(&mut self, x: &str, min: Option<&str>, max: Option<&str>) -> String {
        let inputs = with_optional(&[x], &[min, max]);
        self.op("Clip", &inputs, vec![])
    }

    pub fn cast(&mut self, x: &str, to: DataType) -> String {
        self.op("Cast", &[x], vec![("to", int(i64::from(to.onnx())))])
    }

    pub fn softmax(&mut self, x: &str, axis: i64) -> String {
        self.op("Softmax", &[x], vec![("axis", int(axis))])
    }

    pub fn log_softmax(&mut self, x: &str, axis: i64) -> String {
        self.op("LogSoftmax", &[x], vec![("axis", int(axis))])
    }

    pub fn leaky_relu(&mut self, x: &str, alpha: f32) -> String {
        self.op("LeakyRelu", &[x], vec![("alpha", float(alpha))])
    }

    pub fn elu(&mut self, x: &str, alpha: f32) -> String {
        self.op("Elu", &[x], vec![("alpha", float(alpha))])
    }

    /// `max(0, min(1, alpha·x + beta))`.
    pub fn hard_sigmoid(&mut self, x: &str, alpha: f32, beta: f32) -> String {
        self.op(
            "HardSigmoid",
            &[x],
            vec![("alpha", float(alpha)), ("beta", float(beta))],
        )
    }

    /// Sum over the int64 `axes` (all axes, if `None`); opset 13+ takes them as an input.
    pub fn reduce_sum(&mut self, x: &str, axes: Option<&str>, keepdims: bool) -> String {
        let inputs = with_optional(&[x], &[axes]);
        self.op(
            "ReduceSum",
            &inputs,
            vec![("keepdims", int(i64::from(keepdims)))],
        )
    }

    /// Mean over `axes` (all axes, if empty); up to opset 17 an attribute.
    pub fn reduce_mean(&mut self, x: &str, axes: &[i64], keepdims: bool) -> String {
        let mut attrs = vec![("keepdims", int(i64::from(keepdims)))];
        if !axes.is_empty() {
            attrs.push(("axes", ints(axes)));
        }
        self.op("ReduceMean", &[x], attrs)
    }

    /// Cumulative sum along the int64 scalar `axis`.
    pub fn cum_sum(&mut self, x: &str, axis: &str, exclusive: bool, reverse: bool) -> String {
        self.op(
            "CumSum",
            &[x, axis],
            vec![
                ("exclusive", int(i64::from(exclusive))),
                ("reverse", int(i64::from(reverse))),
            ],
        )
    }

    /// `data` with `updates` added at `indices` along `axis` (reduction "add").
    pub fn scatter_add(&mut self, data: &str, indices: &str, updates: &str, axis: i64) -> String {
        self.op(
            "ScatterElements",
            &[data, indices, updates],
            vec![
                ("axis", int(axis)),
                ("reduction", Attr::String("add".into())),
            ],
        )
    }

    /// A tensor of the int64 `shape` filled with the one-element `value` (0.0 if `None`).
    pub fn constant_of_shape(&mut self, shape: &str, value: Option<Tensor>) -> String {
        let attrs = value
            .map(|v| ("value", Attr::Tensor(v)))
            .into_iter()
            .collect();
        self.op("ConstantOfShape", &[shape], attrs)
    }

    pub fn gemm(&mut self, a: &str, b: &str, c: Option<&str>, attrs: &Gemm) -> String {
        let inputs = with_optional(&[a, b], &[c]);
        self.op("Gemm", &inputs, attrs.attrs())
    }

    pub fn conv(&mut self, x: &str, w: &str, bias: Option<&str>, attrs: &Conv) -> String {
        let inputs = with_optional(&[x, w], &[bias]);
        self.op("Conv", &inputs, attrs.attrs())
    }

    /// ConvTranspose with Conv's attributes plus `output_padding`.
    pub fn conv_transpose(
        &mut self,
        x: &str,
        w: &str,
        attrs: &Conv,
        output_padding: &[i64],
    ) -> String {
        let mut attrs = attrs.attrs();
        attrs.push(("output_padding", ints(output_padding)));
        self.op("ConvTranspose", &[x, w], attrs)
    }

    pub fn max_pool(&mut self, x: &str, attrs: &Pool) -> String {
        self.op("MaxPool", &[x], attrs.attrs())
    }

    /// MaxPool with its second output: the flat index of each maximum.
    pub fn max_pool_with_indices(&mut self, x: &str, attrs: &Pool) -> (String, String) {
        let mut outs = self.op_n("MaxPool", &[x], 2, attrs.attrs());
        let indices = outs.pop().expect("two outputs");
        (outs.pop().expect("two outputs"), indices)
    }

    pub fn average_pool(&mut self, x: &str, attrs: &Pool) -> String {
        self.op("AveragePool", &[x], attrs.attrs())
    }

    /// BatchNormalization in inference (running statistics).
    pub fn batch_norm(&mut self, [x, scale, bias, mean, var]: [&str; 5], epsilon: f32) -> String {
        self.op(
            "BatchNormalization",
            &[x, scale, bias, mean, var],
            vec![("epsilon", float(epsilon))],
        )
    }

    /// LayerNormalization over the axes from `axis` on.
    pub fn layer_norm(
        &mut self,
        x: &str,
        scale: &str,
        bias: Option<&str>,
        axis: i64,
        epsilon: f32,
    ) -> String {
        let inputs = with_optional(&[x, scale], &[bias]);
        self.op(
            "LayerNormalization",
            &inputs,
            vec![("axis", int(axis)), ("epsilon", float(epsilon))],
        )
    }

    /// Runs `build`, which must add exactly one node, and gives that node's output the name
    /// `output` (a graph output, or a value that replaces one being rewritten).
    pub fn named(&mut self, output: &str, build: impl FnOnce(&mut Self) -> String) -> String {
        let before = self.graph.nodes.len();
        let value = build(self);
        assert_eq!(self.graph.nodes.len(), before + 1, "`named` wraps one node");
        let node = self.graph.nodes.last_mut().expect("one node added");
        assert_eq!(node.outputs, [value], "`named` wraps a one-output node");
        node.outputs[0] = output.to_string();
        output.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Dim;

    /// Builds the same nodes through `typed` and through the string form in `strings`.
    fn same_nodes(
        typed: impl Fn(&mut GraphBuilder, &str),
        strings: impl Fn(&mut GraphBuilder, &str),
    ) {
        let build = |f: &dyn Fn(&mut GraphBuilder, &str)| {
            let mut b = GraphBuilder::new("g");
            let x = b.input("x", DataType::Float, vec![Dim::Fixed(2)]);
            f(&mut b, &x);
            b.finish()
        };
        assert_eq!(build(&typed), build(&strings));
    }

    #[test]
    fn typed_methods_emit_the_string_forms_nodes() {
        same_nodes(
            |b, x| {
                let y = b.mul(x, x);
                let y = b.transpose(&y, &[1, 0]);
                let y = b.cast(&y, DataType::Float);
                b.reduce_sum(&y, None, false);
                b.reduce_mean(&y, &[1], true);
                b.concat(&[x, &y], 1);
            },
            |b, x| {
                let y = b.op("Mul", &[x, x], vec![]);
                let y = b.op("Transpose", &[&y], vec![("perm", ints(&[1, 0]))]);
                let y = b.op("Cast", &[&y], vec![("to", int(1))]);
                b.op("ReduceSum", &[&y], vec![("keepdims", int(0))]);
                b.op(
                    "ReduceMean",
                    &[&y],
                    vec![("axes", ints(&[1])), ("keepdims", int(1))],
                );
                b.op("Concat", &[x, &y], vec![("axis", int(1))]);
            },
        );
    }

    #[test]
    fn attribute_structs_write_only_what_is_set() {
        same_nodes(
            |b, x| {
                let conv = Conv {
                    group: Some(4),
                    ..Conv::square(3, 2, 1)
                };
                b.conv(x, "w", Some("bias"), &conv);
                b.conv(x, "w", None, &Conv::default());
                b.gemm(x, "w", None, &Gemm::B_TRANSPOSED);
                b.average_pool(x, &Pool::square(2, 2));
            },
            |b, x| {
                b.op(
                    "Conv",
                    &[x, "w", "bias"],
                    vec![
                        ("kernel_shape", ints(&[3, 3])),
                        ("strides", ints(&[2, 2])),
                        ("pads", ints(&[1, 1, 1, 1])),
                        ("group", int(4)),
                    ],
                );
                b.op("Conv", &[x, "w"], vec![]);
                b.op("Gemm", &[x, "w"], vec![("transB", int(1))]);
                b.op(
                    "AveragePool",
                    &[x],
                    vec![("kernel_shape", ints(&[2, 2])), ("strides", ints(&[2, 2]))],
                );
            },
        );
    }

    #[test]
    fn optional_inputs_are_skipped_at_the_end_and_blank_between() {
        same_nodes(
            |b, x| {
                b.slice(x, "s", "e", None, Some("steps"));
                b.clip(x, None, None);
                b.split(x, None, 0, 2);
            },
            |b, x| {
                b.op("Slice", &[x, "s", "e", "", "steps"], vec![]);
                b.op("Clip", &[x], vec![]);
                b.op_n("Split", &[x], 2, vec![("axis", int(0))]);
            },
        );
    }

    #[test]
    fn named_renames_the_one_output_and_keeps_the_node_name() {
        let mut b = GraphBuilder::new("g");
        let x = b.input("x", DataType::Float, vec![Dim::Fixed(2)]);
        let y = b.named("y", |b| b.relu(&x));
        assert_eq!(y, "y");
        let node = &b.graph().nodes[0];
        assert_eq!(
            (node.name.as_str(), node.outputs[0].as_str()),
            ("Relu_1", "y")
        );
    }
}
