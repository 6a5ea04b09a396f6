//! The in-memory model. Tensors are wired by name, as in ONNX; an empty input name is an
//! omitted optional input.

use std::collections::BTreeMap;

use crate::OnnxError;

/// Element types ortl works with; anything else is kept as raw bytes for round trips.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    Float,
    Uint8,
    Int8,
    Int32,
    Int64,
    Bool,
    Double,
    /// Another ONNX element type, by its `TensorProto.DataType` number.
    Other(i32),
}

impl DataType {
    pub fn from_onnx(code: i32) -> Self {
        match code {
            1 => DataType::Float,
            2 => DataType::Uint8,
            3 => DataType::Int8,
            6 => DataType::Int32,
            7 => DataType::Int64,
            9 => DataType::Bool,
            11 => DataType::Double,
            other => DataType::Other(other),
        }
    }

    pub fn onnx(self) -> i32 {
        match self {
            DataType::Float => 1,
            DataType::Uint8 => 2,
            DataType::Int8 => 3,
            DataType::Int32 => 6,
            DataType::Int64 => 7,
            DataType::Bool => 9,
            DataType::Double => 11,
            DataType::Other(code) => code,
        }
    }

    /// Bytes per element, where fixed and known.
    pub fn size(self) -> Option<usize> {
        match self {
            DataType::Uint8 | DataType::Int8 | DataType::Bool => Some(1),
            DataType::Float | DataType::Int32 => Some(4),
            DataType::Int64 | DataType::Double => Some(8),
            DataType::Other(10 | 16 | 4 | 5) => Some(2),
            DataType::Other(12) => Some(4),
            DataType::Other(13) => Some(8),
            DataType::Other(_) => None,
        }
    }
}

/// Tensor contents.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    U8(Vec<u8>),
    I8(Vec<i8>),
    Bool(Vec<bool>),
    /// Little-endian bytes of a type without a typed variant.
    Raw(Vec<u8>),
}

/// A constant tensor: an initializer or an attribute value.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub dtype: DataType,
    pub dims: Vec<i64>,
    pub data: TensorData,
}

impl Tensor {
    pub fn f32(dims: &[i64], values: Vec<f32>) -> Self {
        Self::checked(DataType::Float, dims, TensorData::F32(values))
    }

    pub fn i64(dims: &[i64], values: Vec<i64>) -> Self {
        Self::checked(DataType::Int64, dims, TensorData::I64(values))
    }

    /// A 1-D int64 tensor (shapes, axes, pads).
    pub fn i64s(values: &[i64]) -> Self {
        Self::i64(&[values.len() as i64], values.to_vec())
    }

    /// A float scalar (rank 0).
    pub fn scalar(value: f32) -> Self {
        Self::f32(&[], vec![value])
    }

    fn checked(dtype: DataType, dims: &[i64], data: TensorData) -> Self {
        let tensor = Self {
            dtype,
            dims: dims.to_vec(),
            data,
        };
        assert_eq!(
            tensor.len(),
            tensor.numel(),
            "values must match dims {dims:?}"
        );
        tensor
    }

    /// Number of elements the dims describe.
    pub fn numel(&self) -> usize {
        self.dims.iter().map(|&d| d.max(0) as usize).product()
    }

    /// Number of values stored.
    pub fn len(&self) -> usize {
        match &self.data {
            TensorData::F32(v) => v.len(),
            TensorData::F64(v) => v.len(),
            TensorData::I64(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::U8(v) => v.len(),
            TensorData::I8(v) => v.len(),
            TensorData::Bool(v) => v.len(),
            TensorData::Raw(v) => self.dtype.size().map_or(self.numel(), |s| v.len() / s),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            TensorData::I64(v) => Some(v),
            _ => None,
        }
    }
}

/// A node attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    Float(f32),
    Int(i64),
    String(String),
    Tensor(Tensor),
    Floats(Vec<f32>),
    Ints(Vec<i64>),
    Strings(Vec<String>),
}

