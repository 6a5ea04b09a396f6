//! One run of ortl-infer: the images to classify, the batches through the model, and a
//! row per image streamed to the output as each batch finishes.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, Result};
use ndarray::ArrayD;
use ortl_cli::{Output, usage};
use ortl_imaging::DecodeOptions;
use ortl_manifest::Split;
use ortl_manifest::predictions::{Columns, EvaluatedModel};
use ortl_runtime::Feed;

use crate::ModelInfo;
use crate::batches::{self, Prepared};
use crate::decision::{self, ChosenOn, Decision};
use crate::explain::{Explained, Explainer};
use crate::inputs::{self, Item, Shard};
use crate::rows::RowWriter;
use crate::settings::{Settings, Thresholds, Tta};
use ortl_cli::Sink;

/// Classifies the images `settings` name and writes a row for each.
pub fn run(settings: Settings, sink: Sink<'_>) -> Result<()> {
    let Sink { stdout, say } = sink;
    let (info, model) =
        ModelInfo::read_saying(&settings.model, settings.normalize, settings.size, say)
            .map_err(|e| usage(ortl_cli::one_line(&e)))?;
    if settings.top_k.is_some() && info.is_multilabel() {
        return Err(usage(
            "--top-k ranks classes of a single-label model; a multi-label model's rows give every finding's p_, and predicted lists those at or above their thresholds",
        ));
    }
    let (decision, chosen_on) = match &settings.thresholds {
        Thresholds::ChosenOn { file, rule } => {
            let chosen_on = decision::from_file(file, *rule, &info, &settings.model)
                .map_err(|e| usage(ortl_cli::one_line(&e)))?;
            for c in &chosen_on.chosen {
                say(&c.describe(*rule, file));
            }
            (Decision::chosen(&info, &chosen_on.chosen), Some(chosen_on))
        }
        Thresholds::Fixed(threshold) => (decide(&info, Some(*threshold))?, None),
        Thresholds::Default => (decide(&info, None)?, None),
    };
    // Refused now, before any image is read, when it exists and --force is not given.
    let mut file = if ortl_cli::io::is_stdio(&settings.output) {
        None
    } else {
        Some(Output::create(&settings.output, settings.force)?)
    };
    let items = gather(&settings, &info, chosen_on.as_ref(), say)?;

    let runtime = ortl_runtime::init(settings.ort_lib.as_deref())?;
    let window = match settings.window {
        Some(window) => {
            if window != info.window {
                say(&format!(
                    "warning: --window {window} differs from the window the model was trained with ({}): probabilities may be off",
                    info.window
                ));
            }
            window
        }
        None => info.window,
    };
    let decoding = DecodeOptions {
        limits: settings.limits,
        window,
    };
    if settings.decode_threads == 0 {
        return Err(usage("--decode-threads must be at least 1"));
    }
    // On a terminal, a bar on stderr (stdout carries the rows).
    let progress = ortl_cli::progress::bar(items.len() as u64, "classifying");
    // Decoding starts before the session is built: on a small job, building a ResNet50
    // session takes as long as decoding 300 images.
    let (prepared, producer) = batches::spawn(
        items,
        &info,
        decoding,
        settings.batch,
        settings.decode_threads,
        settings.unordered,
    )?;

    let (mut explainer, model) = match &settings.cam {
        Some(cam) => {
            let (explainer, exposed) = Explainer::new(
                runtime,
                &settings.session,
                &model,
                &info,
                cam.clone(),
                decoding,
            )?;
            (Some(explainer), exposed)
        }
        None => (None, model),
    };
    let mut session = runtime.load_model(&settings.session, &model).map_err(|e| {
        crate::load_error(
            e,
            format!("{}: ONNX Runtime cannot load it", settings.model.display()),
        )
    })?;
    drop(model);

    let top_k = settings.top_k.map(|k| k.clamp(1, info.classes.len()));
    let columns = Columns {
        threshold: decision.class_threshold(),
        top_k: top_k.unwrap_or(0),
        cam: explainer.is_some(),
        model: EvaluatedModel {
            path: ortl_manifest::paths::tidy(&settings.model),
            epoch: info.epoch,
        },
    };
    let rows: &mut dyn Write = match &mut file {
        Some(file) => file,
        None => stdout,
    };
    let mut writer = RowWriter::new(rows, settings.format, &info, decision.clone(), columns);
    if settings.tta == Tta::Flip4 {
        say(
            "warning: --tta flip4 averages in upside-down images, which rarely suit radiographs (anatomy has an up); --tta flip mirrors left-right only",
        );
    }
    let flips = settings.tta.flips();
    if settings.header && settings.shard.is_none_or(Shard::is_first) {
        writer.header()?;
    }
    let (mut written, mut skipped) = (0usize, 0usize);
    let mut intensity_kinds = BTreeMap::<String, usize>::new();
    for prepared in prepared {
        for intensity in &prepared.intensity {
            *intensity_kinds.entry(intensity.kind.clone()).or_default() += 1;
        }
        for err in &prepared.failed {
            if settings.strict {
                anyhow::bail!("{err} (--strict)");
            }
            progress.suspend(|| say(&format!("warning: skipped {err}")));
        }
        skipped += prepared.failed.len();
        progress.inc((prepared.items.len() + prepared.failed.len()) as u64);
        if prepared.items.is_empty() {
            continue;
        }
        let (probs, features) = classify(
            &mut session,
            &info,
            &prepared,
            flips,
            explainer.as_ref().map(Explainer::features),
        )?;
        let cams = match (&mut explainer, features) {
            (Some(explainer), Some(features)) => {
                let predicted: Vec<usize> = probs
                    .outer_iter()
                    .map(|p| decision.top(p.as_slice().expect("a standard-layout row")))
                    .collect();
                explainer.explain(&prepared.items, features, &predicted, &probs)?
            }
            _ => vec![Explained::default(); prepared.items.len()],
        };
        // The bar steps aside while rows go out: on a terminal that shows both stdout and
        // stderr, rows never land among a half-drawn bar.
        progress.suspend(|| -> Result<()> {
            for ((item, p), cam) in prepared.items.iter().zip(probs.outer_iter()).zip(&cams) {
                let p: Vec<f32> = p.iter().copied().collect();
                writer.row(item, &p, cam)?;
                written += 1;
            }
            writer.flush()?;
            Ok(())
        })?;
    }
    writer.into_inner()?;
    let _ = producer.join();
    progress.finish_and_clear();
    if written == 0 && skipped > 0 {
        // An -o file is not left behind with a header and no rows. (A shard with no images
        // of its own writes its header alone: that is its whole share of the output.)
        anyhow::bail!("no image could be classified ({skipped} unreadable, named above)");
    }
    match file {
        Some(file) => file.finish()?,
        None => stdout.flush().context("writing stdout")?,
    }
    say(&format!(
        "{} classified, {skipped} skipped",
        ortl_cli::count(written, "image", "images")
    ));
    for (kind, count) in &intensity_kinds {
        say(&format!("{count} images: {kind}"));
    }
    if let (Some(explainer), Some(cam)) = (explainer, &settings.cam) {
        if explainer.unlabelled > 0 {
            say(&format!(
                "{} images without a true label got no heatmap (--cam-class true)",
                explainer.unlabelled
            ));
        }
        explainer.finish()?;
        say(&format!("heatmaps in {}", cam.dir.display()));
    }
    Ok(())
}

