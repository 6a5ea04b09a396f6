//! The backbone a run's settings name: built in (with `--weights`), or imported from an
//! `.onnx` file, local or on a model hub.

use std::path::Path;

use anyhow::Result;
use ortl_cli::usage;
use ortl_hub::{HubFile, WeightsSpec};

use crate::Settings;

/// The backbone the settings name: built in (with `--weights`), or imported from a file,
/// local or on a hub.
pub fn load(s: &Settings) -> Result<ortl_models::Backbone> {
    if s.backbone.starts_with("hf:") {
        if s.weights.is_some() {
            return Err(usage(
                "--weights loads a built-in backbone's weights; an imported .onnx backbone brings its own",
            ));
        }
        let file =
            HubFile::parse(&s.backbone, None).map_err(|e| usage(format!("--backbone {e}")))?;
        if !file.file.ends_with(".onnx") {
            return Err(usage(format!(
                "--backbone {file}: a backbone from a hub is an .onnx file (hf:ORG/REPO[@REVISION]:FILE.onnx); weights for a built-in backbone go to --weights"
            )));
        }
        let hub = ortl_hub::Hub::from_env("ortl-train");
        let fetched = hub.fetch(&file, ortl_hub::Pin::default(), &file.to_string())?;
        let mut backbone = import_onnx(s, &fetched.path)?;
        backbone.name = file.to_string();
        backbone.weights = fetched.weights();
        return Ok(backbone);
    }
    Ok(match ortl_models::zoo::builtin(&s.backbone, s.seed) {
        Some(_) if s.features.is_some() => {
            return Err(usage(
                "--features cuts an imported .onnx backbone; a built-in backbone is cut at its last feature map already",
            ));
        }
        Some(mut backbone) => {
            if let Some(spec) = &s.weights {
                load_weights(&mut backbone, &s.backbone, spec)?;
            }
            if let Some(normalization) = s.normalize {
                backbone.normalization = normalization;
                backbone.normalization_reason = "given with --normalize".into();
            }
            backbone
        }
        None if s.weights.is_some() => {
            return Err(usage(
                "--weights loads a built-in backbone's weights; an imported .onnx backbone brings its own",
            ));
        }
        None if Path::new(&s.backbone).is_file() => import_onnx(s, Path::new(&s.backbone))?,
        None if s.backbone.ends_with(".onnx") || s.backbone.contains('/') => {
            return Err(usage(format!("--backbone {}: no such file", s.backbone)));
        }
        None => {
            return Err(usage(match ortl_models::zoo::closest(&s.backbone) {
                Some(name) => format!(
                    "--backbone '{}' is not a built-in backbone; did you mean '{name}'?",
                    s.backbone
                ),
                None => format!(
                    "--backbone '{}' is neither a built-in backbone ({}) nor an .onnx file",
                    s.backbone,
                    ortl_models::zoo::NAMES.join(", ")
                ),
            }));
        }
    })
}

/// What `--weights` asks for, in words, for the log's first line (the backbone line
/// after loading gives the commit and hash found).
pub fn weights_wanted(backbone: &str, spec: Option<&WeightsSpec>) -> String {
    match spec {
        None => String::new(),
        Some(WeightsSpec::ImageNet) => match ortl_models::pretrained::imagenet(backbone) {
            Some(source) => format!(
                " with ImageNet weights from {}{}",
                ortl_hub::spec::source_file(source),
                source
                    .sha256
                    .as_deref()
                    .map_or(String::new(), |sha| format!(" (sha256 {sha}, pinned)"))
            ),
            None => " with ImageNet weights".into(),
        },
        Some(WeightsSpec::Hub(file)) => format!(" with weights from {file}"),
        Some(WeightsSpec::File(path)) => format!(" with weights from {}", path.display()),
    }
}

/// An imported `.onnx` backbone, cut where `--features` says or graph analysis finds.
fn import_onnx(s: &Settings, path: &Path) -> Result<ortl_models::Backbone> {
    // A file that cannot be cut as asked is fixed by the arguments (--features).
    ortl_models::import(path, s.normalize, s.features.as_deref(), s.pool).map_err(|e| match e {
        ortl_models::ImportError::Cut { .. } => usage(e.to_string()),
        other => other.into(),
    })
}

/// Loads `--weights` into the built-in `backbone` called `name`: ortl's ImageNet source
/// with what it was trained with, or a hub or local file (renamed from timm's layout where
/// the family has one).
fn load_weights(
    backbone: &mut ortl_models::Backbone,
    name: &str,
    spec: &WeightsSpec,
) -> Result<()> {
    let hub = ortl_hub::Hub::from_env("ortl-train");
    let resolved = ortl_hub::resolve(name, spec, &hub).map_err(|e| match e {
        ortl_hub::spec::ResolveError::Usage(message) => usage(message),
        ortl_hub::spec::ResolveError::Hub(e) => e.into(),
    })?;
    let loaded = match resolved.source {
        Some(source) => source.load(backbone, &resolved.path),
        None => ortl_models::weights::load_safetensors_renamed(
            backbone,
            &resolved.path,
            ortl_models::pretrained::rename_for(name).as_ref(),
        ),
    };
    loaded.map_err(|e| usage(e.to_string()))?;
    // A local file's provenance is its name and hash, which loading recorded; a hub file's
    // is where it came from.
    if !matches!(spec, WeightsSpec::File(_)) {
        backbone.weights = resolved.weights;
    }
    Ok(())
}
