//! Pretrained weights for a built-in backbone from a safetensors file whose tensor names
//! follow torchvision's `state_dict()` (timm's for Inception-ResNet-v2), as
//! `safetensors.torch.save_file(model.state_dict(), path)` writes it, or another layout's
//! names through a [`Rename`] map (timm's MobileNetV2 and EfficientNet-B0). Every parameter and
//! BatchNorm statistic of the backbone must be in the file with its shape; the classifier
//! (`fc.`, `classifier.`, …) and `num_batches_tracked` counters are ignored; anything else
//! in the file means it is for another network, and is listed.

use std::path::Path;

use ortl_onnx::Tensor;
use safetensors::{Dtype, SafeTensors};

use crate::Backbone;
use crate::backbone::Weights;
use crate::pretrained::Rename;

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a safetensors file ({reason})", path.display())]
    Format {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("{}: does not fit {backbone}: {problems}", path.display())]
    Mismatch {
        path: std::path::PathBuf,
        backbone: String,
        problems: String,
    },
}

/// Name prefixes of the classifier layers exporters save with the backbone.
const CLASSIFIER_PREFIXES: &[&str] = &[
    "fc.",
    "classifier.",
    "head.",
    "heads.",
    "last_linear.",
    "AuxLogits.",
    // timm's Inception-ResNet-v2.
    "classif.",
    // timm's VGG keeps torchvision's fc6/fc7 as convolutions before its classifier.
    "pre_logits.",
];

/// Whether the loader passes over a file's tensor `name`: a classifier's, or a BatchNorm
/// step counter.
pub fn is_ignored(name: &str) -> bool {
    name.ends_with("num_batches_tracked") || CLASSIFIER_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Replaces every parameter and statistic of `backbone` by the file's, after checking
/// every name and shape; on any mismatch nothing is changed and the error lists them.
pub fn load_safetensors(backbone: &mut Backbone, path: &Path) -> Result<(), WeightsError> {
    load_safetensors_renamed(backbone, path, None)
}

/// [`load_safetensors`] for a file in another layout: `rename` maps its names to the
/// backbone's. A file already in the backbone's names loads as it is.
pub fn load_safetensors_renamed(
    backbone: &mut Backbone,
    path: &Path,
    rename: Option<&Rename>,
) -> Result<(), WeightsError> {
    let bytes = std::fs::read(path).map_err(|source| WeightsError::Io {
        path: path.into(),
        source,
    })?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| WeightsError::Format {
        path: path.into(),
        reason: e.to_string(),
    })?;
    // The file's names in the backbone's layout: renamed only when the file is in the
    // other layout (some name maps), so torchvision-named files still load as they are.
    let file_names: Vec<&str> = file.names();
    let rename = rename.filter(|r| file_names.iter().any(|n| r.maps(n)));
    let by_ours: std::collections::HashMap<String, &str> = file_names
        .iter()
        .map(|&n| (rename.map_or_else(|| n.to_string(), |r| r.apply(n)), n))
        .collect();
    // Parameters and BatchNorm statistics: not constants such as ReLU6's bounds, which
    // no checkpoint holds.
    let mut expected = crate::backbone::parameters(&backbone.graph);
    expected.extend(backbone.buffers());
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    let mut loaded: Vec<(String, Tensor)> = Vec::new();
    for name in &expected {
        let ours = &backbone.graph.initializers[name];
        let Some(view) = by_ours.get(name).and_then(|n| file.tensor(n).ok()) else {
            missing.push(format!("{name} {:?}", ours.dims));
            continue;
        };
        let dims: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        if dims != ours.dims {
            wrong.push(format!("{name}: file {dims:?}, backbone {:?}", ours.dims));
            continue;
        }
        match to_f32(view.dtype(), view.data()) {
            Some(values) => loaded.push((name.clone(), Tensor::f32(&dims, values))),
            None => wrong.push(format!(
                "{name}: element type {:?} is not a float type",
                view.dtype()
            )),
        }
    }
    let unexpected: Vec<String> = by_ours
        .iter()
        .filter(|(ours, theirs)| {
            !is_ignored(theirs) && !backbone.graph.initializers.contains_key(*ours)
        })
        .map(|(_, theirs)| theirs.to_string())
        .collect();
    if !(missing.is_empty() && wrong.is_empty() && unexpected.is_empty()) {
        let list = |what: &str, items: &mut Vec<String>| {
            items.sort();
            let shown: Vec<&str> = items.iter().take(6).map(String::as_str).collect();
            let more = items.len().saturating_sub(shown.len());
            format!(
                "{} {what} ({}{})",
                items.len(),
                shown.join(", "),
                if more > 0 {
                    format!(", … {more} more")
                } else {
                    String::new()
                }
            )
        };
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(list("missing from the file", &mut missing));
        }
        if !wrong.is_empty() {
            problems.push(list("of another shape or type", &mut wrong));
        }
        let mut unexpected = unexpected;
        if !unexpected.is_empty() {
            problems.push(list("in the file but not in the backbone", &mut unexpected));
        }
        return Err(WeightsError::Mismatch {
            path: path.into(),
            backbone: backbone.name.clone(),
            problems: format!(
                "{}; the file must hold torchvision's state_dict names for {} (see README: pretrained weights)",
                problems.join("; "),
                backbone.name
            ),
        });
    }
    for (name, tensor) in loaded {
        backbone.graph.initializers.insert(name, tensor);
    }
    backbone.weights = Weights::of_bytes(path, &bytes);
    Ok(())
}

