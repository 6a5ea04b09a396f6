//! Dense layers. https://onnx.ai/onnx/operators/onnx__Gemm.html: Y = α·A'·B' + β·C with
//! A' = Aᵀ if transA, B' = Bᵀ if transB. dA' = α·G·B'ᵀ, dB' = α·A'ᵀ·G (transposed back when
//! the operand was), dC = β·G summed to C's shape.
//! https://onnx.ai/onnx/operators/onnx__MatMul.html: for rank-2 B and A of any rank,
//! dA = G·Bᵀ and dB = Σ over leading axes of Aᵀ·G; with a batched B the same products
//! over the last two axes, summed over broadcast axes.
//! https://onnx.ai/onnx/operators/onnx__Einsum.html with two operands, as exporters write
//! attention ("bhid,bhjd->bhij", "bhij,bhjd->bhid"): each operand's gradient is the Einsum
//! of G with the other operand back to its own letters ("bhij,bhjd->bhid" gives dQ of the
//! first). That holds when each term names an axis once and every axis of an operand is in
//! the other operand or the output (an axis summed within one operand would have to be
//! broadcast back); other forms are refused, naming the equation.

use ortl_onnx::Attr;
use ortl_onnx::builder::Gemm;

use crate::emit::{reshape, scalar, unbroadcast};
use crate::grad::{Ctx, Grads};

pub fn gemm(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let (a, b) = (ctx.input(0).to_string(), ctx.input(1).to_string());
    let trans_a = ctx.node.int("transA").unwrap_or(0) == 1;
    let trans_b = ctx.node.int("transB").unwrap_or(0) == 1;
    let alpha = ctx.node.float("alpha").unwrap_or(1.0);
    let beta = ctx.node.float("beta").unwrap_or(1.0);
    let attrs = |ta: bool, tb: bool| Gemm {
        trans_a: Some(ta),
        trans_b: Some(tb),
        alpha: Some(alpha),
        beta: None,
    };
    let da = ctx.if_needed(0, |ctx| {
        // A' = G·B'ᵀ; stored A = A' or A'ᵀ.
        Ok(if trans_a {
            ctx.b.gemm(&b, &g, None, &attrs(trans_b, true))
        } else {
            ctx.b.gemm(&g, &b, None, &attrs(false, !trans_b))
        })
    })?;
    let db = ctx.if_needed(1, |ctx| {
        Ok(if trans_b {
            ctx.b.gemm(&g, &a, None, &attrs(true, trans_a))
        } else {
            ctx.b.gemm(&a, &g, None, &attrs(!trans_a, false))
        })
    })?;
    let dc = ctx.if_needed(2, |ctx| {
        let out_shape = ctx.shape(ctx.output(0))?.clone();
        let c_shape = ctx.shape(ctx.input(2))?.clone();
        let scaled = if beta == 1.0 {
            g.clone()
        } else {
            let s = scalar(ctx.b, beta);
            ctx.b.mul(&g, &s)
        };
        Ok(unbroadcast(ctx.b, &scaled, &out_shape, &c_shape))
    })?;
    let mut out = vec![da, db];
    if ctx.node.inputs.len() > 2 {
        out.push(dc);
    }
    Ok(out)
}

pub fn matmul(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let (a, b) = (ctx.input(0).to_string(), ctx.input(1).to_string());
    let a_rank = ctx.shape(&a)?.len();
    let b_rank = ctx.shape(&b)?.len();
    if a_rank < 2 || b_rank < 2 {
        return Err(ctx.error("gradients are implemented for operands of rank ≥ 2"));
    }
    if b_rank > 2 {
        return batched_matmul(ctx, &g, &a, &b);
    }
    let da = ctx.if_needed(0, |ctx| {
        Ok(if a_rank == 2 {
            ctx.b.gemm(&g, &b, None, &Gemm::B_TRANSPOSED)
        } else {
            let bt = ctx.b.reverse_axes(&b);
            ctx.b.matmul(&g, &bt)
        })
    })?;
    let db = ctx.if_needed(1, |ctx| {
        let k = ctx.dims(&a)?[a_rank - 1];
        let n = ctx.dims(ctx.output(0))?[a_rank - 1];
        let a2 = reshape(ctx.b, &a, &[-1, k]);
        let g2 = reshape(ctx.b, &g, &[-1, n]);
        Ok(ctx.b.gemm(&a2, &g2, None, &Gemm::A_TRANSPOSED))
    })?;
    Ok(vec![da, db])
}

