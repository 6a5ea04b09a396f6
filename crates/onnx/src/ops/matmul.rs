//! Dense layers. https://onnx.ai/onnx/operators/onnx__Gemm.html (two rank-2 operands,
//! either transposed), https://onnx.ai/onnx/operators/onnx__MatMul.html (numpy's matmul:
//! batch axes broadcast, a rank-1 operand loses its axis) and
//! https://onnx.ai/onnx/operators/onnx__Einsum.html (the output follows the equation).

use crate::OnnxError;
use crate::ops::{Check, Infer, OpDef};
use crate::shapes::{Shape, TypedShape, broadcast, shown};

pub(super) const OPS: &[OpDef] = &[
    OpDef::new("Gemm")
        .inputs(2)
        .min_rank(2)
        .check(check_gemm)
        .shape(gemm),
    OpDef::new("MatMul")
        .inputs(2)
        .min_rank(1)
        .check(check_matmul)
        .shape(matmul),
    OpDef::new("Einsum").since(12).shape(einsum),
];

fn check_gemm(cx: &Check) -> Result<(), OnnxError> {
    if cx.rank_of(1) != Some(2) || cx.rank() != 2 {
        return Err(cx.node.error("Gemm needs two rank-2 inputs"));
    }
    Ok(())
}

fn check_matmul(cx: &Check) -> Result<(), OnnxError> {
    if cx.rank_of(1).unwrap_or(1) == 0 {
        return Err(cx.node.error("MatMul with a scalar"));
    }
    Ok(())
}

fn gemm(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { node, x, .. } = *cx;
    let (a, b) = (&x.shape, &cx.input(1)?.shape);
    let m = if node.int("transA") == Some(1) {
        a[1]
    } else {
        a[0]
    };
    let n = if node.int("transB") == Some(1) {
        b[0]
    } else {
        b[1]
    };
    Ok(vec![cx.same(vec![m, n])])
}

fn matmul(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { node, x, .. } = *cx;
    // numpy's matmul: the batch axes broadcast; a rank-1 operand loses its axis.
    let a = &x.shape;
    let b = &cx.input(1)?.shape;
    if a.is_empty() || b.is_empty() {
        return Err(node.error("MatMul with a scalar"));
    }
    let batch_of = |s: &Shape| s[..s.len().saturating_sub(2)].to_vec();
    let mut shape = broadcast(&batch_of(a), &batch_of(b)).ok_or_else(|| {
        node.error(format!(
            "batch axes of {} and {} do not broadcast",
            shown(a),
            shown(b)
        ))
    })?;
    if a.len() >= 2 {
        shape.push(a[a.len() - 2]);
    }
    if b.len() >= 2 {
        shape.push(b[b.len() - 1]);
    }
    Ok(vec![cx.same(shape)])
}

fn einsum(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let node = cx.node;
    let equation = match node.attr("equation") {
        Some(crate::ir::Attr::String(s)) => s.clone(),
        _ => return Err(node.error("Einsum without an equation")),
    };
    let shapes: Vec<&Shape> = (0..node.inputs.len())
        .map(|i| cx.input(i).map(|t| &t.shape))
        .collect::<Result<_, _>>()?;
    Ok(vec![cx.same(
        einsum_shape(&equation, &shapes).map_err(|message| node.error(message))?,
    )])
}

