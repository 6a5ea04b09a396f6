//! What a classifier expects, from its graph and ortl's metadata keys.

use std::path::Path;

use ortl_imaging::{Filter, Window};
use ortl_manifest::Task;
use ortl_models::classifier::keys;
use ortl_onnx::{DataType, Model};

#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub input: String,
    pub output: String,
    pub height: usize,
    pub width: usize,
    /// Class names (a multi-label model's findings); `0`, `1`, … when the model carries none.
    pub classes: Vec<String>,
    /// One class per image (softmax), or findings (a sigmoid each).
    pub task: Task,
    pub filter: Filter,
    /// The intensity window of the training tensors.
    pub window: Window,
    /// The epoch the weights are from (ortl-train's models).
    pub epoch: Option<usize>,
}

impl ModelInfo {
    /// Reads a model from ortl-train, or wraps any other single-input image classifier
    /// (float input, logits or probabilities out) with preprocessing and a softmax, saying
    /// on stderr what it assumed; `normalize` overrides the detected normalisation.
    /// `size` gives the height and width to run a model with a dynamic input size at.
    pub fn read(
        path: &Path,
        normalize: Option<ortl_models::Normalization>,
        size: Option<(usize, usize)>,
    ) -> anyhow::Result<(Self, Model)> {
        Self::read_saying(path, normalize, size, &mut |line| {
            eprintln!("ortl-infer: {line}")
        })
    }

    /// [`ModelInfo::read`], saying what it assumed to `say` instead of stderr.
    pub fn read_saying(
        path: &Path,
        normalize: Option<ortl_models::Normalization>,
        size: Option<(usize, usize)>,
        say: &mut dyn FnMut(&str),
    ) -> anyhow::Result<(Self, Model)> {
        if path.is_dir() {
            let inside = path.join("model.onnx");
            anyhow::bail!(
                "{} is a folder; give the model file{}",
                path.display(),
                if inside.is_file() {
                    format!(", e.g. --model {}", inside.display())
                } else {
                    String::new()
                }
            );
        }
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        {
            anyhow::bail!(
                "{} is a CSV file, not a model; --model takes the best.onnx or model.onnx that ortl-train writes (a manifest goes to --manifest)",
                path.display()
            );
        }
        let mut model = ortl_onnx::io::load(path)?;
        let opset = model.opset().unwrap_or(0);
        if !ortl_models::import::OPSETS.contains(&opset) {
            anyhow::bail!(
                "{}: opset {opset} is outside the supported {}..={}; re-export the model with opset 17",
                path.display(),
                ortl_models::import::OPSETS.start(),
                ortl_models::import::OPSETS.end()
            );
        }
        let is_ortl = model
            .graph
            .feeds()
            .next()
            .is_some_and(|i| i.dtype == DataType::Uint8);
        if !is_ortl {
            let (wrapped, how) = ortl_models::classifier::wrap_foreign(model, normalize, size)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            say(&format!(
                "{} is not an ortl model; using it as an image classifier: {how}",
                path.display()
            ));
            model = wrapped;
        }
        let info = Self::of(&model).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if let Some((h, w)) = size
            && (h, w) != (info.height, info.width)
        {
            anyhow::bail!(
                "{}: the model classifies {}x{} images, not the {h}x{w} given with --size; drop --size (images are resized to the model's size)",
                path.display(),
                info.height,
                info.width
            );
        }
        Ok((info, model))
    }

    /// Whether the classes are findings, each decided on its own (a sigmoid each).
    pub fn is_multilabel(&self) -> bool {
        self.task == Task::MultiLabel
    }

    /// What the classes are called in messages: classes, or findings.
    pub fn noun(&self) -> &'static str {
        if self.is_multilabel() {
            "findings"
        } else {
            "classes"
        }
    }

    pub fn of(model: &Model) -> Result<Self, String> {
        let graph = &model.graph;
        let input = match graph.feeds().collect::<Vec<_>>().as_slice() {
            [one] => (*one).clone(),
            other => return Err(format!("expected one image input, found {}", other.len())),
        };
        let dims = input.dims().unwrap_or_default();
        if input.dtype != DataType::Uint8 || dims.len() != 4 || dims[3] != Some(3) {
            return Err(format!(
                "input '{}' is not uint8 [N,H,W,3]; ortl-infer runs models from ortl-train (a pretrained classifier becomes one with ortl-train --backbone FILE)",
                input.name
            ));
        }
        let meta = |key: &str| model.metadata.get(key);
        let size = |i: usize, key: &str| {
            dims[i]
                .map(|d| d as usize)
                .or_else(|| meta(key).and_then(|v| v.parse().ok()))
                .ok_or_else(|| {
                    format!("image size unknown: no fixed input dimension and no {key} metadata")
                })
        };
        let (height, width) = (size(1, keys::HEIGHT)?, size(2, keys::WIDTH)?);
        let output = graph.outputs.first().ok_or("the model has no output")?;
        let count = output.dims().and_then(|d| d.get(1).copied().flatten());
        let classes: Vec<String> = match meta(keys::CLASSES) {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| format!("{} metadata is not a JSON list: {e}", keys::CLASSES))?,
            None => (0..count.ok_or("neither class metadata nor a fixed class count")?)
                .map(|c| c.to_string())
                .collect(),
        };
        if count.is_some_and(|c| c as usize != classes.len()) {
            return Err(format!(
                "{} classes in metadata but {} outputs",
                classes.len(),
                count.unwrap_or(0)
            ));
        }
        let filter = match meta(keys::RESIZE) {
            Some(name) => <Filter as clap::ValueEnum>::from_str(name, false)
                .map_err(|e| format!("metadata {}: {e}", keys::RESIZE))?,
            None => Filter::Bilinear,
        };
        let window = match meta(keys::WINDOW) {
            Some(name) => name.parse().map_err(|e: String| e)?,
            None => Window::Auto,
        };
        let task = match meta(keys::TASK).map(String::as_str) {
            None => Task::SingleLabel,
            Some(text) if text == Task::SingleLabel.to_string() => Task::SingleLabel,
            Some(text) if text == Task::MultiLabel.to_string() => Task::MultiLabel,
            Some(other) => {
                return Err(format!(
                    "metadata {} '{other}' is neither {} nor {}",
                    keys::TASK,
                    Task::SingleLabel,
                    Task::MultiLabel
                ));
            }
        };
        let epoch = match meta(keys::EPOCH) {
            Some(text) => Some(
                text.parse()
                    .map_err(|_| format!("metadata {} '{text}' is not an epoch", keys::EPOCH))?,
            ),
            None => None,
        };
        Ok(Self {
            window,
            task,
            epoch,
            input: input.name,
            output: output.name.clone(),
            height,
            width,
            classes,
            filter,
        })
    }
}
