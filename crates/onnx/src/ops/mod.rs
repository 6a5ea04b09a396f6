//! The operators ortl knows, one entry each ([`OpDef`]): name, domain, opsets, arity, shape
//! inference, constant folding and conversion to ortl's opset. Shape inference
//! ([`crate::shapes`]), folding ([`crate::fold`]) and opset conversion ([`crate::opset`])
//! look an operator up in a [`Registry`] and call its entry's functions.
//!
//! Entries are grouped by family, one file each, as `ortl_autodiff::rules` groups their
//! gradients: adding an operator is one entry (and its functions) in one of these files.
//! Crates above this one add their own operators to a registry of their own
//! (`Registry::standard().with(&[MY_OP])`), as `ortl_autodiff::batch_norm` does.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::OnnxError;
use crate::fold::{Folding, Rewire, Value};
use crate::ir::{Graph, Node, Tensor};
use crate::shapes::{Shape, TypedShape};

mod activation;
mod control;
mod conv;
mod elementwise;
mod matmul;
mod norm;
mod pool;
mod reduce;
mod resample;
mod shape;

/// Every family's operators.
const FAMILIES: &[&[OpDef]] = &[
    activation::OPS,
    control::OPS,
    conv::OPS,
    elementwise::OPS,
    matmul::OPS,
    norm::OPS,
    pool::OPS,
    reduce::OPS,
    resample::OPS,
    shape::OPS,
];

/// A node's output types and shapes from its inputs'.
pub type ShapeFn = fn(&Infer) -> Result<Vec<TypedShape>, OnnxError>;
/// Checks a node's attributes and input ranks before its shape function indexes by them.
pub type CheckFn = fn(&Check) -> Result<(), OnnxError>;
/// A node rewritten to its form in ortl's opset, from a graph written for opset `from`:
/// the nodes that replace it (constants it needs are added to the graph).
pub type ConvertFn = fn(&mut Graph, Node, i64) -> Result<Vec<Node>, OnnxError>;
/// The output shape of a node whose shape input is `Shape(like)`, computed at run time
/// (how gradients return to their operand's shape over any batch), from the values known
/// so far; `None` when the input is not such a shape.
pub(crate) type LikeFn = fn(&Graph, &Node, &HashMap<String, TypedShape>) -> Option<TypedShape>;
/// The node's outputs evaluated, where its inputs are known (shape arithmetic only).
pub(crate) type FoldFn = fn(&Folding) -> Option<Vec<Value>>;
/// The node's output types and shapes from its inputs' folded values, where shape inference,
/// needing constants, cannot say (a shape known but for a multiple of the batch).
pub(crate) type FoldedShapeFn = fn(&Folding) -> Option<Vec<TypedShape>>;
/// Rewrites a node whose target shape is computed as the batch followed by known sizes to
/// read a constant instead; `None` when the node's target is not such a value.
pub(crate) type RewireFn = fn(&mut Rewire) -> Option<()>;

/// The ONNX opsets that define an operator (or the versions of its own domain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opsets {
    pub since: i64,
    /// The last opset that has it, for one later opsets removed or replaced.
    pub until: Option<i64>,
}

impl Opsets {
    pub fn contains(&self, opset: i64) -> bool {
        opset >= self.since && self.until.is_none_or(|until| opset <= until)
    }
}

/// One operator: what it is and the functions each pass calls for it.
#[derive(Clone, Copy, Debug)]
pub struct OpDef {
    pub name: &'static str,
    /// `""` for ONNX's default domain.
    pub domain: &'static str,
    pub opsets: Opsets,
    /// The fewest inputs a node has: shape inference refuses a node with fewer, or with no
    /// output, before indexing by them.
    pub inputs: usize,
    /// The lowest rank of input 0 the shape function indexes by.
    pub min_rank: usize,
    /// The tensor a node holds (a Constant's), read unchecked: shape inference takes its
    /// type and shape, folding makes it an initializer.
    pub(crate) value: Option<fn(&Node) -> Option<Tensor>>,
    pub(crate) check: Option<CheckFn>,
    pub(crate) shape: Option<ShapeFn>,
    pub(crate) like: Option<LikeFn>,
    pub(crate) fold: Option<FoldFn>,
    pub(crate) folded_shape: Option<FoldedShapeFn>,
    pub(crate) rewire: Option<RewireFn>,
    pub(crate) convert: Option<ConvertFn>,
}

