//! Broadcasting arithmetic, comparisons and logic, and element-wise rounding.
//! https://onnx.ai/onnx/operators/onnx__Add.html (Sub, Mul, Div, Mod, Sum, Mean, Max, Min,
//! Equal, Less, Greater, LessOrEqual, GreaterOrEqual, And, Or, Where alike): numpy
//! broadcasting, comparisons and logic giving booleans. Shape arithmetic folds: the batch
//! survives multiplying by 1, dividing by 1 and adding 0.

use crate::OnnxError;
use crate::fold::{Batch, Element, Folding, Known, Unknown, Value};
use crate::ir::DataType;
use crate::ops::{Check, Infer, OpDef, same_shape};
use crate::shapes::{TypedShape, broadcast, shown};

pub(super) const OPS: &[OpDef] = &[
    OpDef::new("Add").shape(broadcasting).fold(fold_arithmetic),
    OpDef::new("Sub").shape(broadcasting).fold(fold_arithmetic),
    OpDef::new("Mul").shape(broadcasting).fold(fold_arithmetic),
    OpDef::new("Div").shape(broadcasting).fold(fold_arithmetic),
    OpDef::new("Mod")
        .since(10)
        .inputs(2)
        .check(check_mod)
        .shape(broadcasting)
        .fold(fold_arithmetic),
    OpDef::new("Sum").shape(broadcasting),
    OpDef::new("Mean").shape(broadcasting),
    OpDef::new("Max").shape(broadcasting).fold(fold_arithmetic),
    OpDef::new("Min").shape(broadcasting).fold(fold_arithmetic),
    OpDef::new("Neg").shape(same_shape).fold(fold_unary),
    OpDef::new("Reciprocal").shape(same_shape),
    OpDef::new("Floor").shape(same_shape).fold(fold_unary),
    OpDef::new("Ceil").shape(same_shape).fold(fold_unary),
    OpDef::new("Round").since(11).shape(same_shape),
    OpDef::new("Sign").since(9).shape(same_shape),
    OpDef::new("Equal").shape(broadcasting).fold(fold_logic),
    OpDef::new("Less").shape(broadcasting),
    OpDef::new("Greater").shape(broadcasting),
    OpDef::new("LessOrEqual").since(12).shape(broadcasting),
    OpDef::new("GreaterOrEqual").since(12).shape(broadcasting),
    OpDef::new("And").shape(broadcasting).fold(fold_logic),
    OpDef::new("Or").shape(broadcasting),
    OpDef::new("Not").shape(same_shape).fold(fold_logic),
    OpDef::new("Where")
        .since(9)
        .inputs(3)
        .shape(broadcasting)
        .fold(fold_logic),
];

/// Floats need fmod=1: ONNX defines fmod=0 (Python's modulo) for integers only.
fn check_mod(cx: &Check) -> Result<(), OnnxError> {
    let Check { node, inputs } = *cx;
    let fmod = node.int("fmod").unwrap_or(0);
    if fmod != 0 && fmod != 1 {
        return Err(node.error(format!("fmod {fmod}: ONNX defines 0 and 1")));
    }
    let float = inputs[0].is_some_and(|t| {
        matches!(
            t.dtype,
            DataType::Float | DataType::Double | DataType::Other(10 | 16)
        )
    });
    if float && fmod == 0 {
        return Err(node.error(
            "Mod of floating-point inputs needs fmod=1 (ONNX defines fmod=0 for integers only)",
        ));
    }
    Ok(())
}

