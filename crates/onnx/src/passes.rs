//! Whole-graph checks and rewrites: validation, topological order, dead-node removal,
//! merging of repeated computations.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::OnnxError;
use crate::ir::Graph;

/// Checks that every value read is defined once, by an input, an initializer or an earlier
/// node, and that every output is defined.
pub fn validate(graph: &Graph) -> Result<(), OnnxError> {
    let mut defined: HashSet<&str> = graph.inputs.iter().map(|i| i.name.as_str()).collect();
    defined.extend(graph.initializers.keys().map(String::as_str));
    for node in &graph.nodes {
        for input in node.inputs.iter().filter(|i| !i.is_empty()) {
            if !defined.contains(input.as_str()) {
                return Err(node.error(format!("reads '{input}', which nothing defines before it")));
            }
        }
        for output in node.outputs.iter().filter(|o| !o.is_empty()) {
            if !defined.insert(output) {
                return Err(node.error(format!("defines '{output}', which is already defined")));
            }
        }
    }
    for output in &graph.outputs {
        if !defined.contains(output.name.as_str()) {
            return Err(OnnxError::Graph(format!(
                "output '{}' is not produced by any node",
                output.name
            )));
        }
    }
    Ok(())
}

/// Reorders nodes so that each comes after the producers of its inputs (stable: nodes keep
/// their relative order where dependencies allow).
pub fn toposort(graph: &mut Graph) -> Result<(), OnnxError> {
    let producer: HashMap<&str, usize> = graph
        .nodes
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.outputs.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let deps: Vec<BTreeSet<usize>> = graph
        .nodes
        .iter()
        .map(|n| {
            n.inputs
                .iter()
                .filter_map(|i| producer.get(i.as_str()).copied())
                .collect()
        })
        .collect();
    let mut order = Vec::with_capacity(graph.nodes.len());
    let mut state = vec![0u8; graph.nodes.len()]; // 0 new, 1 on stack, 2 done
    for start in 0..graph.nodes.len() {
        let mut stack = vec![(start, false)];
        while let Some((node, expanded)) = stack.pop() {
            if expanded {
                state[node] = 2;
                order.push(node);
                continue;
            }
            match state[node] {
                2 => continue,
                1 => return Err(graph.nodes[node].error("is part of a cycle")),
                _ => {}
            }
            state[node] = 1;
            stack.push((node, true));
            for &dep in deps[node].iter().rev() {
                if state[dep] == 1 {
                    return Err(graph.nodes[dep].error("is part of a cycle"));
                }
                if state[dep] == 0 {
                    stack.push((dep, false));
                }
            }
        }
    }
    let mut nodes: Vec<Option<_>> = std::mem::take(&mut graph.nodes)
        .into_iter()
        .map(Some)
        .collect();
    graph.nodes = order
        .into_iter()
        .map(|i| nodes[i].take().expect("each node once"))
        .collect();
    Ok(())
}

