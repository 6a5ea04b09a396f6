//! Which nodes of a graph ONNX Runtime's CUDA execution provider has no kernel for.
//!
//! A node without a CUDA kernel for its operator, opset and input types does not fail: ONNX
//! Runtime quietly runs it on the CPU and copies its inputs and outputs across the bus on
//! every run. ortl checks its graphs against the provider's kernel table (kept as data,
//! `data/cuda-kernels.tsv`, transcribed from ONNX Runtime's `docs/OperatorKernels.md`) in its
//! tests, and warns at run time when a graph sent to CUDA has such nodes.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use ortl_onnx::{Attr, DataType, Graph, Model};

const CUDA_TABLE: &str = include_str!("../data/cuda-kernels.tsv");

/// One registered kernel: an operator over a range of opsets, its inputs' type constraints
/// and the types each constraint admits.
#[derive(Clone, Debug)]
struct Kernel {
    since: i64,
    until: Option<i64>,
    /// Input name and constraint (or fixed type), in order; the last one repeats for
    /// variadic inputs.
    inputs: Vec<(String, String)>,
    types: BTreeMap<String, Vec<String>>,
}

/// The kernels of one execution provider, by operator (default ONNX domain only).
#[derive(Debug)]
pub struct KernelTable {
    kernels: HashMap<String, Vec<Kernel>>,
}

/// A node the provider has no kernel for, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    pub node: String,
    pub op: String,
    pub reason: String,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.node, self.op, self.reason)
    }
}

/// ONNX Runtime's CUDA provider (the release in [`crate::ORT_VERSION`]'s line).
pub fn cuda() -> &'static KernelTable {
    static TABLE: OnceLock<KernelTable> = OnceLock::new();
    TABLE.get_or_init(|| KernelTable::parse(CUDA_TABLE).expect("the bundled table parses"))
}

impl KernelTable {
    /// Parses the tab-separated table (see the header of `data/cuda-kernels.tsv`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut kernels: HashMap<String, Vec<Kernel>> = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |what: &str| format!("kernel table line {}: {what}: {line}", number + 1);
            let fields: Vec<&str> = line.split('\t').collect();
            let [op, since, until, inputs, constraints @ ..] = fields.as_slice() else {
                return Err(bad("expected at least four tab-separated fields"));
            };
            let since = since.parse().map_err(|_| bad("bad first opset"))?;
            let until = match *until {
                "" => None,
                text => Some(text.parse().map_err(|_| bad("bad last opset"))?),
            };
            let rows = kernels.entry(op.to_string()).or_default();
            let inputs: Vec<(String, String)> = if inputs.is_empty() {
                // Same inputs as the operator's previous (newer) row.
                rows.last()
                    .map(|k| k.inputs.clone())
                    .ok_or_else(|| bad("the first row of an operator must list its inputs"))?
            } else {
                inputs
                    .split(',')
                    .map(|pair| {
                        pair.split_once(':')
                            .map(|(n, c)| (n.to_string(), c.to_string()))
                            .ok_or_else(|| bad("inputs are NAME:CONSTRAINT"))
                    })
                    .collect::<Result<_, _>>()?
            };
            let mut types = BTreeMap::new();
            for constraint in constraints {
                let (name, list) = constraint
                    .split_once('=')
                    .ok_or_else(|| bad("constraints are NAME=type,type"))?;
                types.insert(
                    name.to_string(),
                    list.split(',').map(str::to_string).collect(),
                );
            }
            rows.push(Kernel {
                since,
                until,
                inputs,
                types,
            });
        }
        Ok(Self { kernels })
    }

    /// Every node of `model` this provider has no kernel for (the graph must be sorted).
    pub fn gaps(&self, model: &Model) -> Vec<Gap> {
        let opset = model.opset().unwrap_or(ortl_onnx::OPSET);
        let graph = &model.graph;
        let types = element_types(graph);
        let mut gaps = Vec::new();
        for node in &graph.nodes {
            // ONNX Runtime folds Constant nodes into initializers before placing nodes.
            if node.op == "Constant" && node.domain.is_empty() {
                continue;
            }
            let gap = |reason: String| Gap {
                node: node.name.clone(),
                op: node.op.clone(),
                reason,
            };
            if !node.domain.is_empty() && node.domain != "ai.onnx" {
                gaps.push(gap(format!(
                    "domain {} has no CUDA kernels here",
                    node.domain
                )));
                continue;
            }
            let Some(rows) = self.kernels.get(&node.op) else {
                gaps.push(gap("no CUDA kernel for this operator".into()));
                continue;
            };
            let Some(kernel) = rows
                .iter()
                .find(|k| k.since <= opset && k.until.is_none_or(|u| opset <= u))
            else {
                gaps.push(gap(format!("no CUDA kernel at opset {opset}")));
                continue;
            };
            for (i, input) in node.inputs.iter().enumerate() {
                let Some(dtype) = types.get(input).copied() else {
                    continue;
                };
                let Some((param, constraint)) =
                    kernel.inputs.get(i).or(kernel.inputs.last()).cloned()
                else {
                    continue;
                };
                let name = type_name(dtype);
                let allowed = match kernel.types.get(&constraint) {
                    Some(list) => list.iter().any(|t| t == name),
                    // A fixed type written in place of a constraint (`shape:int64`).
                    None if is_type_name(&constraint) => constraint == name,
                    // A constraint the table does not restrict (outputs only).
                    None => true,
                };
                if !allowed {
                    gaps.push(gap(format!(
                        "input {i} ({param} = '{input}') is {name}, which the CUDA kernel at opset {opset} does not take"
                    )));
                }
            }
        }
        gaps
    }
}

