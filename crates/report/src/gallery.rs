//! The Grad-CAM gallery of report.html (`--cams DIR`): every misclassified image (capped)
//! and the most confident correct ones, each with the image, its heatmap overlay from
//! `ortl-infer --cam` and the probability — where a reviewer sees what the model looks at.
//!
//! Binary problems use the report's positive class and threshold: false negatives
//! (lowest positive probability first), false positives (highest first) and the most
//! confident true positives. Multi-class: misclassified (least probable true class first)
//! and the most confident correct predictions.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use base64::Engine;
use image::ImageFormat;

use maud::html;
use ortl_manifest::Predictions;

/// Most entries per section.
pub const MISCLASSIFIED_CAP: usize = 24;
pub const CONFIDENT_CAP: usize = 8;
/// Long side of the embedded thumbnails, in pixels: enough for the gallery's tiles (at
/// least 320 CSS pixels wide) without making report.html heavy.
const THUMBNAIL: u32 = 400;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    FalseNegative,
    FalsePositive,
    TruePositive,
    Misclassified,
    Correct,
}

impl Kind {
    pub fn id(self) -> &'static str {
        match self {
            Kind::FalseNegative => "false_negative",
            Kind::FalsePositive => "false_positive",
            Kind::TruePositive => "true_positive",
            Kind::Misclassified => "misclassified",
            Kind::Correct => "correct",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::FalseNegative => "False negatives",
            Kind::FalsePositive => "False positives",
            Kind::TruePositive => "Most confident true positives",
            Kind::Misclassified => "Misclassified",
            Kind::Correct => "Most confident correct predictions",
        }
    }
}

/// One section: the rows shown (indices into the predictions) and how many qualified.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    pub kind: Kind,
    pub rows: Vec<usize>,
    pub total: usize,
}

impl Section {
    /// "False negatives (31) — showing 24 of 31".
    pub fn heading(&self) -> String {
        let shown = if self.rows.len() < self.total {
            format!(" — showing {} of {}", self.rows.len(), self.total)
        } else {
            String::new()
        };
        format!("{} ({}){shown}", self.kind.title(), self.total)
    }
}

/// Picks the gallery's rows. `binary`: (positive class index, threshold).
pub fn select(preds: &Predictions, binary: Option<(usize, f64)>) -> Vec<Section> {
    let rows = 0..preds.labels.len();
    let mut sections = Vec::new();
    let mut section = |kind: Kind, mut picked: Vec<(usize, f64)>, cap: usize| {
        // Sorted by the key, then by row for a stable order among ties.
        picked.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        let total = picked.len();
        sections.push(Section {
            kind,
            rows: picked.into_iter().take(cap).map(|(r, _)| r).collect(),
            total,
        });
    };
    match binary {
        Some((positive, threshold)) => {
            let score = |r: usize| {
                let p = &preds.probabilities[r];
                p[positive] / (p[0] + p[1]).max(1e-12)
            };
            let (mut fns, mut fps, mut tps) = (Vec::new(), Vec::new(), Vec::new());
            for r in rows {
                let (truth, said) = (preds.labels[r] == positive, score(r) >= threshold);
                match (truth, said) {
                    (true, false) => fns.push((r, score(r))),
                    (false, true) => fps.push((r, -score(r))),
                    (true, true) => tps.push((r, -score(r))),
                    (false, false) => {}
                }
            }
            section(Kind::FalseNegative, fns, MISCLASSIFIED_CAP);
            section(Kind::FalsePositive, fps, MISCLASSIFIED_CAP);
            section(Kind::TruePositive, tps, CONFIDENT_CAP);
        }
        None => {
            let (mut wrong, mut right) = (Vec::new(), Vec::new());
            for r in rows {
                let p = &preds.probabilities[r];
                let label = preds.labels[r];
                if predicted(p) == label {
                    right.push((r, -p[label]));
                } else {
                    wrong.push((r, p[label]));
                }
            }
            section(Kind::Misclassified, wrong, MISCLASSIFIED_CAP);
            section(Kind::Correct, right, CONFIDENT_CAP);
        }
    }
    sections
}

