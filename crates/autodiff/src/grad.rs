//! Reverse-mode differentiation. The forward graph is in a [`GraphBuilder`]; backward ops
//! are appended to it. A value is differentiated only if it lies on a path from a trainable
//! parameter to the loss, so frozen layers cost nothing in the backward pass.

use std::collections::{BTreeMap, HashMap, HashSet};

use ortl_onnx::shapes::{Shape, TypedShape};
use ortl_onnx::{GraphBuilder, Node};

use crate::rules;

#[derive(Debug, thiserror::Error)]
pub enum AutodiffError {
    #[error("node '{node}' ({op}): no gradient rule for {op}; ortl differentiates {}", rules::SUPPORTED.join(", "))]
    NoRule { node: String, op: String },
    #[error("node '{node}' ({op}): {message}")]
    Rule {
        node: String,
        op: String,
        message: String,
    },
    #[error("parameter '{0}' does not affect the loss; freeze it or check the graph")]
    Unused(String),
    #[error("value '{0}' has no inferred shape")]
    NoShape(String),
}

/// The gradient value of each parameter.
#[derive(Clone, Debug, Default)]
pub struct Gradients {
    pub of: BTreeMap<String, String>,
}

/// What a rule returns: one gradient per input of the node, `None` where the input needs
/// none.
pub type Grads = Result<Vec<Option<String>>, AutodiffError>;

/// What a rule sees: the forward node, shapes, the gradients of the node's outputs, which
/// inputs need a gradient, and the builder to emit into.
pub struct Ctx<'a> {
    pub b: &'a mut GraphBuilder,
    pub node: &'a Node,
    pub shapes: &'a HashMap<String, TypedShape>,
    /// The gradient of each output, `None` where the output does not reach the loss.
    pub output_grads: &'a [Option<String>],
    pub needs: Vec<bool>,
}

impl Ctx<'_> {
    /// The gradient of output `i`, which the rule cannot do without.
    pub fn output_grad(&self, i: usize) -> Result<String, AutodiffError> {
        self.output_grads[i]
            .clone()
            .ok_or_else(|| self.error("no gradient for the output"))
    }

    /// Whether input `i` needs a gradient (false for an optional input the node lacks).
    pub fn needs_grad(&self, i: usize) -> bool {
        self.needs.get(i).copied().unwrap_or(false)
    }

    /// Input `i`'s gradient from `grad`, emitted only if the input needs one.
    pub fn if_needed(
        &mut self,
        i: usize,
        grad: impl FnOnce(&mut Self) -> Result<String, AutodiffError>,
    ) -> Result<Option<String>, AutodiffError> {
        if self.needs_grad(i) {
            grad(self).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn input(&self, i: usize) -> &str {
        &self.node.inputs[i]
    }

    pub fn output(&self, i: usize) -> &str {
        &self.node.outputs[i]
    }

    pub fn shape(&self, value: &str) -> Result<&Shape, AutodiffError> {
        self.shapes
            .get(value)
            .map(|t| &t.shape)
            .ok_or_else(|| AutodiffError::NoShape(value.into()))
    }

    /// Static dimensions of `value`, -1 for the batch's (a multiple of it, on any axis:
    /// attention's `[3, N, heads, T, d]`); failing if another is unknown.
    pub fn dims(&self, value: &str) -> Result<Vec<i64>, AutodiffError> {
        let typed = self
            .shapes
            .get(value)
            .ok_or_else(|| AutodiffError::NoShape(value.into()))?;
        let (shape, batch) = (&typed.shape, typed.batch_axis().unwrap_or(0));
        shape
            .iter()
            .enumerate()
            .map(|(i, d)| d.or(if i == batch { Some(-1) } else { None }))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                self.error(format!(
                    "'{value}' needs static dimensions beside the batch, got {}",
                    typed.shown()
                ))
            })
    }

    pub fn error(&self, message: impl Into<String>) -> AutodiffError {
        AutodiffError::Rule {
            node: self.node.name.clone(),
            op: self.node.op.clone(),
            message: message.into(),
        }
    }
}

