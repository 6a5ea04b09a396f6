//! `ortl-infer --cam DIR`: a Grad-CAM (or Grad-CAM++) heatmap per image, written as an
//! overlay PNG and the raw map as `.npy` (float32 `[H, W]` at the model's input size,
//! not normalised) into a folder that appears complete when inference ends.
//!
//! The classifier session also outputs the feature map; a second, head-sized session
//! ([`ortl_explain::cam_model`]) turns it into the map of the chosen class.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result};
use ndarray::{ArrayD, Axis};
use ndarray_npy::WriteNpyExt;
use ortl_cli::AtomicDir;
use ortl_explain::{Method, Target, cam};
use ortl_imaging::{DecodeOptions, decode};
use ortl_onnx::Model;
use ortl_runtime::{Feed, Runtime, Session, SessionOptions};
use rayon::prelude::*;

use crate::{Item, ModelInfo};

/// Which class each heatmap explains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CamClass {
    /// The predicted class; a multi-label model's most probable finding.
    Predicted,
    /// The true label (single-label models; images without one get no heatmap).
    True,
    /// A class, or a finding.
    Named(String),
}

/// One image's heatmaps: the overlay and the class it explains, and for a labelled image
/// the model got wrong (explaining predictions), the overlay of its true class.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Explained {
    pub map: Option<(String, usize)>,
    pub true_map: Option<String>,
}

impl FromStr for CamClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "predicted" => CamClass::Predicted,
            "true" => CamClass::True,
            "" => return Err("--cam-class needs predicted, true or a class name".into()),
            name => CamClass::Named(name.into()),
        })
    }
}

/// What `--cam` and the flags beside it ask for.
#[derive(Clone, Debug)]
pub struct CamOptions {
    pub dir: PathBuf,
    pub class: CamClass,
    pub method: Method,
    pub colormap: ortl_draw::overlay::Colormap,
    pub scale: ortl_draw::overlay::Scale,
    pub layer: Option<String>,
    /// Replace an existing folder.
    pub force: bool,
}

pub struct Explainer {
    session: Session,
    target: Target,
    out: AtomicDir,
    options: CamOptions,
    /// How the classified images were decoded, to draw the overlays on the same pixels.
    decoding: DecodeOptions,
    named: Option<usize>,
    classes: Vec<String>,
    input_size: (u32, u32),
    used_names: HashSet<String>,
    /// Images with no heatmap because `--cam-class true` and no label.
    pub unlabelled: usize,
    /// With `--cam-scale global`, the overlays to draw once every map's maximum is known.
    pending: Vec<Pending>,
}

/// An overlay waiting for the global maximum.
struct Pending {
    png: std::path::PathBuf,
    image: std::path::PathBuf,
    map: Vec<f32>,
    caption: String,
}

impl Explainer {
    /// Prepares the CAM session; returns it with the classifier to run instead of `model`
    /// (the same graph with the feature map as a second output). Errors are usage errors.
    pub fn new(
        runtime: &Runtime,
        session_options: &SessionOptions,
        model: &Model,
        info: &ModelInfo,
        options: CamOptions,
        decoding: DecodeOptions,
    ) -> Result<(Self, Model)> {
        let named = match &options.class {
            CamClass::Named(name) => {
                Some(info.classes.iter().position(|c| c == name).ok_or_else(|| {
                    ortl_cli::usage(format!(
                        "--cam-class '{name}' is not one of the model's {} ({}), predicted{}",
                        info.noun(),
                        ortl_cli::name_list(&info.classes),
                        if info.is_multilabel() { "" } else { " or true" }
                    ))
                })?)
            }
            // An image can have any number of true findings, or none known.
            CamClass::True if info.is_multilabel() => {
                return Err(ortl_cli::usage(format!(
                    "--cam-class true needs a single-label model; name one of the findings ({}), or leave it out for each image's most probable finding",
                    ortl_cli::name_list(&info.classes)
                )));
            }
            _ => None,
        };
        let target = ortl_explain::locate(model, options.layer.as_deref()).map_err(|e| {
            ortl_cli::usage(match e {
                ortl_explain::CamError::NotAFeatureMap { .. } => format!("--cam-layer: {e}"),
                ortl_explain::CamError::NoPooling => format!("--cam: {e} with --cam-layer"),
                other => format!("--cam: {other}"),
            })
        })?;
        let target = match options.method {
            ortl_explain::Method::Attention => ortl_explain::attention_target(model, &target)
                .map_err(|e| ortl_cli::usage(format!("--cam: {e}")))?,
            _ => target,
        };
        if target.classes != info.classes.len() {
            return Err(ortl_cli::usage(format!(
                "--cam: the class scores '{}' have {} columns but the model has {} classes",
                target.scores,
                target.classes,
                info.classes.len()
            )));
        }
        let graph = ortl_explain::cam_model(model, &target, options.method)
            .map_err(|e| ortl_cli::usage(format!("--cam: {e}")))?;
        let session = runtime.load_model(session_options, &graph).map_err(|e| {
            crate::load_error(e, "loading the Grad-CAM graph into ONNX Runtime".into())
        })?;
        let out = AtomicDir::create(&options.dir, options.force)?;
        let exposed = ortl_explain::expose_features(model, &target);
        Ok((
            Self {
                session,
                target,
                out,
                options,
                decoding,
                named,
                classes: info.classes.clone(),
                input_size: (info.height as u32, info.width as u32),
                used_names: HashSet::new(),
                unlabelled: 0,
                pending: Vec::new(),
            },
            exposed,
        ))
    }