fn predicted(p: &[f64]) -> usize {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// The gallery as shown in the report.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// The HTML section, thumbnails embedded as JPEG data URIs.
    pub html: maud::Markup,
    /// (section title, image paths) for report.md.
    pub listing: Vec<(String, Vec<String>)>,
    /// Images whose heatmap or image could not be read.
    pub missing: Vec<String>,
}

/// Renders the gallery. Overlays are looked up in `cams` by the file name of each row's
/// cam_path.
pub fn render(preds: &Predictions, sections: &[Section], cams: &Path) -> Rendered {
    let mut missing = Vec::new();
    let mut figures = Vec::new();
    for section in sections {
        let mut section_figures = Vec::new();
        for &row in &section.rows {
            let path = &preds.paths[row];
            let in_cams = |p: &Option<String>| {
                p.as_deref()
                    .and_then(|p| Path::new(p).file_name())
                    .map(|name| cams.join(name))
            };
            let overlay = in_cams(&preds.cam_paths[row]);
            let true_overlay = in_cams(&preds.cam_true_paths[row]);
            let original = thumbnail(Path::new(path));
            let heat = overlay.as_deref().and_then(thumbnail).map(|(uri, _)| uri);
            let true_heat = true_overlay
                .as_deref()
                .and_then(thumbnail)
                .map(|(uri, _)| uri);
            // The overlays fill the tile's width; the image is shown as wide as their image
            // part (the rest is the colour bar), so the two line up.
            let image_width = original.as_ref().map_or(100.0, |(_, (w, h))| {
                let layout = ortl_draw::overlay::Layout::of(*w, *h);
                100.0 * f64::from(layout.width) / f64::from(layout.canvas().0)
            });
            let original = original.map(|(uri, _)| uri);
            if heat.is_none() {
                missing.push(format!(
                    "no heatmap for {path} in {} (run ortl-infer with --cam {})",
                    cams.display(),
                    cams.display()
                ));
            }
            let p = &preds.probabilities[row];
            let guess = predicted(p);
            let (truth, guessed) = (&preds.classes[preds.labels[row]], &preds.classes[guess]);
            section_figures.push(html! {
                figure.cam data-kind=(section.kind.id()) data-path=(path) {
                    @match &original {
                        Some(uri) => img src=(uri) alt="image" style=(format!("width:{image_width:.1}%"));,
                        None => p.missing { "image not found" },
                    }
                    @match &heat {
                        Some(uri) => img src=(uri) alt="heatmap";,
                        None => p.missing { "heatmap not found" },
                    }
                    @if let Some(uri) = &true_heat {
                        img src=(uri) alt="heatmap of the true class";
                    }
                    figcaption {
                        dl {
                            dt { "file" } dd.file { (display_name(path)) }
                            dt { "true class" } dd.truth { (truth) }
                            dt { "predicted" } dd.predicted { (guessed) }
                            dt { "probability" } dd.probability { (format!("{:.3}", p[guess])) }
                        }
                    }
                }
            });
        }
        figures.push((section.heading(), section_figures));
    }
    let html = html! {
        h2 #gallery { "Where the model looks (Grad-CAM)" }
        p {
            "Each image above its heatmap (warm: regions that raised the score of the class named on the overlay); a misclassified image also with the heatmap of its true class, what the model saw of the finding it missed. The probability is the predicted class's."
        }
        @for (heading, section_figures) in &figures {
            h3 { (heading) }
            div.gallery { @for figure in section_figures { (figure) } }
        }
    };
    let listing = sections
        .iter()
        .map(|s| {
            let paths = s.rows.iter().map(|&r| preds.paths[r].clone()).collect();
            (s.heading(), paths)
        })
        .collect();
    Rendered {
        html,
        listing,
        missing,
    }
}