/// Little-endian float data of any float width as f32.
fn to_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    /// A safetensors file of `tensors` (name, dtype, dims, little-endian bytes).
    fn write(path: &Path, tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)]) {
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
    }

    fn state_dict(backbone: &Backbone, scale: f32) -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
        backbone
            .graph
            .initializers
            .iter()
            .filter(|(_, t)| t.dtype == ortl_onnx::DataType::Float)
            .map(|(name, t)| {
                let bytes = t
                    .as_f32()
                    .unwrap()
                    .iter()
                    .flat_map(|v| (v * scale + 0.25).to_le_bytes())
                    .collect();
                let dims = t.dims.iter().map(|&d| d as usize).collect();
                (name.clone(), Dtype::F32, dims, bytes)
            })
            .collect()
    }

    #[test]
    fn a_torchvision_state_dict_loads_into_the_builtin_backbone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resnet.safetensors");
        let source = crate::zoo::builtin("resnet-mini", 2).unwrap();
        let mut tensors = state_dict(&source, 2.0);
        // What torchvision also saves: the classifier and BatchNorm step counters.
        tensors.push(("fc.weight".into(), Dtype::F32, vec![2, 2], vec![0; 16]));
        tensors.push((
            "bn1.num_batches_tracked".into(),
            Dtype::I64,
            vec![],
            vec![0; 8],
        ));
        write(&path, &tensors);

        let mut backbone = crate::zoo::builtin("resnet-mini", 1).unwrap();
        load_safetensors(&mut backbone, &path).unwrap();
        for (name, tensor) in &source.graph.initializers {
            let expected: Vec<f32> = tensor
                .as_f32()
                .unwrap()
                .iter()
                .map(|v| v * 2.0 + 0.25)
                .collect();
            assert_eq!(
                backbone.graph.initializers[name].as_f32().unwrap(),
                expected.as_slice(),
                "{name}"
            );
        }
        assert!(backbone.weights.is_pretrained());
        assert!(backbone.weights.to_string().contains("resnet.safetensors"));
    }

    #[test]
    fn half_precision_files_are_widened() {
        let values = [0.5f32, -1.25, 3.0];
        let f16: Vec<u8> = values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        let bf16: Vec<u8> = values
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect();
        assert_eq!(to_f32(Dtype::F16, &f16).unwrap(), values);
        assert_eq!(to_f32(Dtype::BF16, &bf16).unwrap(), values);
        assert_eq!(to_f32(Dtype::I64, &[0; 8]), None);
    }

    #[test]
    fn every_mismatch_is_listed_and_nothing_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.safetensors");
        let source = crate::zoo::builtin("resnet-mini", 2).unwrap();
        let mut tensors = state_dict(&source, 1.0);
        tensors.retain(|(n, ..)| n != "layer1.0.conv1.weight");
        let conv1 = tensors
            .iter_mut()
            .find(|(n, ..)| n == "conv1.weight")
            .unwrap();
        conv1.2 = vec![conv1.3.len() / 4];
        tensors.push(("features.0.weight".into(), Dtype::F32, vec![1], vec![0; 4]));
        write(&path, &tensors);

        let mut backbone = crate::zoo::builtin("resnet-mini", 1).unwrap();
        let before = backbone.graph.clone();
        let message = load_safetensors(&mut backbone, &path)
            .unwrap_err()
            .to_string();
        for part in [
            "other.safetensors",
            "1 missing from the file (layer1.0.conv1.weight",
            "1 of another shape or type (conv1.weight: file",
            "1 in the file but not in the backbone (features.0.weight)",
            "torchvision's state_dict names",
        ] {
            assert!(message.contains(part), "{part}: {message}");
        }
        assert_eq!(backbone.graph, before, "nothing loaded");
        assert!(!backbone.weights.is_pretrained());
    }
}