/// The decision at a fixed threshold, or the model's default; one the model cannot take is
/// a usage error.
fn decide(info: &ModelInfo, threshold: Option<f64>) -> Result<Decision> {
    Decision::new(info, threshold).map_err(|e| usage(ortl_cli::one_line(&e)))
}

/// The images to classify, in input order (this shard's alone), after saying what may
/// make their scores optimistic.
fn gather(
    settings: &Settings,
    info: &ModelInfo,
    chosen_on: Option<&ChosenOn>,
    say: &mut dyn FnMut(&str),
) -> Result<Vec<Item>> {
    let mut items = match &settings.manifest {
        Some(manifest) => inputs::from_manifest(manifest, settings.split, info, &settings.model)
            .map_err(|e| usage(ortl_cli::one_line(&e)))?,
        None => Vec::new(),
    };
    // Decisions on the images the thresholds were tuned on are optimistic, as scores on
    // training images are.
    if let (Some(chosen_on), Thresholds::ChosenOn { file, .. }) = (chosen_on, &settings.thresholds)
    {
        let reused = items
            .iter()
            .filter(|i| chosen_on.paths.contains(&i.shown))
            .count();
        if reused > 0 {
            say(&format!(
                "warning: {} scored here {} among those {} chose the thresholds on; decisions on them are optimistic (score images the thresholds never saw, e.g. --split test)",
                ortl_cli::count(reused, "image", "images"),
                if reused == 1 { "is" } else { "are" },
                file.display()
            ));
        }
    }
    let training = items
        .iter()
        .filter(|i| i.split == Some(Split::Train))
        .count();
    if training > 0 {
        say(&format!(
            "note: {training} of the manifest's images are training images{}; their rows say split 'train', and scores on them are optimistic",
            if settings.split.is_none() {
                " (no --split given)"
            } else {
                ""
            }
        ));
    }
    // A path given on the command line that does not exist is a mistake in the command, not
    // an unreadable image to skip (paths streamed on stdin still are skipped and counted).
    if let Some(missing) = settings
        .inputs
        .iter()
        .find(|p| p.as_os_str() != "-" && !p.exists())
    {
        return Err(usage(format!(
            "{}: no such file or folder",
            missing.display()
        )));
    }
    items.extend(inputs::from_args(&settings.inputs, info)?);
    if items.is_empty() {
        return Err(usage(
            "no images given: pass files, folders, --manifest, or - for paths on stdin",
        ));
    }
    Ok(match settings.shard {
        Some(shard) => shard.select(items),
        None => items,
    })
}