    /// The feature map output the classifier session must produce.
    pub fn features(&self) -> &str {
        &self.target.features
    }

    /// Heatmaps for one batch, given each row's predicted class (a multi-label model's most
    /// probable finding): the overlay of the class asked for and, for a labelled image the
    /// model got wrong while explaining its predictions, the overlay of its true class
    /// (what the model saw of the finding it missed).
    pub fn explain(
        &mut self,
        items: &[Item],
        features: ArrayD<f32>,
        predicted: &[usize],
        probabilities: &ArrayD<f32>,
    ) -> Result<Vec<Explained>> {
        let chosen: Vec<Option<usize>> = items
            .iter()
            .zip(predicted)
            .map(|(item, &p)| match self.options.class {
                CamClass::Predicted => Some(p),
                CamClass::True => item.label,
                CamClass::Named(_) => self.named,
            })
            .collect();
        self.unlabelled += chosen.iter().filter(|c| c.is_none()).count();
        let names: Vec<Option<String>> = items
            .iter()
            .zip(&chosen)
            .map(|(item, c)| c.map(|_| self.unique_name(&item.shown)))
            .collect();
        let truth: Vec<Option<usize>> = items
            .iter()
            .zip(predicted)
            .map(|(item, &p)| match self.options.class {
                // The attention map is the same for every class: one is enough.
                CamClass::Predicted if self.options.method != ortl_explain::Method::Attention => {
                    item.label.filter(|&l| l != p)
                }
                _ => None,
            })
            .collect();
        let true_features = truth.iter().any(Option::is_some).then(|| features.clone());
        let paths = self.maps(items, features, &chosen, &names, probabilities, "")?;
        let true_paths = match true_features {
            Some(features) => {
                let true_names: Vec<Option<String>> = names
                    .iter()
                    .zip(&truth)
                    .map(|(n, t)| {
                        n.as_ref()
                            .filter(|_| t.is_some())
                            .map(|n| format!("{n}.true"))
                    })
                    .collect();
                self.maps(
                    items,
                    features,
                    &truth,
                    &true_names,
                    probabilities,
                    "true class, ",
                )?
            }
            None => vec![None; items.len()],
        };
        Ok(paths
            .into_iter()
            .zip(chosen)
            .zip(true_paths)
            .map(|((path, class), true_map)| Explained {
                map: path.zip(class),
                true_map,
            })
            .collect())
    }