impl OpDef {
    /// An operator of ONNX's default domain, defined since opset 1, with one input or more;
    /// the builder methods below add the rest.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            domain: "",
            opsets: Opsets {
                since: 1,
                until: None,
            },
            inputs: 1,
            min_rank: 0,
            value: None,
            check: None,
            shape: None,
            like: None,
            fold: None,
            folded_shape: None,
            rewire: None,
            convert: None,
        }
    }

    pub const fn domain(self, domain: &'static str) -> Self {
        Self { domain, ..self }
    }

    pub const fn since(self, opset: i64) -> Self {
        Self {
            opsets: Opsets {
                since: opset,
                until: self.opsets.until,
            },
            ..self
        }
    }

    pub const fn until(self, opset: i64) -> Self {
        Self {
            opsets: Opsets {
                since: self.opsets.since,
                until: Some(opset),
            },
            ..self
        }
    }

    pub const fn inputs(self, inputs: usize) -> Self {
        Self { inputs, ..self }
    }

    pub const fn min_rank(self, min_rank: usize) -> Self {
        Self { min_rank, ..self }
    }

    pub const fn check(self, check: CheckFn) -> Self {
        Self {
            check: Some(check),
            ..self
        }
    }

    pub const fn shape(self, shape: ShapeFn) -> Self {
        Self {
            shape: Some(shape),
            ..self
        }
    }

    pub const fn convert(self, convert: ConvertFn) -> Self {
        Self {
            convert: Some(convert),
            ..self
        }
    }

    pub(crate) const fn value(self, value: fn(&Node) -> Option<Tensor>) -> Self {
        Self {
            value: Some(value),
            ..self
        }
    }

    pub(crate) const fn like(self, like: LikeFn) -> Self {
        Self {
            like: Some(like),
            ..self
        }
    }

    /// Folding covers ONNX's default domain only, whose operators this crate defines.
    pub(crate) const fn fold(self, fold: FoldFn) -> Self {
        Self {
            fold: Some(fold),
            ..self
        }
    }

    pub(crate) const fn folded_shape(self, folded_shape: FoldedShapeFn) -> Self {
        Self {
            folded_shape: Some(folded_shape),
            ..self
        }
    }

    pub(crate) const fn rewire(self, rewire: RewireFn) -> Self {
        Self {
            rewire: Some(rewire),
            ..self
        }
    }
}

/// Operators by name. Nodes are looked up by their operator's name alone, whatever their
/// domain, as ortl's passes have always matched them.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    ops: HashMap<&'static str, &'static OpDef>,
}

static STANDARD: LazyLock<Registry> = LazyLock::new(|| {
    FAMILIES
        .iter()
        .fold(Registry::default(), |registry, ops| registry.with(ops))
});

impl Registry {
    /// The ONNX operators ortl knows.
    pub fn standard() -> &'static Registry {
        &STANDARD
    }

    /// This registry and `ops`. Panics if an operator is registered twice: each has one
    /// entry.
    pub fn with(&self, ops: &'static [OpDef]) -> Registry {
        let mut registry = self.clone();
        for op in ops {
            let previous = registry.ops.insert(op.name, op);
            assert!(previous.is_none(), "operator {} registered twice", op.name);
        }
        registry
    }

    pub fn get(&self, op: &str) -> Option<&'static OpDef> {
        self.ops.get(op).copied()
    }

    /// Every operator, in no particular order.
    pub fn ops(&self) -> impl Iterator<Item = &'static OpDef> + '_ {
        self.ops.values().copied()
    }
}

/// What a shape function sees.
#[derive(Clone, Copy)]
pub struct Infer<'a> {
    pub graph: &'a Graph,
    pub node: &'a Node,
    /// Each input's type and shape, `None` where unknown (or an omitted optional input).
    pub inputs: &'a [Option<&'a TypedShape>],
    /// Input 0, which inference has found before calling the shape function.
    pub x: &'a TypedShape,
}