/// One dimension of a value's shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Fixed(i64),
    Symbolic(String),
    Unknown,
}

/// A graph input, output or annotated intermediate value.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueInfo {
    pub name: String,
    pub dtype: DataType,
    /// `None` when the rank itself is unknown.
    pub shape: Option<Vec<Dim>>,
}

impl ValueInfo {
    pub fn new(name: &str, dtype: DataType, shape: Vec<Dim>) -> Self {
        Self {
            name: name.into(),
            dtype,
            shape: Some(shape),
        }
    }

    /// Fixed dimensions, with `None` for symbolic or unknown ones.
    pub fn dims(&self) -> Option<Vec<Option<i64>>> {
        self.shape.as_ref().map(|shape| {
            shape
                .iter()
                .map(|d| {
                    if let Dim::Fixed(n) = d {
                        Some(*n)
                    } else {
                        None
                    }
                })
                .collect()
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: String,
    pub op: String,
    /// Empty for the default ONNX domain.
    pub domain: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attrs: BTreeMap<String, Attr>,
}

impl Node {
    /// A default-domain node without attributes writing one output: what a rewrite puts in
    /// place of a node it replaces.
    pub fn new(name: String, op: &str, inputs: Vec<String>, output: String) -> Self {
        Node {
            name,
            op: op.into(),
            domain: String::new(),
            inputs,
            outputs: vec![output],
            attrs: Default::default(),
        }
    }

    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.get(name)
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        match self.attrs.get(name) {
            Some(Attr::Int(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn float(&self, name: &str) -> Option<f32> {
        match self.attrs.get(name) {
            Some(Attr::Float(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn ints(&self, name: &str) -> Option<&[i64]> {
        match self.attrs.get(name) {
            Some(Attr::Ints(v)) => Some(v),
            _ => None,
        }
    }

    /// An error about this node.
    pub fn error(&self, message: impl Into<String>) -> OnnxError {
        OnnxError::Node {
            node: self.name.clone(),
            op: self.op.clone(),
            message: message.into(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    pub name: String,
    pub nodes: Vec<Node>,
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
    pub value_info: Vec<ValueInfo>,
    pub initializers: BTreeMap<String, Tensor>,
}

impl Graph {
    /// The node that produces `value`, if any.
    pub fn producer(&self, value: &str) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|n| n.outputs.iter().any(|o| o == value))
    }

    /// The nodes that read `value`.
    pub fn consumers<'a>(&'a self, value: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.nodes
            .iter()
            .filter(move |n| n.inputs.iter().any(|i| i == value))
    }

    /// Graph inputs that are not initializers (the values a caller feeds).
    pub fn feeds(&self) -> impl Iterator<Item = &ValueInfo> {
        self.inputs
            .iter()
            .filter(|i| !self.initializers.contains_key(&i.name))
    }

    /// Total number of elements in float initializers (trainable-parameter count).
    pub fn float_parameters(&self) -> usize {
        self.initializers
            .values()
            .filter(|t| t.dtype == DataType::Float)
            .map(Tensor::numel)
            .sum()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub ir_version: i64,
    /// (domain, version); the default domain is "".
    pub opsets: Vec<(String, i64)>,
    pub producer_name: String,
    pub producer_version: String,
    pub doc: String,
    pub graph: Graph,
    pub metadata: BTreeMap<String, String>,
}

impl Model {
    /// A model around `graph` with ortl's IR version and opset.
    pub fn new(graph: Graph) -> Self {
        Self {
            ir_version: crate::IR_VERSION,
            opsets: vec![(String::new(), crate::OPSET)],
            producer_name: "ortl".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc: String::new(),
            graph,
            metadata: BTreeMap::new(),
        }
    }

    /// The default-domain opset version.
    pub fn opset(&self) -> Option<i64> {
        self.opsets
            .iter()
            .find(|(d, _)| d.is_empty() || d == "ai.onnx")
            .map(|(_, v)| *v)
    }
}