/// The last two components of a path (class folder and file), for captions.
fn display_name(path: &str) -> String {
    let parts: Vec<&str> = path.rsplit(['/', '\\']).take(2).collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("/")
}

/// A JPEG thumbnail as a data URI, at most [`THUMBNAIL`] pixels on the long side, with the
/// file's own size; None when the file cannot be read.
fn thumbnail(path: &Path) -> Option<(String, (u32, u32))> {
    let limits = ortl_imaging::DecodeLimits::default();
    let image = ortl_imaging::decode_rgb(path, limits).ok()?;
    let long = f64::from(image.width().max(image.height()));
    let scale = (f64::from(THUMBNAIL) / long).min(1.0);
    let side = |n: u32| ((f64::from(n) * scale).round() as u32).max(1);
    let small = image::imageops::resize(
        &image,
        side(image.width()),
        side(image.height()),
        image::imageops::FilterType::Triangle,
    );
    let mut bytes = Cursor::new(Vec::new());
    small.write_to(&mut bytes, ImageFormat::Jpeg).ok()?;
    Some((
        format!(
            "data:image/jpeg;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes.into_inner())
        ),
        image.dimensions(),
    ))
}

/// The folder `--cams` names, checked.
pub fn cams_dir(dir: &Path, preds: &Predictions) -> Result<PathBuf, String> {
    if !dir.is_dir() {
        return Err(format!(
            "--cams {}: no such folder (write one with ortl-infer --cam {})",
            dir.display(),
            dir.display()
        ));
    }
    if preds.cam_paths.iter().all(Option::is_none) {
        return Err(format!(
            "--cams {}: the predictions have no cam_path column; run ortl-infer with --cam {}",
            dir.display(),
            dir.display()
        ));
    }
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preds(labels: &[usize], p1: &[f64]) -> Predictions {
        Predictions {
            classes: vec!["normal".into(), "tb".into()],
            labels: labels.to_vec(),
            probabilities: p1.iter().map(|&p| vec![1.0 - p, p]).collect(),
            unlabelled: 0,
            paths: (0..labels.len()).map(|i| format!("img{i}.png")).collect(),
            cam_paths: vec![None; labels.len()],
            cam_true_paths: vec![None; labels.len()],
            splits: vec![None; labels.len()],
            models: Vec::new(),
            threshold: None,
        }
    }

    #[test]
    fn binary_sections_hold_exactly_the_errors_in_order_of_how_wrong() {
        let p = preds(
            &[1, 1, 0, 0, 1, 0, 1],
            &[0.2, 0.9, 0.7, 0.1, 0.45, 0.95, 0.99],
        );
        let s = select(&p, Some((1, 0.5)));
        assert_eq!(s[0].kind, Kind::FalseNegative);
        assert_eq!(s[0].rows, [0, 4], "lowest TB probability first");
        assert_eq!(s[1].rows, [5, 2], "most confident false positive first");
        assert_eq!(s[2].rows, [6, 1]);
        // The threshold moves rows between sections as in the confusion matrix.
        let s = select(&p, Some((1, 0.3)));
        assert_eq!(s[0].rows, [0]);
        assert_eq!(s[1].rows, [5, 2]);
    }

    #[test]
    fn multiclass_and_caps() {
        let mut p = preds(&[0; 30], &[0.9; 30]);
        p.classes.push("other".into());
        for row in &mut p.probabilities {
            row.push(0.0);
        }
        let s = select(&p, None);
        assert_eq!(s[0].kind, Kind::Misclassified);
        assert_eq!((s[0].rows.len(), s[0].total), (MISCLASSIFIED_CAP, 30));
        assert_eq!(s[1].total, 0);
        assert_eq!(display_name("a/b/normal/x.png"), "normal/x.png");
    }
}
