//! Pooling windows, https://onnx.ai/onnx/operators/onnx__MaxPool.html and
//! https://onnx.ai/onnx/operators/onnx__AveragePool.html: sized as convolutions are
//! (`conv`), keeping the channels; opset 19's dilated AveragePool has no opset-17 form.

use crate::OnnxError;
use crate::ir::{Attr, Graph, Node};
use crate::ops::OpDef;
use crate::ops::conv::{check_window, windowed};

pub(super) const OPS: &[OpDef] = &[
    OpDef::new("MaxPool")
        .min_rank(3)
        .check(check_window)
        .shape(windowed),
    OpDef::new("AveragePool")
        .min_rank(3)
        .check(check_window)
        .shape(windowed)
        .convert(convert_average_pool),
];

fn convert_average_pool(_: &mut Graph, mut node: Node, from: i64) -> Result<Vec<Node>, OnnxError> {
    if from >= 19
        && let Some(Attr::Ints(d)) = node.attrs.remove("dilations")
        && d.iter().any(|&d| d != 1)
    {
        return Err(node.error("a dilated AveragePool has no opset-17 form"));
    }
    Ok(vec![node])
}

#[cfg(test)]
mod tests {
    use crate::GraphBuilder;
    use crate::builder::{int, ints};
    use crate::ir::{DataType, Dim};
    use crate::shapes::infer;

    /// ONNX Runtime's pooling kernels (as PyTorch) drop a ceil-mode window that would start
    /// in the end padding: 7 rows, pads 1, kernel 2, stride 2 give 4 windows, not 5.
    #[test]
    fn ceil_mode_drops_a_last_window_starting_in_the_padding() {
        let pooled = |pads: [i64; 4]| {
            let mut b = GraphBuilder::new("g");
            let x = b.input(
                "x",
                DataType::Float,
                [1, 2, 7, 6].iter().map(|&d| Dim::Fixed(d)).collect(),
            );
            let y = b.op(
                "AveragePool",
                &[&x],
                vec![
                    ("kernel_shape", ints(&[2, 3])),
                    ("strides", ints(&[2, 2])),
                    ("pads", ints(&pads)),
                    ("ceil_mode", int(1)),
                ],
            );
            b.output(&y, DataType::Float, vec![]);
            infer(&b.finish()).unwrap()[&y].shape.clone()
        };
        assert_eq!(pooled([0, 0, 0, 0]), [Some(1), Some(2), Some(4), Some(3)]);
        assert_eq!(pooled([1, 1, 1, 1]), [Some(1), Some(2), Some(4), Some(4)]);
    }
}
