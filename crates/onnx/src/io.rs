//! Reading and writing `.onnx` files. Models come from the internet, so the reader checks
//! sizes before allocating, refuses external-data paths that leave the model's folder, and
//! reports malformed input as an error naming the file, never a panic.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use prost::Message;

use crate::OnnxError;
use crate::ir::{Attr, DataType, Dim, Graph, Model, Node, Tensor, TensorData, ValueInfo};
use crate::proto::{self, tensor_proto, tensor_shape_proto, type_proto};

/// Largest `.onnx` file read (protobuf itself cannot exceed 2 GiB).
pub const MAX_MODEL_BYTES: u64 = 2 << 30;

/// Reads a model file; external data is resolved in the model's folder.
pub fn load(path: &Path) -> Result<Model, OnnxError> {
    let io = |source| OnnxError::Io {
        path: path.into(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_MODEL_BYTES {
        return Err(OnnxError::Decode {
            path: path.into(),
            reason: format!("{size} bytes exceeds the 2 GiB protobuf limit"),
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    from_bytes(&bytes, Some(dir)).map_err(|e| match e {
        OnnxError::Decode { reason, .. } => OnnxError::Decode {
            path: path.into(),
            reason,
        },
        other => other,
    })
}

/// Decodes model bytes. `dir` is where external data lives (`None`: external data refused).
pub fn from_bytes(bytes: &[u8], dir: Option<&Path>) -> Result<Model, OnnxError> {
    let decode = |reason: String| OnnxError::Decode {
        path: PathBuf::from("<bytes>"),
        reason,
    };
    let proto =
        proto::ModelProto::decode(bytes).map_err(|e| decode(format!("malformed protobuf: {e}")))?;
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| decode("no graph".into()))?;
    let opsets = proto
        .opset_import
        .iter()
        .map(|o| (o.domain.clone().unwrap_or_default(), o.version.unwrap_or(0)))
        .collect();
    Ok(Model {
        ir_version: proto.ir_version.unwrap_or(0),
        opsets,
        producer_name: proto.producer_name.clone().unwrap_or_default(),
        producer_version: proto.producer_version.clone().unwrap_or_default(),
        doc: proto.doc_string.clone().unwrap_or_default(),
        graph: graph_from_proto(graph, dir)?,
        metadata: proto
            .metadata_props
            .iter()
            .map(|p| {
                (
                    p.key.clone().unwrap_or_default(),
                    p.value.clone().unwrap_or_default(),
                )
            })
            .collect(),
    })
}

/// Encodes a model (all tensors inline).
pub fn to_bytes(model: &Model) -> Vec<u8> {
    to_proto(model).encode_to_vec()
}

/// Writes a model to `path` under a temporary name, then renames it into place.
pub fn save(model: &Model, path: &Path) -> Result<(), OnnxError> {
    let io = |source| OnnxError::Io {
        path: path.into(),
        source,
    };
    let tmp = path.with_extension("onnx.partial");
    std::fs::write(&tmp, to_bytes(model)).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

pub fn to_proto(model: &Model) -> proto::ModelProto {
    proto::ModelProto {
        ir_version: Some(model.ir_version),
        opset_import: model
            .opsets
            .iter()
            .map(|(domain, version)| proto::OperatorSetIdProto {
                domain: Some(domain.clone()),
                version: Some(*version),
            })
            .collect(),
        producer_name: Some(model.producer_name.clone()),
        producer_version: Some(model.producer_version.clone()),
        doc_string: (!model.doc.is_empty()).then(|| model.doc.clone()),
        graph: Some(graph_to_proto(&model.graph)),
        metadata_props: model
            .metadata
            .iter()
            .map(|(k, v)| proto::StringStringEntryProto {
                key: Some(k.clone()),
                value: Some(v.clone()),
            })
            .collect(),
        ..Default::default()
    }
}

fn graph_from_proto(g: &proto::GraphProto, dir: Option<&Path>) -> Result<Graph, OnnxError> {
    let mut initializers = BTreeMap::new();
    for t in &g.initializer {
        let name = t.name.clone().unwrap_or_default();
        initializers.insert(name.clone(), tensor_from_proto(t, &name, dir)?);
    }
    let values = |list: &[proto::ValueInfoProto]| {
        list.iter()
            .map(value_from_proto)
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(Graph {
        name: g.name.clone().unwrap_or_default(),
        nodes: g
            .node
            .iter()
            .enumerate()
            .map(|(i, n)| node_from_proto(n, i, dir))
            .collect::<Result<_, _>>()?,
        inputs: values(&g.input)?,
        outputs: values(&g.output)?,
        value_info: values(&g.value_info)?,
        initializers,
    })
}

fn graph_to_proto(g: &Graph) -> proto::GraphProto {
    proto::GraphProto {
        name: Some(g.name.clone()),
        node: g.nodes.iter().map(node_to_proto).collect(),
        initializer: g
            .initializers
            .iter()
            .map(|(name, t)| tensor_to_proto(name, t))
            .collect(),
        input: g.inputs.iter().map(value_to_proto).collect(),
        output: g.outputs.iter().map(value_to_proto).collect(),
        value_info: g.value_info.iter().map(value_to_proto).collect(),
        ..Default::default()
    }
}

fn node_from_proto(
    n: &proto::NodeProto,
    index: usize,
    dir: Option<&Path>,
) -> Result<Node, OnnxError> {
    let op = n.op_type.clone().unwrap_or_default();
    let name = n
        .name
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{op}_{index}"));
    let err = |message: String| OnnxError::Node {
        node: name.clone(),
        op: op.clone(),
        message,
    };
    let mut attrs = BTreeMap::new();
    for a in &n.attribute {
        let key = a.name.clone().unwrap_or_default();
        let text = |b: &Vec<u8>| String::from_utf8_lossy(b).into_owned();
        use proto::attribute_proto::AttributeType as T;
        let value = match T::try_from(a.r#type.unwrap_or(0)).unwrap_or(T::Undefined) {
            T::Float => Attr::Float(a.f.unwrap_or(0.0)),
            T::Int => Attr::Int(a.i.unwrap_or(0)),
            T::String => Attr::String(a.s.as_ref().map(text).unwrap_or_default()),
            T::Tensor => {
                let t =
                    a.t.as_ref()
                        .ok_or_else(|| err(format!("attribute '{key}' has no tensor")))?;
                Attr::Tensor(tensor_from_proto(t, &key, dir)?)
            }
            T::Floats => Attr::Floats(a.floats.clone()),
            T::Ints => Attr::Ints(a.ints.clone()),
            T::Strings => Attr::Strings(a.strings.iter().map(text).collect()),
            other => {
                return Err(err(format!(
                    "attribute '{key}' of type {other:?} (subgraphs, sparse tensors) is not supported"
                )));
            }
        };
        attrs.insert(key, value);
    }
    Ok(Node {
        name,
        op,
        domain: n.domain.clone().unwrap_or_default(),
        inputs: n.input.clone(),
        outputs: n.output.clone(),
        attrs,
    })
}

fn node_to_proto(n: &Node) -> proto::NodeProto {
    use proto::attribute_proto::AttributeType as T;
    let attribute = n
        .attrs
        .iter()
        .map(|(name, value)| {
            let mut a = proto::AttributeProto {
                name: Some(name.clone()),
                ..Default::default()
            };
            let kind = match value {
                Attr::Float(v) => {
                    a.f = Some(*v);
                    T::Float
                }
                Attr::Int(v) => {
                    a.i = Some(*v);
                    T::Int
                }
                Attr::String(v) => {
                    a.s = Some(v.as_bytes().to_vec());
                    T::String
                }
                Attr::Tensor(t) => {
                    a.t = Some(tensor_to_proto("", t));
                    T::Tensor
                }
                Attr::Floats(v) => {
                    a.floats = v.clone();
                    T::Floats
                }
                Attr::Ints(v) => {
                    a.ints = v.clone();
                    T::Ints
                }
                Attr::Strings(v) => {
                    a.strings = v.iter().map(|s| s.as_bytes().to_vec()).collect();
                    T::Strings
                }
            };
            a.r#type = Some(kind as i32);
            a
        })
        .collect();
    proto::NodeProto {
        input: n.inputs.clone(),
        output: n.outputs.clone(),
        name: Some(n.name.clone()),
        op_type: Some(n.op.clone()),
        domain: (!n.domain.is_empty()).then(|| n.domain.clone()),
        attribute,
        ..Default::default()
    }
}

fn value_from_proto(v: &proto::ValueInfoProto) -> Result<ValueInfo, OnnxError> {
    let name = v.name.clone().unwrap_or_default();
    let tensor = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => t,
        _ => {
            return Ok(ValueInfo {
                name,
                dtype: DataType::Other(0),
                shape: None,
            });
        }
    };
    let shape = tensor.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(tensor_shape_proto::dimension::Value::DimValue(n)) => Dim::Fixed(*n),
                Some(tensor_shape_proto::dimension::Value::DimParam(p)) => Dim::Symbolic(p.clone()),
                None => Dim::Unknown,
            })
            .collect()
    });
    Ok(ValueInfo {
        name,
        dtype: DataType::from_onnx(tensor.elem_type.unwrap_or(0)),
        shape,
    })
}

fn value_to_proto(v: &ValueInfo) -> proto::ValueInfoProto {
    let shape = v.shape.as_ref().map(|dims| proto::TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| tensor_shape_proto::Dimension {
                value: match d {
                    Dim::Fixed(n) => Some(tensor_shape_proto::dimension::Value::DimValue(*n)),
                    Dim::Symbolic(p) => {
                        Some(tensor_shape_proto::dimension::Value::DimParam(p.clone()))
                    }
                    Dim::Unknown => None,
                },
                ..Default::default()
            })
            .collect(),
    });
    proto::ValueInfoProto {
        name: Some(v.name.clone()),
        r#type: Some(proto::TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(v.dtype.onnx()),
                shape,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tensor_from_proto(
    t: &proto::TensorProto,
    name: &str,
    dir: Option<&Path>,
) -> Result<Tensor, OnnxError> {
    let err = |message: String| OnnxError::Tensor {
        name: name.into(),
        message,
    };
    let dtype = DataType::from_onnx(t.data_type.unwrap_or(0));
    if t.dims.iter().any(|&d| d < 0) {
        return Err(err(format!("negative dimension in {:?}", t.dims)));
    }
    let numel = t
        .dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&n| n <= MAX_MODEL_BYTES)
        .ok_or_else(|| err(format!("dims {:?} are implausibly large", t.dims)))?
        as usize;
    let external = t.data_location == Some(tensor_proto::DataLocation::External as i32);
    let raw: Option<Vec<u8>> = if external {
        Some(read_external(t, name, dir, numel, dtype)?)
    } else {
        t.raw_data.clone()
    };
    let data = match raw {
        Some(bytes) => {
            if let Some(size) = dtype.size()
                && bytes.len() != numel * size
            {
                return Err(err(format!(
                    "{} bytes of data for {numel} elements of {dtype:?}",
                    bytes.len()
                )));
            }
            decode_raw(dtype, bytes)
        }
        None => match dtype {
            DataType::Float => TensorData::F32(t.float_data.clone()),
            DataType::Double => TensorData::F64(t.double_data.clone()),
            DataType::Int64 => TensorData::I64(t.int64_data.clone()),
            DataType::Int32 => TensorData::I32(t.int32_data.clone()),
            DataType::Uint8 => TensorData::U8(t.int32_data.iter().map(|&v| v as u8).collect()),
            DataType::Int8 => TensorData::I8(t.int32_data.iter().map(|&v| v as i8).collect()),
            DataType::Bool => TensorData::Bool(t.int32_data.iter().map(|&v| v != 0).collect()),
            DataType::Other(code) => {
                return Err(err(format!(
                    "element type {code} stored in typed fields is not supported"
                )));
            }
        },
    };
    let tensor = Tensor {
        dtype,
        dims: t.dims.clone(),
        data,
    };
    if tensor.len() != numel {
        return Err(err(format!(
            "{} values for dims {:?}",
            tensor.len(),
            t.dims
        )));
    }
    Ok(tensor)
}