/// Every input broadcast together; comparisons and logic give booleans, Where its values'
/// type, the rest input 0's.
pub(super) fn broadcasting(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer {
        node, inputs, x, ..
    } = *cx;
    let mut shape = x.shape.clone();
    for i in 1..inputs.len() {
        let other = &cx.input(i)?.shape;
        shape = broadcast(&shape, other).ok_or_else(|| {
            node.error(format!(
                "shapes {} and {} do not broadcast",
                shown(&shape),
                shown(other)
            ))
        })?;
    }
    let dtype = match node.op.as_str() {
        "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or" => {
            DataType::Bool
        }
        "Where" => cx.input(1)?.dtype,
        _ => x.dtype,
    };
    Ok(vec![TypedShape {
        dtype,
        shape,
        batch_multiple: cx.batch_multiple(),
    }])
}

/// Two operands, broadcast together as numpy does.
pub(super) fn fold_arithmetic(f: &Folding) -> Option<Vec<Value>> {
    let node = f.node;
    let (a, b) = (f.input(0)?, f.input(1)?);
    let op = match node.op.as_str() {
        "Mod" if node.int("fmod") == Some(1) => "FMod",
        op => op,
    };
    let dims = f.out_dims(0)?;
    let n = dims.iter().product::<i64>() as usize;
    let integer = a.dtype != DataType::Float && a.dtype != DataType::Double;
    let data = (0..n)
        .map(|k| {
            let (x, y) = (
                crate::fold::broadcast_element(a, &dims, k)?,
                crate::fold::broadcast_element(b, &dims, k)?,
            );
            Some(arithmetic(op, x, y, integer))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(vec![Value {
        dtype: a.dtype,
        dims,
        data,
    }])
}

fn arithmetic(op: &str, a: Element, b: Element, integer: bool) -> Element {
    match (a, b) {
        (Known(x), Known(y)) => match op {
            "Add" => Known(x + y),
            "Sub" => Known(x - y),
            "Mul" => Known(x * y),
            "Div" if y == 0.0 => Unknown,
            // Integer division truncates, as ONNX Runtime's does.
            "Div" if integer => Known((x / y).trunc()),
            "Div" => Known(x / y),
            "Max" => Known(x.max(y)),
            "Min" => Known(x.min(y)),
            "Pow" => Known(x.powf(y)),
            "Mod" | "FMod" if y == 0.0 => Unknown,
            // C's fmod: the sign of the dividend (Rust's `%`).
            "FMod" => Known(x % y),
            // Python's: the sign of the divisor.
            "Mod" => {
                let r = x % y;
                Known(if r != 0.0 && (r < 0.0) != (y < 0.0) {
                    r + y
                } else {
                    r
                })
            }
            _ => Unknown,
        },
        // N·k times or over a whole number: heads and windows folded into the batch axis
        // (`[N·heads, T, d]`) and taken out again (`windows.shape[0] / 64`).
        (Batch(k), Known(y)) | (Known(y), Batch(k))
            if op == "Mul" && y >= 1.0 && y.fract() == 0.0 =>
        {
            Batch(k * y as i64)
        }
        (Batch(k), Known(y))
            if op == "Div" && y >= 1.0 && y.fract() == 0.0 && k % y as i64 == 0 =>
        {
            Batch(k / y as i64)
        }
        (Batch(k), Known(y)) if (op == "Add" || op == "Sub") && y == 0.0 => Batch(k),
        _ => Unknown,
    }
}

/// Equal, Not, And and Where over shape values, broadcasting any operand. A multiple of the
/// batch is at least 1, so it equals no value below 1: exporters test a shape for -1 or 0 and pick with
/// Where (`expand(n, -1, -1)` becomes Equal(shape, -1) → Where(…, 1, shape) → Expand).
fn fold_logic(f: &Folding) -> Option<Vec<Value>> {
    let op = f.node.op.as_str();
    let dims = f.out_dims(0)?;
    let operands = (0..f.node.inputs.len())
        .map(|i| f.input(i))
        .collect::<Option<Vec<_>>>()?;
    let n = dims.iter().product::<i64>() as usize;
    let truth = |b: bool| Known(f64::from(u8::from(b)));
    let data = (0..n)
        .map(|k| {
            let e = operands
                .iter()
                .map(|v| crate::fold::broadcast_element(v, &dims, k))
                .collect::<Option<Vec<_>>>()?;
            Some(match (op, e.as_slice()) {
                ("Equal", [Known(a), Known(b)]) => truth(a == b),
                ("Equal", [Batch(_), Known(v)] | [Known(v), Batch(_)]) if *v < 1.0 => truth(false),
                ("Not", [Known(a)]) => truth(*a == 0.0),
                ("And", [Known(a), Known(b)]) => truth(*a != 0.0 && *b != 0.0),
                ("And", [Known(z), _] | [_, Known(z)]) if *z == 0.0 => truth(false),
                ("Where", [Known(c), a, b]) => {
                    if *c != 0.0 {
                        *a
                    } else {
                        *b
                    }
                }
                _ => Unknown,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let dtype = match op {
        "Where" => operands[1].dtype,
        _ => DataType::Bool,
    };
    Some(vec![Value { dtype, dims, data }])
}

/// One function of each element (Floor, Ceil, Neg, Sqrt).
pub(super) fn fold_unary(f: &Folding) -> Option<Vec<Value>> {
    let x = f.input(0)?;
    let op: fn(f64) -> f64 = match f.node.op.as_str() {
        "Floor" => f64::floor,
        "Ceil" => f64::ceil,
        "Neg" => |v| -v,
        _ => f64::sqrt,
    };
    let data = x
        .data
        .iter()
        .map(|&e| {
            if let Known(v) = e {
                Known(op(v))
            } else {
                Unknown
            }
        })
        .collect();
    f.same_data(data, x.dtype)
}

#[cfg(test)]
mod tests {
    use crate::Tensor;
    use crate::builder::int;
    use crate::ir::DataType;
    use crate::ops::testing::{folded, one_node};

    /// refuses floats without fmod=1 (ONNX defines fmod=0 for integers only).
    #[test]
    fn mod_broadcasts_and_keeps_its_input_type() {
        let (n, k) = (None, Some);
        let y = one_node(
            "Mod",
            &[(DataType::Int64, &[n, k(3)]), (DataType::Int64, &[k(1)])],
            vec![],
        )
        .unwrap();
        assert_eq!(y.shape, [n, k(3)]);
        assert_eq!(y.dtype, DataType::Int64);
        let y = one_node(
            "Mod",
            &[(DataType::Float, &[k(2), k(3)]), (DataType::Float, &[k(3)])],
            vec![("fmod", int(1))],
        )
        .unwrap();
        assert_eq!((y.dtype, y.shape), (DataType::Float, vec![k(2), k(3)]));
        let err = one_node(
            "Mod",
            &[(DataType::Float, &[k(2)]), (DataType::Float, &[k(2)])],
            vec![],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("Mod") && err.contains("fmod=1"), "{err}");
        assert!(
            one_node(
                "Mod",
                &[(DataType::Int64, &[k(2)]), (DataType::Int64, &[k(3)])],
                vec![]
            )
            .is_err()
        );
    }

    /// `x.expand(n, -1, -1)` as torch.onnx.export writes it: Equal(target, -1) picks where
    /// Where keeps the input's size. The batch is never -1, so the Equal folds away; the
    /// Where, whose value holds the batch, stays.
    #[test]
    fn equal_and_where_fold_over_the_batch() {
        use crate::GraphBuilder;
        use crate::ir::Dim;
        let mut b = GraphBuilder::new("expand");
        let x = b.input(
            "x",
            DataType::Float,
            vec![Dim::Symbolic("N".into()), Dim::Fixed(4)],
        );
        let shape = b.shape(&x);
        let zero = b.constant(Tensor::i64s(&[0]));
        let n = b.gather(&shape, &zero, 0);
        let rest = b.constant(Tensor::i64s(&[-1, -1]));
        let target = b.concat(&[&n, &rest], 0);
        let minus_one = b.constant(Tensor::i64(&[], vec![-1]));
        let keep = b.equal(&target, &minus_one);
        let ones = b.constant(Tensor::i64s(&[1, 1, 1]));
        let target = b.where_(&keep, &ones, &target);
        let token = b.constant(Tensor::f32(&[1, 1, 4], vec![0.0; 4]));
        let y = b.expand(&token, &target);
        b.output(&y, DataType::Float, vec![]);
        // What follows reads the expanded tokens' shape, as attention's reshapes do: folding
        // knows it, so it is a constant.
        let y_shape = b.shape(&y);
        let last = b.constant(Tensor::i64(&[], vec![2]));
        let width = b.gather(&y_shape, &last, 0);
        b.output(&width, DataType::Int64, vec![]);
        let mut graph = b.finish();
        crate::fold::fold(&mut graph);
        assert_eq!(graph.initializers[&width].as_i64(), Some(&[4][..]));
        let ops: Vec<&str> = graph.nodes.iter().map(|n| n.op.as_str()).collect();
        // The Expand to the batch becomes one to a constant target plus zeros shaped like the
        // batch, which shape inference follows; the target's arithmetic is then unused.
        assert_eq!(
            ops,
            [
                "Slice",
                "Reshape",
                "Shape",
                "ConstantOfShape",
                "Expand",
                "Add"
            ]
        );
        let shapes = crate::shapes::infer(&graph).unwrap();
        assert_eq!(shapes[&y].shape, [None, Some(1), Some(4)]);
    }

    #[test]
    fn logic_folds_with_broadcasting() {
        use crate::ir::TensorData;
        let bools = |v: Vec<bool>| Tensor {
            dtype: DataType::Bool,
            dims: vec![v.len() as i64],
            data: TensorData::Bool(v),
        };
        let eq = folded(
            "Equal",
            &[
                Tensor::i64(&[2, 2], vec![1, 2, 3, 2]),
                Tensor::i64s(&[1, 2]),
            ],
            vec![],
        );
        assert_eq!(eq.dims, [2, 2]);
        assert_eq!(eq.data, TensorData::Bool(vec![true, true, false, true]));
        let picked = folded(
            "Where",
            &[
                bools(vec![true, false]),
                Tensor::i64(&[2, 1], vec![7, 8]),
                Tensor::i64s(&[0, 0]),
            ],
            vec![],
        );
        assert_eq!(picked.as_i64(), Some(&[7, 0, 8, 0][..]));
        let not = folded("Not", &[bools(vec![true, false])], vec![]);
        assert_eq!(not.data, TensorData::Bool(vec![false, true]));
    }

    /// Python's modulo (the sign of the divisor) for fmod=0, C's fmod (the sign of the
    /// dividend) for fmod=1, broadcasting a scalar divisor; values from numpy's `np.mod`
    /// and `np.fmod`.
    #[test]
    fn mod_folds_with_both_sign_conventions() {
        let a = Tensor::i64(&[4], vec![7, -7, 7, -7]);
        let b = Tensor::i64(&[4], vec![3, 3, -3, -3]);
        let python = folded("Mod", &[a.clone(), b.clone()], vec![]);
        assert_eq!(python.as_i64(), Some(&[1, 2, -2, -1][..]));
        let c = folded("Mod", &[a.clone(), b], vec![("fmod", int(1))]);
        assert_eq!(c.as_i64(), Some(&[1, -1, 1, -1][..]));
        let by_scalar = folded("Mod", &[a, Tensor::i64(&[], vec![4])], vec![]);
        assert_eq!(by_scalar.as_i64(), Some(&[3, 1, 3, 1][..]));
        let float = folded(
            "Mod",
            &[
                Tensor::f32(&[2], vec![5.5, -5.5]),
                Tensor::f32(&[], vec![2.0]),
            ],
            vec![("fmod", int(1))],
        );
        assert_eq!(float.as_f32(), Some(&[1.5, -1.5][..]));
    }
}
