//! Reductions, https://onnx.ai/onnx/operators/onnx__ReduceMean.html (ReduceSum, ReduceMax,
//! ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum,
//! ReduceLogSumExp alike): the axes (all by default) kept as 1 or dropped; their axes moved
//! to an input in opset 13 (ReduceSum) or 18 (the rest), opset 17 takes ReduceSum's as an
//! input and the others' as an attribute. GlobalAveragePool and GlobalMaxPool reduce every
//! spatial axis; https://onnx.ai/onnx/operators/onnx__CumSum.html keeps its input's shape.

use crate::OnnxError;
use crate::fold::{Element, Folding, Known, Unknown, Value};
use crate::ir::{Attr, Graph, Node, Tensor};
use crate::ops::{Check, Infer, OpDef, same_shape};
use crate::opset::attr_to_input;
use crate::shapes::{TypedShape, constant_ints};

pub(super) const OPS: &[OpDef] = &[
    OpDef::new("ReduceSum")
        .check(check_axes)
        .shape(reduce)
        .convert(convert_reduce_sum),
    OpDef::new("ReduceMean")
        .check(check_axes)
        .shape(reduce)
        .convert(convert_reduce),
    OpDef::new("ReduceMax")
        .check(check_axes)
        .shape(reduce)
        .convert(convert_reduce),
    OpDef::new("ReduceMin")
        .check(check_axes)
        .shape(reduce)
        .convert(convert_reduce),
    OpDef::new("ReduceProd")
        .check(check_axes)
        .shape(reduce)
        .convert(convert_reduce),
    OpDef::new("ReduceL1")
        .check(check_axes)
        .shape(reduce)
        .convert(convert_reduce),
    OpDef::new("ReduceL2")
        .check(check_axes)
        .shape(reduce)
        .convert(convert_reduce),
    OpDef::new("ReduceSumSquare")
        .check(check_axes)
        .shape(reduce)
        .convert(convert_reduce),
    OpDef::new("ReduceLogSumExp")
        .check(check_axes)
        .shape(reduce)
        .convert(convert_reduce),
    OpDef::new("ReduceLogSum").convert(convert_reduce),
    OpDef::new("CumSum")
        .since(11)
        .inputs(2)
        .check(check_cum_sum)
        .shape(same_shape)
        .fold(fold_cum_sum),
    OpDef::new("GlobalAveragePool").min_rank(3).shape(global),
    OpDef::new("GlobalMaxPool").min_rank(3).shape(global),
];

fn check_axes(cx: &Check) -> Result<(), OnnxError> {
    for &a in cx.node.ints("axes").unwrap_or(&[]) {
        cx.in_range(a, cx.rank())?;
    }
    Ok(())
}

fn check_cum_sum(cx: &Check) -> Result<(), OnnxError> {
    let node = cx.node;
    for attr in ["exclusive", "reverse"] {
        if let Some(v) = node.int(attr).filter(|v| *v != 0 && *v != 1) {
            return Err(node.error(format!("{attr} {v}: ONNX defines 0 and 1")));
        }
    }
    if cx.rank() == 0 {
        return Err(node.error("CumSum of a scalar: it needs an axis to sum along"));
    }
    Ok(())
}

fn reduce(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { graph, node, x, .. } = *cx;
    let axes: Vec<usize> = match node.ints("axes") {
        Some(a) => a.iter().map(|&a| cx.axis_of(a)).collect(),
        None => match node.inputs.get(1).filter(|s| !s.is_empty()) {
            Some(name) => constant_ints(graph, name)
                .ok_or_else(|| node.error("axes must be a constant"))?
                .iter()
                .map(|&a| cx.axis_of(a))
                .collect(),
            None => (0..x.shape.len()).collect(),
        },
    };
    let keep = node.int("keepdims").unwrap_or(1) == 1;
    let shape = x
        .shape
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| {
            if axes.contains(&i) {
                keep.then_some(Some(1))
            } else {
                Some(d)
            }
        })
        .collect();
    Ok(vec![cx.same(shape)])
}

fn global(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let x = cx.x;
    let mut shape = x.shape[..2].to_vec();
    shape.extend(std::iter::repeat_n(Some(1), x.shape.len() - 2));
    Ok(vec![cx.same(shape)])
}