fn decode_raw(dtype: DataType, bytes: Vec<u8>) -> TensorData {
    fn chunks<const N: usize, T>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
        bytes
            .chunks_exact(N)
            .map(|c| f(c.try_into().expect("exact chunk")))
            .collect()
    }
    match dtype {
        DataType::Float => TensorData::F32(chunks(&bytes, f32::from_le_bytes)),
        DataType::Double => TensorData::F64(chunks(&bytes, f64::from_le_bytes)),
        DataType::Int64 => TensorData::I64(chunks(&bytes, i64::from_le_bytes)),
        DataType::Int32 => TensorData::I32(chunks(&bytes, i32::from_le_bytes)),
        DataType::Uint8 => TensorData::U8(bytes),
        DataType::Int8 => TensorData::I8(bytes.into_iter().map(|b| b as i8).collect()),
        DataType::Bool => TensorData::Bool(bytes.into_iter().map(|b| b != 0).collect()),
        DataType::Other(_) => TensorData::Raw(bytes),
    }
}

fn tensor_to_proto(name: &str, t: &Tensor) -> proto::TensorProto {
    let raw: Vec<u8> = match &t.data {
        TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::U8(v) => v.clone(),
        TensorData::I8(v) => v.iter().map(|&x| x as u8).collect(),
        TensorData::Bool(v) => v.iter().map(|&x| u8::from(x)).collect(),
        TensorData::Raw(v) => v.clone(),
    };
    proto::TensorProto {
        dims: t.dims.clone(),
        data_type: Some(t.dtype.onnx()),
        name: (!name.is_empty()).then(|| name.to_string()),
        raw_data: Some(raw),
        ..Default::default()
    }
}

