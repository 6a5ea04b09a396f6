//! A small wiring API for building graphs by hand: every call returns the name of the value
//! it creates, names are unique and readable (`layer1.0/Conv_12`), and parameters keep the
//! names they are given so pretrained weights map onto them.

use std::collections::{BTreeMap, HashSet};

use crate::ir::{Attr, DataType, Dim, Graph, Node, Tensor, ValueInfo};

mod typed;
pub use typed::{Conv, Gemm, Pool};

pub struct GraphBuilder {
    graph: Graph,
    counter: usize,
    scope: Vec<String>,
    /// Node and value names already in the graph: generated names skip them, so building on
    /// an imported graph (whose names may follow the same `Op_N` pattern) never collides.
    taken: HashSet<String>,
}

impl GraphBuilder {
    pub fn new(name: &str) -> Self {
        Self {
            graph: Graph {
                name: name.into(),
                ..Graph::default()
            },
            counter: 0,
            scope: Vec::new(),
            taken: HashSet::new(),
        }
    }

    /// Continues building on an existing graph (e.g. adding a head to an imported backbone).
    pub fn from_graph(graph: Graph) -> Self {
        let counter = graph.nodes.len();
        let mut taken: HashSet<String> = graph.initializers.keys().cloned().collect();
        taken.extend(
            graph
                .inputs
                .iter()
                .chain(&graph.outputs)
                .map(|v| v.name.clone()),
        );
        for node in &graph.nodes {
            taken.insert(node.name.clone());
            taken.extend(node.outputs.iter().cloned());
        }
        Self {
            graph,
            counter,
            scope: Vec::new(),
            taken,
        }
    }

    /// Runs `f` with `name` appended to the scope that prefixes generated names.
    pub fn scoped<T>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        self.scope.push(name.into());
        let out = f(self);
        self.scope.pop();
        out
    }

    fn fresh(&mut self, stem: &str) -> String {
        loop {
            self.counter += 1;
            let name = if self.scope.is_empty() {
                format!("{stem}_{}", self.counter)
            } else {
                format!("{}/{stem}_{}", self.scope.join("/"), self.counter)
            };
            if !self.taken.contains(&name) {
                return name;
            }
        }
    }

    /// Declares a graph input fed by the caller.
    pub fn input(&mut self, name: &str, dtype: DataType, shape: Vec<Dim>) -> String {
        self.graph.inputs.push(ValueInfo::new(name, dtype, shape));
        name.into()
    }

    /// Declares `value` a graph output.
    pub fn output(&mut self, value: &str, dtype: DataType, shape: Vec<Dim>) {
        self.graph.outputs.push(ValueInfo::new(value, dtype, shape));
    }

    /// A named initializer (a parameter or a buffer such as BN running statistics).
    pub fn param(&mut self, name: &str, tensor: Tensor) -> String {
        let previous = self.graph.initializers.insert(name.into(), tensor);
        assert!(previous.is_none(), "parameter '{name}' defined twice");
        name.into()
    }

    /// An anonymous constant initializer.
    pub fn constant(&mut self, tensor: Tensor) -> String {
        let name = self.fresh("const");
        self.graph.initializers.insert(name.clone(), tensor);
        name
    }

    /// Adds a one-output node and returns its output's name. The typed methods (`add`,
    /// `conv`, …, in `typed.rs`) are the way to emit an operator ortl chooses; this string
    /// form is for operators that are data: nodes copied through from an imported graph.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        self.op_n(op, inputs, 1, attrs).remove(0)
    }

    /// Adds a node with `outputs` outputs and returns their names.
    pub fn op_n(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: usize,
        attrs: Vec<(&str, Attr)>,
    ) -> Vec<String> {
        let name = self.fresh(op);
        let outs: Vec<String> = if outputs == 1 {
            vec![name.clone()]
        } else {
            (0..outputs).map(|i| format!("{name}:{i}")).collect()
        };
        self.graph.nodes.push(Node {
            name,
            op: op.into(),
            domain: String::new(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: outs.clone(),
            attrs: attrs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<BTreeMap<_, _>>(),
        });
        outs
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Direct access for rewrites that replace nodes in place.
    pub fn graph_mut(&mut self) -> &mut Graph {
        &mut self.graph
    }

    pub fn finish(self) -> Graph {
        self.graph
    }
}

/// Shorthands for attribute lists.
pub fn ints(values: &[i64]) -> Attr {
    Attr::Ints(values.to_vec())
}

pub fn int(value: i64) -> Attr {
    Attr::Int(value)
}

pub fn float(value: f32) -> Attr {
    Attr::Float(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn building_on_a_pruned_graph_never_reuses_a_name() {
        let mut b = GraphBuilder::new("g");
        let x = b.input("x", DataType::Float, vec![Dim::Fixed(2)]);
        let first = b.op("Relu", &[&x], vec![]);
        let second = b.op("Relu", &[&first], vec![]);
        assert_eq!(second, "Relu_2");
        let mut graph = b.finish();
        // One node left, named Relu_2: a counter restarted from the node count would say 2.
        graph.nodes.remove(0);
        graph.nodes[0].inputs = vec![x.clone()];
        let mut b = GraphBuilder::from_graph(graph);
        let third = b.op("Relu", &[&second], vec![]);
        assert_ne!(third, "Relu_2");
        let names: HashSet<&str> = b.graph().nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names.len(), 2);
    }
}