/// A batch's probabilities, averaged over the test-time mirrorings, and the feature map
/// `features` names for the heatmaps (from the unmirrored pass).
fn classify(
    session: &mut ortl_runtime::Session,
    info: &ModelInfo,
    prepared: &Prepared,
    flips: &[(bool, bool)],
    features: Option<&str>,
) -> Result<(ArrayD<f32>, Option<ArrayD<f32>>)> {
    let mut probs: Option<ArrayD<f32>> = None;
    let mut map: Option<ArrayD<f32>> = None;
    for &(horizontal, vertical) in flips {
        let pixels = mirrored(&prepared.pixels, horizontal, vertical);
        let mut outputs =
            ortl_runtime::run(session, vec![(info.input.as_str(), Feed::U8(pixels))])?;
        if let Some(features) = features.filter(|_| map.is_none()) {
            map = outputs.remove(features);
        }
        let p = outputs
            .remove(&info.output)
            .context("the model produced no output")?;
        probs = Some(match probs {
            Some(sum) => sum + p,
            None => p,
        });
    }
    let probs = probs.expect("at least one pass") / flips.len() as f32;
    Ok((probs, map))
}

/// `[N, H, W, 3]` pixels mirrored left-right and/or up-down.
fn mirrored(pixels: &ArrayD<u8>, horizontal: bool, vertical: bool) -> ArrayD<u8> {
    let mut view = pixels.view();
    if horizontal {
        view.invert_axis(ndarray::Axis(2));
    }
    if vertical {
        view.invert_axis(ndarray::Axis(1));
    }
    view.as_standard_layout().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirroring_flips_width_then_height() {
        let pixels = ArrayD::from_shape_vec(
            ndarray::IxDyn(&[1, 2, 2, 3]),
            (0..12).map(|v| v as u8).collect(),
        )
        .unwrap();
        let at = |a: &ArrayD<u8>, y: usize, x: usize| a[[0, y, x, 0]];
        let h = mirrored(&pixels, true, false);
        assert_eq!((at(&h, 0, 0), at(&h, 0, 1)), (3, 0));
        let v = mirrored(&pixels, false, true);
        assert_eq!((at(&v, 0, 0), at(&v, 1, 0)), (6, 0));
        assert_eq!(mirrored(&pixels, false, false), pixels);
    }
}