/// The element type of every value, propagated through the nodes in order (types only:
/// unlike shape inference this needs no rule per operator beyond the few that change type).
pub fn element_types(graph: &Graph) -> HashMap<String, DataType> {
    let mut types: HashMap<String, DataType> = HashMap::new();
    for info in graph.inputs.iter().chain(&graph.value_info) {
        types.insert(info.name.clone(), info.dtype);
    }
    for (name, tensor) in &graph.initializers {
        types.insert(name.clone(), tensor.dtype);
    }
    for node in &graph.nodes {
        let input = |i: usize| node.inputs.get(i).and_then(|name| types.get(name)).copied();
        let first_known = node.inputs.iter().find_map(|name| types.get(name)).copied();
        let tensor_attr = || match node.attr("value") {
            Some(Attr::Tensor(t)) => Some(t.dtype),
            _ => None,
        };
        let outputs: Vec<Option<DataType>> = match node.op.as_str() {
            "Cast" => vec![node.int("to").map(|code| DataType::from_onnx(code as i32))],
            "Shape" | "Size" | "NonZero" | "ArgMax" | "ArgMin" => vec![Some(DataType::Int64)],
            "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "Not" | "And"
            | "Or" | "Xor" | "IsNaN" | "IsInf" => vec![Some(DataType::Bool)],
            "Constant" => vec![tensor_attr()],
            "ConstantOfShape" => vec![tensor_attr().or(Some(DataType::Float))],
            "Where" => vec![input(1).or(input(2))],
            "OneHot" => vec![input(2)],
            "TopK" | "MaxPool" => vec![input(0), Some(DataType::Int64)],
            "Dropout" => vec![input(0), Some(DataType::Bool)],
            _ => vec![first_known],
        };
        for (i, output) in node.outputs.iter().enumerate() {
            let dtype = outputs.get(i).copied().unwrap_or(outputs[0]);
            if let Some(dtype) = dtype {
                types.insert(output.clone(), dtype);
            }
        }
    }
    types
}