/// MatMul with a batched B (attention's Q·Kᵀ and P·V): dA = G·Bᵀ and dB = Aᵀ·G over the
/// last two axes, each summed over the axes its operand was broadcast along.
fn batched_matmul(ctx: &mut Ctx, g: &str, a: &str, b: &str) -> Grads {
    let a_shape = ctx.shape(a)?.clone();
    let b_shape = ctx.shape(b)?.clone();
    let out_shape = ctx.shape(ctx.output(0))?.clone();
    let batch = &out_shape[..out_shape.len() - 2];
    let swapped = |ctx: &mut Ctx, x: &str, rank: usize| {
        let mut perm: Vec<i64> = (0..rank as i64).collect();
        perm.swap(rank - 2, rank - 1);
        ctx.b.transpose(x, &perm)
    };
    let da = ctx.if_needed(0, |ctx| {
        let bt = swapped(ctx, b, b_shape.len());
        let full = ctx.b.matmul(g, &bt);
        let full_shape = [batch, &a_shape[a_shape.len() - 2..]].concat();
        Ok(unbroadcast(ctx.b, &full, &full_shape, &a_shape))
    })?;
    let db = ctx.if_needed(1, |ctx| {
        let at = swapped(ctx, a, a_shape.len());
        let full = ctx.b.matmul(&at, g);
        let full_shape = [batch, &b_shape[b_shape.len() - 2..]].concat();
        Ok(unbroadcast(ctx.b, &full, &full_shape, &b_shape))
    })?;
    Ok(vec![da, db])
}

pub fn einsum(ctx: &mut Ctx) -> Grads {
    let equation: String = match ctx.node.attr("equation") {
        Some(Attr::String(s)) => s.chars().filter(|c| !c.is_whitespace()).collect(),
        _ => return Err(ctx.error("Einsum without an equation")),
    };
    let (terms, output) = contraction(&equation).map_err(|why| {
        ctx.error(format!(
            "equation '{equation}': {why}; ortl differentiates two-operand contractions such as 'bhid,bhjd->bhij'"
        ))
    })?;
    let g = ctx.output_grad(0)?;
    let operands = [ctx.input(0).to_string(), ctx.input(1).to_string()];
    (0..2)
        .map(|i| {
            ctx.if_needed(i, |ctx| {
                let back = format!("{output},{}->{}", terms[1 - i], terms[i]);
                Ok(ctx.b.einsum(&back, &[&g, &operands[1 - i]]))
            })
        })
        .collect()
}

/// The two operands' terms and the output's of a two-operand `equation` (whitespace
/// removed) whose gradients are Einsums, or why not.
fn contraction(equation: &str) -> Result<([&str; 2], String), String> {
    if equation.contains('.') {
        return Err("'...' broadcasting".into());
    }
    let (lhs, rhs) = match equation.split_once("->") {
        Some((lhs, rhs)) => (lhs, Some(rhs)),
        None => (equation, None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    let &[a, b] = terms.as_slice() else {
        return Err(format!("{} operands", terms.len()));
    };
    let output = match rhs {
        Some(rhs) => rhs.to_string(),
        // Implicit: the letters that appear once, in alphabetical order.
        None => {
            let mut once: Vec<char> = lhs
                .chars()
                .filter(|&c| c != ',' && lhs.matches(c).count() == 1)
                .collect();
            once.sort_unstable();
            once.into_iter().collect()
        }
    };
    for term in [a, b, &output] {
        if let Some(c) = term.chars().find(|&c| term.matches(c).count() > 1) {
            return Err(format!("'{term}' names axis '{c}' twice"));
        }
    }
    for (term, other) in [(a, b), (b, a)] {
        if let Some(c) = term
            .chars()
            .find(|&c| !other.contains(c) && !output.contains(c))
        {
            return Err(format!("axis '{c}' is summed within one operand"));
        }
    }
    Ok(([a, b], output))
}

use super::Gradient::{self, Rule};

/// Every operator of the family (`ortl_onnx::ops::matmul` lists them too) and its gradient.
pub(super) const GRADIENTS: &[(&str, Gradient)] = &[
    ("Gemm", Rule(gemm)),
    ("MatMul", Rule(matmul)),
    ("Einsum", Rule(einsum)),
];