/// Removes nodes whose outputs no graph output needs, then unused initializers and inputs
/// that are initializers. Returns the number of nodes removed.
pub fn prune(graph: &mut Graph) -> usize {
    let mut needed: HashSet<String> = graph.outputs.iter().map(|o| o.name.clone()).collect();
    let mut keep = vec![false; graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate().rev() {
        if node.outputs.iter().any(|o| needed.contains(o)) {
            keep[i] = true;
            needed.extend(node.inputs.iter().filter(|s| !s.is_empty()).cloned());
        }
    }
    let before = graph.nodes.len();
    let mut flags = keep.into_iter();
    graph.nodes.retain(|_| flags.next().unwrap_or(false));
    graph.initializers.retain(|name, _| needed.contains(name));
    graph.inputs.retain(|i| needed.contains(&i.name));
    graph.value_info.retain(|v| needed.contains(&v.name));
    before - graph.nodes.len()
}

/// Operators whose outputs differ between two evaluations of the same inputs.
const RANDOM: &[&str] = &[
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
    "Dropout",
];

/// Merges nodes that compute the same thing — same operator, attributes and inputs (after
/// earlier merges) — into the first of them, whose outputs the later ones' readers then
/// read: a gradient graph repeats work per reader of a value (each convolution reading one
/// activation transposes it for its own weight gradient). Random operators and nodes that
/// write a graph output stay. Sorts the graph first; returns the number of nodes removed.
pub fn merge_duplicates(graph: &mut Graph) -> Result<usize, OnnxError> {
    toposort(graph)?;
    let outputs: HashSet<&str> = graph.outputs.iter().map(|o| o.name.as_str()).collect();
    // Key of the first node computing something → its outputs; a later copy's outputs →
    // the first's.
    let mut first: HashMap<String, &[String]> = HashMap::new();
    let mut merged: HashMap<String, String> = HashMap::new();
    let mut keep = vec![true; graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        if RANDOM.contains(&node.op.as_str())
            || node.outputs.is_empty()
            || node.outputs.iter().any(|o| outputs.contains(o.as_str()))
        {
            continue;
        }
        let inputs: Vec<&str> = node
            .inputs
            .iter()
            .map(|v| merged.get(v).unwrap_or(v).as_str())
            .collect();
        // Attributes in their (sorted) debug form: equal forms mean equal attributes. The
        // outputs asked for count too (MaxPool with or without its indices).
        let asked: String = node
            .outputs
            .iter()
            .map(|o| if o.is_empty() { '-' } else { 'o' })
            .collect();
        let key = format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{asked}\u{1f}{:?}",
            node.domain,
            node.op,
            inputs.join("\u{1f}"),
            node.attrs
        );
        match first.get(&key) {
            Some(original) => {
                keep[i] = false;
                for (output, kept) in node.outputs.iter().zip(original.iter()) {
                    if !output.is_empty() {
                        merged.insert(output.clone(), kept.clone());
                    }
                }
            }
            None => {
                first.insert(key, &node.outputs);
            }
        }
    }
    for node in &mut graph.nodes {
        for input in &mut node.inputs {
            if let Some(kept) = merged.get(input.as_str()) {
                *input = kept.clone();
            }
        }
    }
    let before = graph.nodes.len();
    let mut flags = keep.into_iter();
    graph.nodes.retain(|_| flags.next().unwrap_or(true));
    graph.value_info.retain(|v| !merged.contains_key(&v.name));
    Ok(before - graph.nodes.len())
}

/// Makes `value` a graph input described by `info`, dropping everything that only served
/// to compute it (the first half of a split graph).
pub fn start_at(graph: &mut Graph, info: crate::ValueInfo) {
    graph.nodes.retain(|n| !n.outputs.contains(&info.name));
    graph.inputs.push(info);
    prune(graph);
}

/// Makes `info` the only graph output, dropping everything it does not need (the second
/// half of a split graph).
pub fn end_at(graph: &mut Graph, info: crate::ValueInfo) {
    graph.outputs = vec![info];
    prune(graph);
}