fn fold_cum_sum(f: &Folding) -> Option<Vec<Value>> {
    let node = f.node;
    let x = f.input(0)?;
    let axis = *f.input(1)?.known()?.first()? as i64;
    let rank = x.dims.len() as i64;
    if axis < -rank || axis >= rank {
        return None;
    }
    let axis = if axis < 0 { axis + rank } else { axis } as usize;
    let len = x.dims[axis] as usize;
    let inner: usize = x.dims[axis + 1..].iter().product::<i64>() as usize;
    let (exclusive, reverse) = (
        node.int("exclusive") == Some(1),
        node.int("reverse") == Some(1),
    );
    let mut data = vec![Known(0.0); x.data.len()];
    for start in 0..x.data.len() {
        // The first element of each line along the axis.
        if !(start / inner).is_multiple_of(len) {
            continue;
        }
        let mut total = Known(0.0);
        for k in 0..len {
            let k = if reverse { len - 1 - k } else { k };
            let at = start + k * inner;
            let sum = |a: Element, b: Element| match (a, b) {
                (Known(a), Known(b)) => Known(a + b),
                _ => Unknown,
            };
            let next = sum(total, x.data[at]);
            data[at] = if exclusive { total } else { next };
            total = next;
        }
    }
    f.same_data(data, x.dtype)
}

/// ReduceSum's axes became an input in opset 13.
fn convert_reduce_sum(
    graph: &mut Graph,
    mut node: Node,
    from: i64,
) -> Result<Vec<Node>, OnnxError> {
    if from < 13 {
        attr_to_input(graph, &mut node, "axes", 1);
    }
    Ok(vec![node])
}

/// The other reductions' axes became an input in opset 18: back to the attribute, and
/// `noop_with_empty_axes` with no axes to an Identity.
fn convert_reduce(graph: &mut Graph, mut node: Node, from: i64) -> Result<Vec<Node>, OnnxError> {
    if from >= 18 {
        let noop = node.attrs.remove("noop_with_empty_axes") == Some(Attr::Int(1));
        match node.inputs.get(1).filter(|s| !s.is_empty()).cloned() {
            Some(name) => {
                let axes = graph
                    .initializers
                    .get(&name)
                    .and_then(Tensor::as_i64)
                    .ok_or_else(|| node.error("axes must be a constant"))?
                    .to_vec();
                node.inputs.truncate(1);
                node.attrs.insert("axes".into(), Attr::Ints(axes));
            }
            None if noop => {
                node.op = "Identity".into();
                node.attrs.clear();
            }
            None => {}
        }
    }
    Ok(vec![node])
}

#[cfg(test)]
mod tests {
    use crate::Tensor;
    use crate::builder::int;
    use crate::ir::DataType;
    use crate::ops::testing::{folded, one_node};

    #[test]
    fn cumsum_keeps_its_input_shape_and_refuses_a_scalar() {
        let (n, k) = (None, Some);
        let y = one_node(
            "CumSum",
            &[(DataType::Float, &[n, k(4)]), (DataType::Int64, &[])],
            vec![("exclusive", int(1))],
        )
        .unwrap();
        assert_eq!((y.dtype, y.shape), (DataType::Float, vec![n, k(4)]));
        let err = one_node(
            "CumSum",
            &[(DataType::Float, &[]), (DataType::Int64, &[])],
            vec![],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("CumSum") && err.contains("scalar"), "{err}");
        assert!(
            one_node(
                "CumSum",
                &[(DataType::Float, &[k(3)]), (DataType::Int64, &[])],
                vec![("reverse", int(2))],
            )
            .is_err()
        );
    }

    /// Range's length is known when its three scalars are constants (as ONNX Runtime computes
    /// it: max(ceil((limit − start) / delta), 0)) and is a run-time dimension otherwise.

    #[test]
    fn cumsum_folds_along_its_axis_exclusive_and_reversed() {
        let x = Tensor::i64(&[2, 3], vec![1, 2, 3, 4, 5, 6]);
        let axis = |a: i64| Tensor::i64(&[], vec![a]);
        let sum = |a: i64, exclusive: i64, reverse: i64| {
            folded(
                "CumSum",
                &[x.clone(), axis(a)],
                vec![("exclusive", int(exclusive)), ("reverse", int(reverse))],
            )
            .as_i64()
            .unwrap()
            .to_vec()
        };
        assert_eq!(sum(1, 0, 0), [1, 3, 6, 4, 9, 15]);
        assert_eq!(sum(-1, 0, 0), [1, 3, 6, 4, 9, 15]);
        assert_eq!(sum(0, 0, 0), [1, 2, 3, 5, 7, 9]);
        assert_eq!(sum(1, 1, 0), [0, 1, 3, 0, 4, 9]);
        assert_eq!(sum(1, 0, 1), [6, 5, 3, 15, 11, 6]);
        assert_eq!(sum(1, 1, 1), [5, 3, 0, 11, 6, 0]);
    }
}