/// The output shape of an Einsum `equation` over operands of `shapes`: explicit (`->`) or
/// implicit (the letters that appear once, in alphabetical order). Broadcasting with `...`
/// is refused. The error is a message for the node's error.
fn einsum_shape(equation: &str, shapes: &[&Shape]) -> Result<Shape, String> {
    let equation: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    if equation.contains('.') {
        return Err(format!(
            "equation '{equation}' broadcasts with '...', which ortl does not support: re-export with the axes named"
        ));
    }
    let (lhs, rhs) = match equation.split_once("->") {
        Some((lhs, rhs)) => (lhs, Some(rhs)),
        None => (equation.as_str(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != shapes.len() {
        return Err(format!(
            "equation '{equation}' names {} operands, the node has {}",
            terms.len(),
            shapes.len()
        ));
    }
    let mut dims: Vec<(char, Option<i64>, usize)> = Vec::new();
    for (term, shape) in terms.iter().zip(shapes) {
        if let Some(c) = term.chars().find(|c| !c.is_ascii_alphabetic()) {
            return Err(format!(
                "equation '{equation}': '{c}' is not an axis letter"
            ));
        }
        if term.len() != shape.len() {
            return Err(format!(
                "equation '{equation}': term '{term}' has {} axes, its operand is {}",
                term.len(),
                shown(shape)
            ));
        }
        for (c, &d) in term.chars().zip(shape.iter()) {
            match dims.iter_mut().find(|(l, _, _)| *l == c) {
                Some((_, known, count)) => {
                    *count += 1;
                    match (*known, d) {
                        (Some(a), Some(b)) if a != b => {
                            return Err(format!(
                                "equation '{equation}': axis '{c}' is {a} in one operand and {b} in another"
                            ));
                        }
                        (None, d) => *known = d,
                        _ => {}
                    }
                }
                None => dims.push((c, d, 1)),
            }
        }
    }
    let output: Vec<char> = match rhs {
        Some(rhs) => rhs.chars().collect(),
        None => {
            let mut once: Vec<char> = dims
                .iter()
                .filter(|(_, _, count)| *count == 1)
                .map(|(c, _, _)| *c)
                .collect();
            once.sort_unstable();
            once
        }
    };
    let mut shape = Shape::new();
    for (i, c) in output.iter().enumerate() {
        if output[..i].contains(c) {
            return Err(format!(
                "equation '{equation}': output axis '{c}' appears twice"
            ));
        }
        let (_, d, _) = dims
            .iter()
            .find(|(l, _, _)| l == c)
            .ok_or_else(|| format!("equation '{equation}': output axis '{c}' is in no operand"))?;
        shape.push(*d);
    }
    Ok(shape)
}

#[cfg(test)]
mod tests {
    use crate::GraphBuilder;
    use crate::ir::{DataType, Dim};
    use crate::ops::testing::one_node;
    use crate::shapes::infer;

    #[test]
    fn matmul_broadcasts_its_batch_axes_as_numpy_does() {
        let product = |a: &[Option<i64>], b: &[Option<i64>]| {
            let mut g = GraphBuilder::new("g");
            let dims = |d: &[Option<i64>]| {
                d.iter()
                    .map(|d| d.map_or(Dim::Symbolic("N".into()), Dim::Fixed))
                    .collect()
            };
            let a = g.input("a", DataType::Float, dims(a));
            let b = g.input("b", DataType::Float, dims(b));
            let y = g.op("MatMul", &[&a, &b], vec![]);
            g.output(&y, DataType::Float, vec![]);
            infer(&g.finish()).map(|s| s[&y].shape.clone())
        };
        let (n, k) = (None, Some);
        assert_eq!(
            product(&[n, k(1), k(4), k(5)], &[k(3), k(5), k(2)]).unwrap(),
            [n, k(3), k(4), k(2)]
        );
        assert_eq!(
            product(&[k(4), k(5)], &[k(3), k(5), k(2)]).unwrap(),
            [k(3), k(4), k(2)]
        );
        assert_eq!(product(&[n, k(3), k(4)], &[k(4)]).unwrap(), [n, k(3)]);
        assert!(product(&[k(2), k(4), k(5)], &[k(3), k(5), k(2)]).is_err());
    }

    /// A channel shuffle exported at 28×28 (`[0, 2, 58, 28, 28]`: the batch copied, the

    #[test]
    fn einsum_shapes_follow_the_equation() {
        let (n, k) = (None, Some);
        let einsum = |equation: &str, operands: &[&[Option<i64>]]| {
            let operands: Vec<(DataType, &[Option<i64>])> =
                operands.iter().map(|s| (DataType::Float, *s)).collect();
            one_node(
                "Einsum",
                &operands,
                vec![("equation", crate::Attr::String(equation.into()))],
            )
            .map(|t| t.shape)
        };
        let q = [n, k(3), k(49), k(32)];
        let kk = [n, k(3), k(50), k(32)];
        let scores = [n, k(3), k(49), k(50)];
        assert_eq!(
            einsum("bhid,bhjd->bhij", &[&q, &kk]).unwrap(),
            [n, k(3), k(49), k(50)]
        );
        assert_eq!(
            einsum("bhij, bhjd -> bhid", &[&scores, &kk]).unwrap(),
            [n, k(3), k(49), k(32)]
        );
        assert_eq!(
            einsum("bij,bjk->bik", &[&[n, k(2), k(3)], &[n, k(3), k(4)]]).unwrap(),
            [n, k(2), k(4)]
        );
        // Implicit output: the letters that appear once, sorted (here a matrix product
        // whose output is transposed: "kj,ik" gives "ij").
        assert_eq!(
            einsum("kj,ik", &[&[k(3), k(4)], &[k(2), k(3)]]).unwrap(),
            [k(2), k(4)]
        );
        assert_eq!(einsum("ij->ji", &[&[k(2), k(5)]]).unwrap(), [k(5), k(2)]);
        assert_eq!(einsum("ii->i", &[&[k(3), k(3)]]).unwrap(), [k(3)]);
        assert_eq!(einsum("ij->", &[&[k(3), k(3)]]).unwrap(), []);
        // An unknown dimension takes the size the other operand states.
        assert_eq!(
            einsum("ij,jk->ik", &[&[k(2), n], &[k(3), k(4)]]).unwrap(),
            [k(2), k(4)]
        );

        for (equation, operands, says) in [
            ("...ij,...jk->...ik", vec![&q[..], &kk[..]], "'...'"),
            ("bhid,bhjd->bhij", vec![&q[..]], "names 2 operands"),
            ("bhi,bhjd->bhij", vec![&q[..], &kk[..]], "has 3 axes"),
            (
                "ij,jk->ik",
                vec![&[k(2), k(3)][..], &[k(4), k(5)][..]],
                "is 3",
            ),
            ("ij->iz", vec![&[k(2), k(3)][..]], "in no operand"),
            ("ij->ii", vec![&[k(2), k(3)][..]], "twice"),
        ] {
            let err = einsum(equation, &operands).unwrap_err().to_string();
            assert!(
                err.contains("Einsum") && err.contains(says),
                "{equation}: {err}"
            );
        }
    }
}