/// Renames a value everywhere it is read or written (node ports, graph inputs/outputs,
/// value infos, initializers).
pub fn rename_value(graph: &mut Graph, from: &str, to: &str) {
    if from == to {
        return;
    }
    for node in &mut graph.nodes {
        for port in node.inputs.iter_mut().chain(node.outputs.iter_mut()) {
            if port == from {
                *port = to.to_string();
            }
        }
    }
    for info in graph
        .inputs
        .iter_mut()
        .chain(&mut graph.outputs)
        .chain(&mut graph.value_info)
    {
        if info.name == from {
            info.name = to.to_string();
        }
    }
    if let Some(tensor) = graph.initializers.remove(from) {
        graph.initializers.insert(to.to_string(), tensor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GraphBuilder;
    use crate::ir::{DataType, Dim, Tensor};

    fn chain() -> Graph {
        let mut b = GraphBuilder::new("g");
        let x = b.input("x", DataType::Float, vec![Dim::Fixed(2)]);
        let w = b.param("w", Tensor::f32(&[2], vec![1., 2.]));
        let unused = b.param("unused", Tensor::f32(&[1], vec![0.]));
        let y = b.mul(&x, &w);
        let _dead = b.add(&y, &unused);
        let z = b.relu(&y);
        b.output(&z, DataType::Float, vec![Dim::Fixed(2)]);
        b.finish()
    }

    #[test]
    fn prune_removes_dead_nodes_and_their_initializers() {
        let mut g = chain();
        assert_eq!(prune(&mut g), 1);
        assert_eq!(
            g.nodes.iter().map(|n| n.op.as_str()).collect::<Vec<_>>(),
            ["Mul", "Relu"]
        );
        assert!(g.initializers.contains_key("w") && !g.initializers.contains_key("unused"));
        assert_eq!(g.inputs.len(), 1);
        validate(&g).unwrap();
    }

    #[test]
    fn repeated_computations_merge_into_the_first() {
        let mut b = GraphBuilder::new("g");
        let x = b.input("x", DataType::Float, vec![Dim::Fixed(2), Dim::Fixed(3)]);
        let t1 = b.transpose(&x, &[1, 0]);
        let t2 = b.transpose(&x, &[1, 0]);
        let other = b.transpose(&x, &[0, 1]);
        // Equal once their inputs are merged.
        let r1 = b.relu(&t1);
        let r2 = b.relu(&t2);
        let sum = b.sum(&[&r1, &r2, &other]);
        // Not the same: one also asks for an optional output.
        let pool = vec![("kernel_shape", crate::builder::ints(&[1]))];
        let pooled = b.op("MaxPool", &[&x], pool.clone());
        b.graph_mut().nodes.push(crate::ir::Node {
            name: "pool_with_indices".into(),
            op: "MaxPool".into(),
            domain: String::new(),
            inputs: vec![x.clone()],
            outputs: vec!["pooled2".into(), "indices".into()],
            attrs: pool.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        });
        let indices = b.cast("indices", DataType::Float);
        let both = b.sum(&[&pooled, "pooled2", &indices]);
        b.output(&both, DataType::Float, vec![]);
        // A node that writes a graph output stays, and so does a random one.
        let out = b.relu(&t1);
        let noise = b.op("RandomNormalLike", &[&sum], vec![]);
        let noise2 = b.op("RandomNormalLike", &[&sum], vec![]);
        let noisy = b.add(&noise, &noise2);
        b.output(&noisy, DataType::Float, vec![]);
        b.output(&out, DataType::Float, vec![]);
        let mut g = b.finish();
        assert_eq!(merge_duplicates(&mut g).unwrap(), 2);
        validate(&g).unwrap();
        let sum_node = g.nodes.iter().find(|n| n.op == "Sum").unwrap();
        assert_eq!(sum_node.inputs, [r1.clone(), r1, other]);
        assert_eq!(
            g.nodes
                .iter()
                .filter(|n| n.op == "RandomNormalLike")
                .count(),
            2
        );
        assert!(g.nodes.iter().any(|n| n.outputs == [out.clone()]));
    }

    #[test]
    fn toposort_restores_order_and_validate_catches_disorder() {
        let mut g = chain();
        g.nodes.reverse();
        assert!(
            validate(&g)
                .unwrap_err()
                .to_string()
                .contains("nothing defines")
        );
        toposort(&mut g).unwrap();
        validate(&g).unwrap();
        let mut cyclic = chain();
        cyclic.nodes[0].inputs[0] = cyclic.nodes[2].outputs[0].clone();
        assert!(
            toposort(&mut cyclic)
                .unwrap_err()
                .to_string()
                .contains("cycle")
        );
    }
}