/// Reads a tensor's external data, refusing any location outside the model's folder.
fn read_external(
    t: &proto::TensorProto,
    name: &str,
    dir: Option<&Path>,
    numel: usize,
    dtype: DataType,
) -> Result<Vec<u8>, OnnxError> {
    let err = |message: String| OnnxError::Tensor {
        name: name.into(),
        message,
    };
    let dir = dir.ok_or_else(|| err("external data is not allowed for in-memory models".into()))?;
    let field = |key: &str| {
        t.external_data
            .iter()
            .find(|e| e.key.as_deref() == Some(key))
            .and_then(|e| e.value.clone())
    };
    let location =
        field("location").ok_or_else(|| err("external data without a location".into()))?;
    let relative = Path::new(&location);
    let escapes = relative.is_absolute()
        || relative.components().any(|c| {
            matches!(
                c,
                Component::ParentDir | Component::RootDir | Component::Prefix(_)
            )
        });
    if escapes {
        return Err(OnnxError::Unsafe {
            path: dir.join(relative),
            message: format!(
                "external data of tensor '{name}' points outside the model's folder ('{location}'); refusing to read it"
            ),
        });
    }
    let path = dir.join(relative);
    // A symlink inside the folder must not lead outside it either.
    let (real_dir, real_path) = (dir.canonicalize(), path.canonicalize());
    if let (Ok(real_dir), Ok(real_path)) = (&real_dir, &real_path)
        && !real_path.starts_with(real_dir)
    {
        return Err(OnnxError::Unsafe {
            path: path.clone(),
            message: format!(
                "external data of tensor '{name}' resolves outside the model's folder; refusing to read it"
            ),
        });
    }
    let parse = |key: &str| {
        field(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| err(format!("external data {key} '{v}' is not a number")))
            })
            .transpose()
    };
    let offset = parse("offset")?.unwrap_or(0);
    let expected = dtype.size().map(|s| (numel * s) as u64);
    let length = parse("length")?
        .or(expected)
        .ok_or_else(|| err("external data length unknown".into()))?;
    if expected.is_some_and(|e| e != length) {
        return Err(err(format!(
            "external data length {length} does not match dims {:?}",
            t.dims
        )));
    }
    use std::io::{Read, Seek, SeekFrom};
    let io = |source| OnnxError::Io {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::File::open(&path).map_err(io)?;
    let available = file.metadata().map_err(io)?.len();
    if offset.checked_add(length).is_none_or(|end| end > available) {
        return Err(err(format!(
            "external data {}..{} is past the end of {} ({available} bytes)",
            offset,
            offset.saturating_add(length),
            path.display()
        )));
    }
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut bytes = vec![0; length as usize];
    file.read_exact(&mut bytes).map_err(io)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GraphBuilder;

    fn small_model() -> Model {
        let mut b = GraphBuilder::new("g");
        let x = b.input(
            "x",
            DataType::Float,
            vec![Dim::Symbolic("n".into()), Dim::Fixed(3)],
        );
        let w = b.param("w", Tensor::f32(&[3, 2], vec![1., 2., 3., 4., 5., 6.]));
        let y = b.matmul(&x, &w);
        let z = b.relu(&y);
        b.output(
            &z,
            DataType::Float,
            vec![Dim::Symbolic("n".into()), Dim::Fixed(2)],
        );
        let mut model = Model::new(b.finish());
        model
            .metadata
            .insert("classes".into(), "[\"a\",\"b\"]".into());
        model
    }

    #[test]
    fn round_trips_structurally_and_bytes_are_stable() {
        let model = small_model();
        let bytes = to_bytes(&model);
        let back = from_bytes(&bytes, None).unwrap();
        assert_eq!(back, model);
        assert_eq!(to_bytes(&back), bytes, "re-encoding is byte-identical");
    }

    #[test]
    fn malformed_bytes_are_an_error_not_a_panic() {
        let bytes = to_bytes(&small_model());
        // Every truncation either decodes to something or fails cleanly; none panics.
        for cut in 0..bytes.len() {
            let _ = from_bytes(&bytes[..cut], None);
        }
        assert!(from_bytes(&bytes[..bytes.len() - 1], None).is_err());
        let err = from_bytes(b"\xff\xff\xff\xff", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("malformed protobuf") || err.contains("no graph"),
            "{err}"
        );
    }

    #[test]
    fn external_data_is_read_inside_the_folder_and_refused_outside() {
        let dir = tempfile::tempdir().unwrap();
        let mut proto = to_proto(&small_model());
        let values: Vec<u8> = [1f32, 2., 3., 4., 5., 6.]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(dir.path().join("w.bin"), [vec![0u8; 8], values].concat()).unwrap();
        let init = &mut proto.graph.as_mut().unwrap().initializer[0];
        init.raw_data = None;
        init.data_location = Some(tensor_proto::DataLocation::External as i32);
        let entry = |k: &str, v: &str| proto::StringStringEntryProto {
            key: Some(k.into()),
            value: Some(v.into()),
        };
        init.external_data = vec![entry("location", "w.bin"), entry("offset", "8")];
        let path = dir.path().join("m.onnx");
        std::fs::write(&path, proto.encode_to_vec()).unwrap();
        let model = load(&path).unwrap();
        assert_eq!(
            model.graph.initializers["w"].as_f32().unwrap(),
            [1., 2., 3., 4., 5., 6.]
        );

        for evil in ["../w.bin", "/etc/passwd", "sub/../../w.bin"] {
            let init = &mut proto.graph.as_mut().unwrap().initializer[0];
            init.external_data = vec![entry("location", evil)];
            std::fs::write(&path, proto.encode_to_vec()).unwrap();
            let err = load(&path).unwrap_err().to_string();
            assert!(err.contains("outside the model's folder"), "{evil}: {err}");
        }
    }
}