/// The last node (in graph order) through which gradients from `target` to `wrt` would
/// have to flow but that has no gradient rule: the layers before it cannot train, those
/// after it can. `nodes` must be sorted.
pub fn first_without_rule<'a>(nodes: &'a [Node], wrt: &[String], target: &str) -> Option<&'a Node> {
    let reach = Reach::of(nodes, wrt, target);
    nodes.iter().rev().find(|node| {
        node.outputs
            .iter()
            .any(|o| reach.leads.contains(o.as_str()))
            && rules::rule(&node.op).is_none()
            && rules::is_differentiable(&node.op)
            && node
                .inputs
                .iter()
                .any(|i| reach.depends.contains(i.as_str()))
    })
}

/// Which values lie between the parameters and the loss. `nodes` must be sorted.
struct Reach<'a> {
    /// Values that depend on a parameter through differentiable operators.
    depends: HashSet<&'a str>,
    /// Values the loss depends on.
    leads: HashSet<&'a str>,
}

impl<'a> Reach<'a> {
    fn of(nodes: &'a [Node], wrt: &'a [String], target: &'a str) -> Self {
        let mut depends: HashSet<&str> = wrt.iter().map(String::as_str).collect();
        for node in nodes {
            if rules::is_differentiable(&node.op)
                && node.inputs.iter().any(|i| depends.contains(i.as_str()))
            {
                depends.extend(node.outputs.iter().map(String::as_str));
            }
        }
        let mut leads: HashSet<&str> = HashSet::from([target]);
        for node in nodes.iter().rev() {
            if node.outputs.iter().any(|o| leads.contains(o.as_str())) {
                leads.extend(node.inputs.iter().map(String::as_str));
            }
        }
        Self { depends, leads }
    }

    /// Whether a gradient must flow through `value`.
    fn active(&self, value: &str) -> bool {
        self.depends.contains(value) && self.leads.contains(value)
    }
}

/// Appends to `b` the gradients of the scalar `loss` with respect to `wrt`.
pub fn gradients(
    b: &mut GraphBuilder,
    loss: &str,
    wrt: &[String],
    shapes: &HashMap<String, TypedShape>,
) -> Result<Gradients, AutodiffError> {
    let forward: Vec<Node> = b.graph().nodes.clone();

    let reach = Reach::of(&forward, wrt, loss);

    let mut contributions: HashMap<String, Vec<String>> = HashMap::new();
    let one = b.scoped("grad", |b| crate::emit::scalar(b, 1.0));
    contributions.insert(loss.into(), vec![one]);

    for node in forward.iter().rev() {
        if !node.outputs.iter().any(|o| contributions.contains_key(o)) {
            continue;
        }
        let needs: Vec<bool> = node
            .inputs
            .iter()
            .map(|i| !i.is_empty() && reach.active(i))
            .collect();
        if !needs.iter().any(|&n| n) {
            continue;
        }
        let grads_out: Vec<Option<String>> = node
            .outputs
            .iter()
            .map(|o| contributions.remove(o).map(|parts| sum(b, parts)))
            .collect();
        let rule = rules::rule(&node.op).ok_or_else(|| AutodiffError::NoRule {
            node: node.name.clone(),
            op: node.op.clone(),
        })?;
        let grads_in = b.scoped(&format!("grad/{}", node.name), |b| {
            let mut ctx = Ctx {
                b,
                node,
                shapes,
                output_grads: &grads_out,
                needs: needs.clone(),
            };
            rule(&mut ctx)
        })?;
        for ((input, grad), need) in node.inputs.iter().zip(grads_in).zip(needs) {
            if let (Some(grad), true) = (grad, need) {
                contributions.entry(input.clone()).or_default().push(grad);
            }
        }
    }

    let mut result = Gradients::default();
    for param in wrt {
        let parts = contributions
            .remove(param)
            .ok_or_else(|| AutodiffError::Unused(param.clone()))?;
        let grad = sum(b, parts);
        result.of.insert(param.clone(), grad);
    }
    Ok(result)
}

/// Adds up gradient contributions (one needs no op).
fn sum(b: &mut GraphBuilder, mut parts: Vec<String>) -> String {
    if parts.len() == 1 {
        return parts.remove(0);
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    b.sum(&refs)
}