impl<'a> Infer<'a> {
    /// Input `i`, or an error naming the node when it is unknown.
    pub fn input(&self, i: usize) -> Result<&'a TypedShape, OnnxError> {
        self.inputs
            .get(i)
            .copied()
            .flatten()
            .ok_or_else(|| self.node.error(format!("input {i} has no known shape")))
    }

    /// A value of input 0's type with `shape`, whose unknown dimension is the inputs'.
    pub fn same(&self, shape: Shape) -> TypedShape {
        TypedShape {
            dtype: self.x.dtype,
            shape,
            batch_multiple: self.batch_multiple(),
        }
    }

    /// The multiple of the batch in the first input with an unknown dimension (1 where none
    /// has one): what an output that keeps that dimension holds there.
    pub fn batch_multiple(&self) -> i64 {
        self.inputs
            .iter()
            .flatten()
            .find(|input| input.shape.contains(&None))
            .map_or(1, |input| input.batch_multiple)
    }

    /// The rank of input 0.
    pub fn rank(&self) -> i64 {
        self.x.shape.len() as i64
    }

    /// An axis of input 0, negative ones counted from the end.
    pub fn axis_of(&self, a: i64) -> usize {
        if a < 0 {
            (a + self.rank()) as usize
        } else {
            a as usize
        }
    }
}

/// What a check function sees: the node and its inputs' types and shapes (input 0 may be
/// unknown).
#[derive(Clone, Copy)]
pub struct Check<'a> {
    pub node: &'a Node,
    pub inputs: &'a [Option<&'a TypedShape>],
}

impl Check<'_> {
    pub fn rank_of(&self, i: usize) -> Option<usize> {
        self.inputs.get(i).copied().flatten().map(|t| t.shape.len())
    }

    /// The rank of input 0, 0 when unknown.
    pub fn rank(&self) -> usize {
        self.rank_of(0).unwrap_or(0)
    }

    /// An error unless axis `a` lies in `-limit..limit`.
    pub fn in_range(&self, a: i64, limit: usize) -> Result<(), OnnxError> {
        let limit = limit as i64;
        if a < -limit || a >= limit {
            return Err(self
                .node
                .error(format!("axis {a} is out of range for rank {limit}")));
        }
        Ok(())
    }
}

/// The shape function of operators whose output is input 0's type and shape.
pub fn same_shape(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    Ok(vec![cx.same(cx.x.shape.clone())])
}

/// The check of operators along one `axis` (0 by default) of input 0.
fn check_axis(cx: &Check) -> Result<(), OnnxError> {
    cx.in_range(cx.node.int("axis").unwrap_or(0), cx.rank().max(1))
}

#[cfg(test)]
pub(crate) mod testing {
    //! One node built over given inputs, for the families' tests.

    use crate::ir::{DataType, Dim, Tensor};
    use crate::shapes::{TypedShape, infer};
    use crate::{Attr, GraphBuilder, OnnxError};

    pub fn dims(d: &[Option<i64>]) -> Vec<Dim> {
        d.iter()
            .map(|d| d.map_or(Dim::Symbolic("N".into()), Dim::Fixed))
            .collect()
    }

    /// One node over inputs of these types and shapes: its first output's type and shape.
    pub fn one_node(
        op: &str,
        operands: &[(DataType, &[Option<i64>])],
        attrs: Vec<(&str, Attr)>,
    ) -> Result<TypedShape, OnnxError> {
        let mut b = GraphBuilder::new("g");
        let names: Vec<String> = operands
            .iter()
            .enumerate()
            .map(|(i, (dtype, shape))| b.input(&format!("x{i}"), *dtype, dims(shape)))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let y = b.op(op, &refs, attrs);
        b.output(&y, DataType::Float, vec![]);
        infer(&b.finish()).map(|s| s[&y].clone())
    }

    /// One node over constants, folded: its output tensor.
    pub fn folded(op: &str, operands: &[Tensor], attrs: Vec<(&str, Attr)>) -> Tensor {
        let mut b = GraphBuilder::new("fold");
        let names: Vec<String> = operands
            .iter()
            .map(|t| b.op("Constant", &[], vec![("value", Attr::Tensor(t.clone()))]))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let y = b.op(op, &refs, attrs);
        b.output(&y, DataType::Float, vec![]);
        let mut graph = b.finish();
        crate::fold::fold(&mut graph);
        assert!(graph.nodes.is_empty(), "{op} was not folded");
        graph.initializers[&y].clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ortl writes opset 17: an operator outside it must have a conversion into it.
    #[test]
    fn every_operator_outside_ortls_opset_converts_into_it() {
        for op in Registry::standard().ops() {
            if !op.opsets.contains(crate::OPSET) {
                assert!(op.convert.is_some(), "{} has no conversion", op.name);
            }
        }
    }

    #[test]
    #[should_panic(expected = "operator Relu registered twice")]
    fn an_operator_registers_once() {
        const RELU: OpDef = OpDef::new("Relu");
        Registry::standard().with(&[RELU]);
    }
}