fn type_name(dtype: DataType) -> &'static str {
    match dtype {
        DataType::Float => "float",
        DataType::Uint8 => "uint8",
        DataType::Int8 => "int8",
        DataType::Int32 => "int32",
        DataType::Int64 => "int64",
        DataType::Bool => "bool",
        DataType::Double => "double",
        DataType::Other(4) => "uint16",
        DataType::Other(5) => "int16",
        DataType::Other(10) => "float16",
        DataType::Other(12) => "uint32",
        DataType::Other(13) => "uint64",
        DataType::Other(16) => "bfloat16",
        DataType::Other(_) => "other",
    }
}

fn is_type_name(text: &str) -> bool {
    [
        "float", "uint8", "int8", "int32", "int64", "bool", "double", "uint16", "int16", "float16",
        "uint32", "uint64", "bfloat16",
    ]
    .contains(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ortl_onnx::{Dim, GraphBuilder, Tensor};

    fn model(build: impl FnOnce(&mut GraphBuilder)) -> Model {
        let mut b = GraphBuilder::new("g");
        build(&mut b);
        Model::new(b.finish())
    }

    #[test]
    fn bundled_table_parses_and_knows_the_training_ops() {
        let table = cuda();
        for op in [
            "Conv",
            "ConvTranspose",
            "BatchNormalization",
            "Gemm",
            "ReduceSum",
        ] {
            assert!(table.kernels.contains_key(op), "{op}");
        }
    }

    #[test]
    fn float_ops_pass_and_unsupported_types_ops_and_domains_are_named() {
        let m = model(|b| {
            let x = b.input("x", DataType::Float, vec![Dim::Fixed(2), Dim::Fixed(3)]);
            let y = b.relu(&x);
            // ArgMax has no int64 kernel on CUDA; Det has no CUDA kernel at all.
            let i = b.constant(Tensor::i64(&[2, 3], vec![0; 6]));
            let a = b.op("ArgMax", &[&i], vec![]);
            let d = b.op("Det", &[&y], vec![]);
            let r = b.op("ReorderInput", &[&y], vec![]);
            b.graph_mut().nodes.last_mut().unwrap().domain = "com.microsoft.nchwc".into();
            b.output(&a, DataType::Int64, vec![Dim::Unknown]);
            b.output(&d, DataType::Float, vec![Dim::Unknown]);
            b.output(&r, DataType::Float, vec![Dim::Unknown]);
        });
        let gaps = cuda().gaps(&m);
        let ops: Vec<&str> = gaps.iter().map(|g| g.op.as_str()).collect();
        assert_eq!(ops, ["ArgMax", "Det", "ReorderInput"], "{gaps:?}");
        assert!(gaps[0].reason.contains("int64"), "{}", gaps[0]);
        assert!(gaps[1].reason.contains("no CUDA kernel"), "{}", gaps[1]);
        assert!(
            gaps[2].reason.contains("com.microsoft.nchwc"),
            "{}",
            gaps[2]
        );
    }

    #[test]
    fn opset_ranges_are_respected() {
        let table = KernelTable::parse("Gelu\t20\t\tX:T\tT=float\n").unwrap();
        let mut m = model(|b| {
            let x = b.input("x", DataType::Float, vec![Dim::Fixed(2)]);
            let y = b.op("Gelu", &[&x], vec![]);
            b.output(&y, DataType::Float, vec![Dim::Fixed(2)]);
        });
        m.opsets = vec![(String::new(), 17)];
        assert_eq!(table.gaps(&m).len(), 1);
        m.opsets = vec![(String::new(), 20)];
        assert!(table.gaps(&m).is_empty());
    }

    #[test]
    fn malformed_rows_are_errors_naming_the_line() {
        let err = KernelTable::parse("# header\nRelu\tsix\t\tX:T\tT=float\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        let err = KernelTable::parse("Relu\t6\t12\t\tT=float\n").unwrap_err();
        assert!(err.contains("must list its inputs"), "{err}");
    }
}