    /// The maps of class `chosen[row]` (None: no map) written as `names[row]`.npy/.png;
    /// returns each overlay's path. `note` prefixes the method in the caption.
    fn maps(
        &mut self,
        items: &[Item],
        features: ArrayD<f32>,
        chosen: &[Option<usize>],
        names: &[Option<String>],
        probabilities: &ArrayD<f32>,
        note: &str,
    ) -> Result<Vec<Option<String>>> {
        // Rows without a class get zero weights: an all-zero map, not written.
        let mut weights = ortl_explain::one_hot(
            &chosen.iter().map(|c| c.unwrap_or(0)).collect::<Vec<_>>(),
            self.classes.len(),
        );
        for (row, c) in chosen.iter().enumerate() {
            if c.is_none() {
                weights.row_mut(row).fill(0.0);
            }
        }
        let mut out = ortl_runtime::run(
            &mut self.session,
            vec![
                (self.target.features.as_str(), Feed::F32(features)),
                (cam::CLASS_WEIGHTS, Feed::F32(weights.into_dyn())),
            ],
        )?;
        let maps = out
            .remove(cam::CAM)
            .context("the CAM graph produced no map")?;
        let (h, w) = self.target.spatial();
        let staging = self.out.staging().to_path_buf();
        let (height, width) = self.input_size;
        let method = self.options.method;
        let decoding = self.decoding;
        let classes = &self.classes;
        let jobs: Vec<(usize, &String, usize)> = names
            .iter()
            .zip(chosen)
            .enumerate()
            .filter_map(|(row, (name, class))| Some((row, name.as_ref()?, (*class)?)))
            .collect();
        let global = self.options.scale == ortl_draw::overlay::Scale::Global;
        let colormap = self.options.colormap;
        let drawn: Vec<Option<Pending>> = jobs
            .par_iter()
            .map(|&(row, name, class)| -> Result<Option<Pending>> {
                let map: Vec<f32> = maps.index_axis(Axis(0), row).iter().copied().collect();
                let raw = ortl_draw::overlay::upsample(&map, h, w, height, width);
                let raw = ndarray::Array2::from_shape_vec((height as usize, width as usize), raw)
                    .expect("upsampled to the input size");
                let npy = staging.join(format!("{name}.npy"));
                let file = std::fs::File::create(&npy)
                    .with_context(|| format!("cannot write {}", npy.display()))?;
                raw.write_npy(std::io::BufWriter::new(file))
                    .with_context(|| format!("cannot write {}", npy.display()))?;
                let caption = format!(
                    "{} {:.2} ({note}{method})",
                    classes[class],
                    probabilities[[row, class]]
                );
                let pending = Pending {
                    png: staging.join(format!("{name}.png")),
                    image: items[row].path.clone(),
                    map,
                    caption,
                };
                if global {
                    return Ok(Some(pending));
                }
                draw(&pending, (h, w), None, colormap, decoding)?;
                Ok(None)
            })
            .collect::<Result<_>>()?;
        self.pending.extend(drawn.into_iter().flatten());
        Ok(names
            .iter()
            .map(|n| {
                n.as_ref().map(|n| {
                    self.options
                        .dir
                        .join(format!("{n}.png"))
                        .display()
                        .to_string()
                })
            })
            .collect())
    }

    /// A file name (without extension) for the image shown as `shown`: its folder and file
    /// joined by `__` (`tuberculosis__tb-001`), numbered when the pair repeats, so images
    /// with the same name in different folders stay apart.
    fn unique_name(&mut self, shown: &str) -> String {
        let stem = Path::new(shown).with_extension("");
        let parts: Vec<String> = stem
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        // The class folder and the file: short and readable; a repeat gets -2, -3, ….
        let flat = parts[parts.len().saturating_sub(2)..].join("__");
        let flat: String = flat
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let flat = match flat.char_indices().rev().nth(119) {
            Some((cut, _)) => flat[cut..].to_string(),
            None if flat.is_empty() => "image".into(),
            None => flat,
        };
        let mut name = flat.clone();
        let mut n = 1;
        while !self.used_names.insert(name.clone()) {
            n += 1;
            name = format!("{flat}-{n}");
        }
        name
    }

    /// Moves the finished folder into place.
    pub fn finish(self) -> Result<()> {
        // --cam-scale global: every overlay on the largest value over all maps.
        let maximum = self
            .pending
            .iter()
            .flat_map(|p| p.map.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0f32, f32::max);
        let spatial = self.target.spatial();
        let (colormap, decoding) = (self.options.colormap, self.decoding);
        self.pending
            .par_iter()
            .try_for_each(|p| draw(p, spatial, Some(maximum), colormap, decoding))?;
        let dir = self.options.dir.clone();
        self.out
            .commit()
            .with_context(|| format!("writing {}", dir.display()))
    }
}

/// Decodes the image again and writes its overlay PNG.
fn draw(
    p: &Pending,
    spatial: (usize, usize),
    maximum: Option<f32>,
    colormap: ortl_draw::overlay::Colormap,
    decoding: DecodeOptions,
) -> Result<()> {
    let image = decode(&p.image, decoding)?.pixels.into_rgb();
    let picture =
        ortl_draw::overlay::overlay(&image, &p.map, spatial, maximum, &p.caption, colormap)
            .map_err(anyhow::Error::msg)?;
    picture
        .save(&p.png)
        .with_context(|| format!("cannot write {}", p.png.display()))
}
