//! The report's figures, each drawn once per backend: PNG (bitmap, with an embedded font so
//! no system fonts are needed) and SVG (embedded in report.html).

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::evaluate::BinaryEvaluation;
use crate::metrics::Metric;
use ortl_manifest::history::Epoch;

/// Figure size in SVG pixels (CSS pixels, 96 per inch).
const SIZE: (u32, u32) = (640, 480);

/// Where figures go and how finely their PNGs are rasterized.
#[derive(Clone, Copy, Debug)]
pub struct Canvas<'a> {
    pub dir: &'a Path,
    /// PNG resolution: the 640×480 figure at `dpi / 96` times its size (240 dpi: 1600 px
    /// wide), recorded in the PNG's pHYs chunk.
    pub dpi: u32,
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

/// Draws `figure` once, as SVG (written to `<dir>/<name>.svg` and returned for the HTML),
/// and rasterizes that SVG to `<dir>/<name>.png` at the canvas' resolution with the
/// bundled font, so the two never differ and the PNG is print-sharp.
fn render(
    out: &Canvas,
    name: &str,
    figure: &dyn Fn(&DrawingArea<SVGBackend, Shift>) -> Result<()>,
) -> Result<String> {
    render_sized(out, name, SIZE, figure)
}

/// [`render`] at another size than the report's usual one.
fn render_sized(
    out: &Canvas,
    name: &str,
    size: (u32, u32),
    figure: &dyn Fn(&DrawingArea<SVGBackend, Shift>) -> Result<()>,
) -> Result<String> {
    // Text is measured with the bundled font.
    ortl_draw::font::register();
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        area.fill(&WHITE).map_err(err)?;
        figure(&area)?;
        area.present().map_err(err)?;
    }
    std::fs::write(out.dir.join(format!("{name}.svg")), &svg)?;
    write_png(&svg, out.dpi, &out.dir.join(format!("{name}.png")))?;
    Ok(svg)
}

/// The SVG rasterized at `dpi` (the SVG being at 96), as an opaque RGB PNG.
fn write_png(svg: &str, dpi: u32, path: &Path) -> Result<()> {
    let mut options = resvg::usvg::Options::default();
    std::sync::Arc::make_mut(&mut options.fontdb).load_font_data(ortl_draw::font::BYTES.to_vec());
    std::sync::Arc::make_mut(&mut options.fontdb).set_sans_serif_family("DejaVu Sans");
    let tree = resvg::usvg::Tree::from_str(svg, &options).map_err(err)?;
    let scale = dpi as f32 / 96.0;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(scale)
        .ok_or_else(|| anyhow!("figure size"))?;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| anyhow!("figure size {size:?}"))?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    // Opaque white background: premultiplied RGBA is plain RGBA; keep RGB.
    let rgb: Vec<u8> = pixmap
        .data()
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, size.width(), size.height());
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let per_metre = (f64::from(dpi) / 0.0254).round() as u32;
    encoder.set_pixel_dims(Some(png::PixelDimensions {
        xppu: per_metre,
        yppu: per_metre,
        unit: png::Unit::Meter,
    }));
    let mut writer = encoder.write_header().map_err(err)?;
    writer.write_image_data(&rgb).map_err(err)?;
    writer.finish().map_err(err)?;
    Ok(())
}

/// A plot on [0, x_max] × [0, y_max] with the report's margins and axis titles (titles are
/// the HTML's captions, never printed twice).
fn axes<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    (x_max, y_max): (f64, f64),
    (x_desc, y_desc): (&str, &str),
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>> {
    let mut chart = ChartBuilder::on(area)
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(("sans-serif", 14))
        .light_line_style(BLACK.mix(0.03))
        .bold_line_style(BLACK.mix(0.12))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// The legend box every figure uses.
fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    position: SeriesLabelPosition,
    size: u32,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", size))
        .draw()
        .map_err(err)
}

/// A point of a curve marked on a figure: where, and what it is.
pub struct Marker {
    pub x: f64,
    pub y: f64,
    pub label: String,
}

/// ROC curve with its bootstrap 95 % band, the AUC in the legend, the chance diagonal, and
/// the operating points at the decision threshold and at Youden's threshold marked.
pub fn roc(
    out: &Canvas,
    points: &[(f64, f64, f64)],
    band: &[(f64, f64, f64)],
    auc: f64,
    markers: &[Marker],
) -> Result<String> {
    render(out, "roc", &|area| {
        let mut chart = axes(
            area,
            (1.0, 1.0),
            (
                "False positive rate (1 − specificity)",
                "True positive rate (sensitivity)",
            ),
        )?;
        if !band.is_empty() {
            let outline: Vec<(f64, f64)> = band
                .iter()
                .map(|&(x, lo, _)| (x, lo))
                .chain(band.iter().rev().map(|&(x, _, hi)| (x, hi)))
                .collect();
            chart
                .draw_series([Polygon::new(outline, BLUE.mix(0.15).filled())])
                .map_err(err)?
                .label("95 % bootstrap band")
                .legend(|(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 20, y + 5)], BLUE.mix(0.15).filled())
                });
        }
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                BLACK.mix(0.4).stroke_width(1),
            ))
            .map_err(err)?
            .label("chance")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.4)));
        chart
            .draw_series(LineSeries::new(
                thin(points.iter().map(|&(x, y, _)| (x, y))),
                BLUE.stroke_width(2),
            ))
            .map_err(err)?
            .label(format!("model (AUC = {auc:.3})"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        draw_markers(&mut chart, markers)?;
        legend(&mut chart, SeriesLabelPosition::LowerRight, 14)?;
        Ok(())
    })
}

/// A curve's points less those within 1/2000 of both axes of the last one kept (less than
/// a pixel at the PNG's 1600-pixel width): a curve over 100,000 predictions has as many
/// points, which made SVGs of megabytes without a visible difference. The ends are kept.
fn thin(points: impl IntoIterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    const STEP: f64 = 1.0 / 2000.0;
    let mut kept: Vec<(f64, f64)> = Vec::new();
    let mut last = None;
    for p in points {
        match kept.last() {
            Some(&(x, y)) if (p.0 - x).abs() < STEP && (p.1 - y).abs() < STEP => last = Some(p),
            _ => {
                kept.push(p);
                last = None;
            }
        }
    }
    kept.extend(last);
    kept
}

/// Operating points: the first (the decision threshold) as a black ring, the second
/// (Youden's) as a red triangle small enough to sit inside it, so both stay visible where
/// they coincide, and the legend then says so.
fn draw_markers<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    markers: &[Marker],
) -> Result<()> {
    let point = |k: usize| {
        markers
            .get(k)
            .filter(|m| m.x.is_finite() && m.y.is_finite())
    };
    if let Some(m) = point(0) {
        chart
            .draw_series([Circle::new((m.x, m.y), 9, BLACK.stroke_width(2))])
            .map_err(err)?
            .label(m.label.clone())
            .legend(|(x, y)| Circle::new((x + 10, y), 6, BLACK.stroke_width(2)));
    }
    if let Some(m) = point(1) {
        // Within 1 % of both axes: a few pixels, one point to the eye.
        let same = point(0).is_some_and(|t| (t.x - m.x).abs() < 0.01 && (t.y - m.y).abs() < 0.01);
        let label = if same {
            format!("{} (same point)", m.label)
        } else {
            m.label.clone()
        };
        chart
            .draw_series([TriangleMarker::new((m.x, m.y), 6, RED.filled())])
            .map_err(err)?
            .label(label)
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, RED.filled()));
    }
    Ok(())
}

/// One finding's ROC panel, in SVG pixels: four across fill the report's page width.
const PANEL: (u32, u32) = (300, 290);

/// How many panels go across: a row of up to four, else a near-square grid at most four wide
/// (NIH's 14 findings: four rows of four).
fn panel_columns(panels: usize) -> usize {
    if panels <= 4 {
        panels.max(1)
    } else {
        ((panels as f64).sqrt().ceil() as usize).min(4)
    }
}

/// `text` shortened with an ellipsis until it fits `width` pixels in `style`.
fn fitted<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle,
    width: u32,
) -> Result<String> {
    let mut chars: Vec<char> = text.chars().collect();
    let mut shown = text.to_string();
    while area.estimate_text_size(&shown, style).map_err(err)?.0 > width && chars.len() > 1 {
        chars.pop();
        shown = chars.iter().collect::<String>() + "…";
    }
    Ok(shown)
}

/// One ROC panel per finding (small multiples): the curve over the images where the
/// finding is known, chance, and the operating point at the file's threshold; the finding
/// and its AUC with the 95 % interval as the panel's title. A finding without both classes
/// gets a panel that says why it has no curve.
pub fn roc_panels(
    out: &Canvas,
    preds: &ortl_manifest::predictions::multilabel::Predictions,
    e: &crate::multilabel::Evaluation,
) -> Result<String> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let columns = panel_columns(e.findings.len());
    let rows = e.findings.len().div_ceil(columns).max(1);
    let size = (PANEL.0 * columns as u32, PANEL.1 * rows as u32);
    render_sized(out, "roc_findings", size, &|area| {
        let centred = |size: u32| {
            TextStyle::from(("sans-serif", size).into_font()).pos(Pos::new(HPos::Center, VPos::Top))
        };
        for (i, (panel, f)) in area
            .split_evenly((rows, columns))
            .iter()
            .zip(&e.findings)
            .enumerate()
        {
            let (title, plot) = panel.split_vertically(42);
            let middle = PANEL.0 as i32 / 2;
            let name_style = centred(15);
            let name = fitted(&title, &f.finding, &name_style, PANEL.0 - 16)?;
            title
                .draw(&Text::new(name, (middle, 6), name_style))
                .map_err(err)?;
            let auc = f.metric(Metric::RocAuc);
            let subtitle = match f.undefined() {
                Some(_) => "AUC undefined".to_string(),
                None if auc.ci_low.is_nan() => format!("AUC {:.3}", auc.value),
                None => format!(
                    "AUC {:.3} ({:.3}–{:.3})",
                    auc.value, auc.ci_low, auc.ci_high
                ),
            };
            title
                .draw(&Text::new(subtitle, (middle, 25), centred(13)))
                .map_err(err)?;
            let mut chart = ChartBuilder::on(&plot)
                .margin(6)
                .margin_right(14)
                .x_label_area_size(34)
                .y_label_area_size(40)
                .build_cartesian_2d(0.0..1.0, 0.0..1.0)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_labels(3)
                .y_labels(3)
                .x_desc("1 − specificity")
                .y_desc("sensitivity")
                .label_style(("sans-serif", 11))
                .axis_desc_style(("sans-serif", 12))
                .light_line_style(BLACK.mix(0.0))
                .bold_line_style(BLACK.mix(0.08))
                .draw()
                .map_err(err)?;
            if let Some(why) = f.undefined() {
                chart
                    .draw_series([Text::new(why, (0.5, 0.55), centred(12))])
                    .map_err(err)?;
                continue;
            }
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, 0.0), (1.0, 1.0)],
                    4,
                    3,
                    BLACK.mix(0.4).into(),
                ))
                .map_err(err)?;
            let (labels, scores) = preds.finding(i);
            chart
                .draw_series(LineSeries::new(
                    thin(
                        crate::metrics::roc_curve(&labels, &scores)
                            .into_iter()
                            .map(|(x, y, _)| (x, y)),
                    ),
                    BLUE.stroke_width(2),
                ))
                .map_err(err)?;
            let c = &f.confusion;
            draw_markers(
                &mut chart,
                &[Marker {
                    x: c.fp as f64 / (c.fp + c.tn) as f64,
                    y: c.tp as f64 / (c.tp + c.fn_) as f64,
                    label: format!("threshold {:.2}", f.threshold),
                }],
            )?;
            legend(&mut chart, SeriesLabelPosition::LowerRight, 11)?;
        }
        Ok(())
    })
}

/// Precision–recall curve as scikit-learn draws it: a step for each threshold (the
/// interpolation average precision sums), the no-skill line at the prevalence, and the
/// operating points marked.
pub fn precision_recall(
    out: &Canvas,
    points: &[(f64, f64, f64)],
    ap: f64,
    prevalence: f64,
    markers: &[Marker],
) -> Result<String> {
    render(out, "precision_recall", &|area| {
        let mut chart = axes(
            area,
            (1.0, 1.05),
            ("Recall (sensitivity)", "Precision (PPV)"),
        )?;
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, prevalence), (1.0, prevalence)],
                6,
                4,
                BLACK.mix(0.5).into(),
            ))
            .map_err(err)?
            .label(format!("no skill (prevalence {prevalence:.2})"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.5)));
        // Recall rises with each lower threshold; precision holds over each recall step.
        let mut steps = Vec::with_capacity(2 * points.len());
        let mut previous_recall = 0.0;
        for &(recall, precision, _) in points {
            steps.push((previous_recall, precision));
            steps.push((recall, precision));
            previous_recall = recall;
        }
        chart
            .draw_series(LineSeries::new(thin(steps), RED.stroke_width(2)))
            .map_err(err)?
            .label(format!("model (AP = {ap:.3})"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
        draw_markers(&mut chart, markers)?;
        legend(&mut chart, SeriesLabelPosition::LowerLeft, 14)?;
        Ok(())
    })
}

/// The confusion matrix's colour for a row rate in [0, 1]: white to blue.
fn shade(rate: f64) -> RGBColor {
    RGBColor(
        (255.0 - 200.0 * rate) as u8,
        (255.0 - 140.0 * rate) as u8,
        255,
    )
}

/// Confusion matrix heat map: counts and row-normalised rates in bordered cells (rows: true
/// class), with a colour bar of the row rate.
pub fn confusion(out: &Canvas, classes: &[String], matrix: &[Vec<usize>]) -> Result<String> {
    render(out, "confusion_matrix", &|area| {
        use plotters::style::text_anchor::{HPos, Pos, VPos};
        let k = classes.len();
        let kf = k as f64;
        let mut chart = ChartBuilder::on(area)
            .margin(16)
            .margin_right(110)
            .x_label_area_size(56)
            .y_label_area_size(130)
            .build_cartesian_2d(0.0..kf, 0.0..kf)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(0)
            .y_labels(0)
            .x_desc("Predicted class")
            .y_desc("True class")
            .axis_desc_style(("sans-serif", 15))
            .draw()
            .map_err(err)?;
        fn centred(size: u32, colour: &'static RGBColor, h: HPos) -> TextStyle<'static> {
            TextStyle::from(("sans-serif", size).into_font())
                .color(colour)
                .pos(Pos::new(h, VPos::Center))
        }
        for (t, row) in matrix.iter().enumerate() {
            let total: usize = row.iter().sum();
            // True class t is drawn as row t from the top.
            let y = kf - 1.0 - t as f64;
            for (p, &count) in row.iter().enumerate() {
                let x = p as f64;
                let rate = if total == 0 {
                    0.0
                } else {
                    count as f64 / total as f64
                };
                chart
                    .draw_series([
                        Rectangle::new([(x, y), (x + 1.0, y + 1.0)], shade(rate).filled()),
                        Rectangle::new(
                            [(x, y), (x + 1.0, y + 1.0)],
                            BLACK.mix(0.5).stroke_width(1),
                        ),
                    ])
                    .map_err(err)?;
                let ink: &'static RGBColor = if rate > 0.6 { &WHITE } else { &BLACK };
                let (cx, cy) = chart.backend_coord(&(x + 0.5, y + 0.5));
                area.draw(&Text::new(
                    format!("{count}"),
                    (cx, cy - 12),
                    centred(22, ink, HPos::Center),
                ))
                .map_err(err)?;
                area.draw(&Text::new(
                    format!("{:.1} %", 100.0 * rate),
                    (cx, cy + 14),
                    centred(18, ink, HPos::Center),
                ))
                .map_err(err)?;
            }
        }
        for (i, class) in classes.iter().enumerate() {
            let (x, bottom) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            area.draw(&Text::new(
                class.clone(),
                (x, bottom + 14),
                centred(15, &BLACK, HPos::Center),
            ))
            .map_err(err)?;
            let (left, y) = chart.backend_coord(&(0.0, kf - 0.5 - i as f64));
            area.draw(&Text::new(
                class.clone(),
                (left - 8, y),
                centred(15, &BLACK, HPos::Right),
            ))
            .map_err(err)?;
        }
        // Colour bar of the row rate, right of the matrix.
        let (right, top) = chart.backend_coord(&(kf, kf));
        let (_, bottom) = chart.backend_coord(&(kf, 0.0));
        let (x0, x1) = (right + 30, right + 48);
        for y in top..bottom {
            let rate = f64::from(bottom - y) / f64::from(bottom - top);
            area.draw(&Rectangle::new(
                [(x0, y), (x1, y + 1)],
                shade(rate).filled(),
            ))
            .map_err(err)?;
        }
        area.draw(&Rectangle::new(
            [(x0, top), (x1, bottom)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
        for (rate, text) in [(1.0, "100 %"), (0.5, "50 %"), (0.0, "0 %")] {
            let y = bottom - (rate * f64::from(bottom - top)) as i32;
            area.draw(&Text::new(
                text,
                (x1 + 6, y),
                centred(13, &BLACK, HPos::Left),
            ))
            .map_err(err)?;
        }
        area.draw(&Text::new(
            "of the row",
            (x0 - 4, bottom + 16),
            centred(13, &BLACK, HPos::Left),
        ))
        .map_err(err)?;
        Ok(())
    })
}

/// The epoch a run calls its best: ortl-train's `--checkpoint` metric's, which `best.onnx`
/// holds (train.json's `summary.best_epoch`), never a second definition.
pub struct BestEpoch<'a> {
    pub epoch: usize,
    /// The checkpoint metric, e.g. `val_accuracy`.
    pub metric: &'a str,
}

/// Loss and accuracy per epoch, training vs validation, side by side (as the tutorial),
/// the run's best epoch marked when known, and the legend below the panels.
pub fn training_curves(out: &Canvas, history: &[Epoch], best: Option<BestEpoch>) -> Result<String> {
    render(out, "training_curves", &|area| {
        let (plots, key) = area.split_vertically(SIZE.1 - 44);
        let panels = plots.split_evenly((1, 2));
        let last = history.len().max(2);
        let best_epoch = best.as_ref().map(|b| b.epoch as f64);
        // Histories from before val_auc have none; it shares the accuracy panel's scale.
        let val_auc: Vec<f64> = history.iter().map(|e| e.val_auc).collect();
        let has_auc = val_auc.iter().any(|v| v.is_finite());
        for (panel, (title, train, val)) in panels.iter().zip([
            (
                "Loss",
                history.iter().map(|e| e.loss).collect::<Vec<_>>(),
                history.iter().map(|e| e.val_loss).collect::<Vec<_>>(),
            ),
            (
                "Accuracy",
                history.iter().map(|e| e.accuracy).collect(),
                history.iter().map(|e| e.val_accuracy).collect(),
            ),
        ]) {
            let finite = train.iter().chain(&val).copied().filter(|v| v.is_finite());
            let hi = finite
                .clone()
                .fold(f64::MIN, f64::max)
                .max(if title == "Accuracy" { 1.0 } else { 0.0 });
            let lo = if title == "Accuracy" {
                0.0
            } else {
                finite.fold(f64::MAX, f64::min).min(0.0)
            };
            let mut chart = ChartBuilder::on(panel)
                .caption(title, ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(48)
                .build_cartesian_2d(1.0..last as f64, lo..hi * 1.05 + 1e-9)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("Epoch")
                .x_labels(last.min(10))
                // Whole epochs only: a short run must not read "1 1 1 2 2".
                .x_label_formatter(&|x| {
                    if (x - x.round()).abs() < 1e-9 {
                        format!("{x:.0}")
                    } else {
                        String::new()
                    }
                })
                .label_style(("sans-serif", 13))
                .light_line_style(BLACK.mix(0.03))
                .bold_line_style(BLACK.mix(0.12))
                .draw()
                .map_err(err)?;
            let mut lines = vec![(&train, BLUE), (&val, RED)];
            if title == "Accuracy" && has_auc {
                lines.push((&val_auc, FOREST));
            }
            for (values, colour) in lines {
                chart
                    .draw_series(LineSeries::new(
                        history
                            .iter()
                            .zip(values)
                            .filter(|(_, v)| v.is_finite())
                            .map(|(e, &v)| (e.epoch as f64, v)),
                        colour.stroke_width(2),
                    ))
                    .map_err(err)?;
            }
            if let Some(best) = best_epoch {
                chart
                    .draw_series(DashedLineSeries::new(
                        [(best, lo), (best, hi * 1.05)],
                        5,
                        4,
                        BLACK.mix(0.55).into(),
                    ))
                    .map_err(err)?;
            }
        }
        // One legend for both panels, below them.
        let text = TextStyle::from(("sans-serif", 14).into_font());
        let mut x = 60;
        let mut entries = vec![
            ("training".to_string(), BLUE.stroke_width(2)),
            ("validation".to_string(), RED.stroke_width(2)),
        ];
        if has_auc {
            entries.push(("validation ROC AUC".to_string(), FOREST.stroke_width(2)));
        }
        if let Some(best) = &best {
            entries.push((
                format!("best epoch {} (by {}; best.onnx)", best.epoch, best.metric),
                BLACK.mix(0.55).stroke_width(1),
            ));
        }
        // Entries run on to a second row rather than off the figure's edge.
        let width = key.dim_in_pixel().0 as i32;
        let mut y = 12;
        for (label, style) in entries {
            let (w, _) = key.estimate_text_size(&label, &text).map_err(err)?;
            if x > 60 && x + 32 + w as i32 > width {
                (x, y) = (60, y + 20);
            }
            key.draw(&PathElement::new([(x, y + 7), (x + 26, y + 7)], style))
                .map_err(err)?;
            key.draw(&Text::new(label.clone(), (x + 32, y), text.clone()))
                .map_err(err)?;
            x += 32 + w as i32 + 28;
        }
        Ok(())
    })
}

/// The calibration curve's green, dark enough to read on white.
const FOREST: RGBColor = RGBColor(0, 130, 60);

/// Calibration points (mean predicted probability, observed fraction positive, images) in
/// ten equal-width score bins, or, with fewer than 300 images, in equal-count (quantile)
/// bins of about 30 images (3 to 10), so no point rests on a handful of images. Returns the
/// points and a description of the binning.
pub fn calibration_bins(labels: &[bool], scores: &[f64]) -> (Vec<(f64, f64, usize)>, String) {
    let n = labels.len();
    let summarise = |members: &[usize]| {
        let count = members.len();
        let mean = members.iter().map(|&i| scores[i]).sum::<f64>() / count as f64;
        let positive = members.iter().filter(|&&i| labels[i]).count();
        (mean, positive as f64 / count as f64, count)
    };
    if n < 300 {
        let bins = (n / 30).clamp(3, 10).min(n.max(1));
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        let points = (0..bins)
            .map(|b| &order[b * n / bins..(b + 1) * n / bins])
            .filter(|members| !members.is_empty())
            .map(summarise)
            .collect();
        (points, format!("{bins} equal-count bins"))
    } else {
        let mut members = vec![Vec::new(); 10];
        for (i, &s) in scores.iter().enumerate() {
            members[((s * 10.0) as usize).min(9)].push(i);
        }
        let points = members
            .iter()
            .filter(|m| !m.is_empty())
            .map(|m| summarise(m))
            .collect();
        (points, "10 equal-width bins".into())
    }
}

/// Reliability diagram: observed fraction of positives against mean predicted probability
/// per bin ([`calibration_bins`]), each point labelled with its number of images, and the
/// diagonal of perfect calibration.
pub fn calibration(out: &Canvas, labels: &[bool], scores: &[f64]) -> Result<String> {
    let (points, binning) = calibration_bins(labels, scores);
    render(out, "calibration", &|area| {
        let mut chart = axes(
            area,
            (1.0, 1.0),
            (
                "Mean predicted probability",
                "Observed fraction of positives",
            ),
        )?;
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.4)))
            .map_err(err)?
            .label("perfectly calibrated")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.4)));
        chart
            .draw_series(
                LineSeries::new(points.iter().map(|p| (p.0, p.1)), FOREST.stroke_width(2))
                    .point_size(4),
            )
            .map_err(err)?
            .label(format!("model ({binning}; n per point)"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], FOREST.stroke_width(2)));
        let small = TextStyle::from(("sans-serif", 12).into_font());
        for &(x, y, count) in &points {
            let (px, py) = chart.backend_coord(&(x, y));
            area.draw(&Text::new(
                format!("{count}"),
                (px + 6, py - 16),
                small.clone(),
            ))
            .map_err(err)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft, 14)?;
        Ok(())
    })
}

/// Histograms of the positive-class score for each true class (20 bins), overlaid.
pub fn score_histograms(
    out: &Canvas,
    labels: &[bool],
    scores: &[f64],
    names: (&str, &str),
) -> Result<String> {
    let bins = 20;
    let count = |positive: bool| {
        let mut c = vec![0usize; bins];
        for (&y, &s) in labels.iter().zip(scores) {
            if y == positive {
                c[((s * bins as f64) as usize).min(bins - 1)] += 1;
            }
        }
        c
    };
    let (pos, neg) = (count(true), count(false));
    let top = pos.iter().chain(&neg).copied().max().unwrap_or(1).max(1) as f64;
    render(out, "score_histograms", &|area| {
        let mut chart = ChartBuilder::on(area)
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(52)
            .build_cartesian_2d(0.0..1.0, 0.0..top * 1.1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(format!("Probability of {}", names.0))
            .y_desc("Images")
            // Counts are whole: a tick between two (at a low count) stays unlabelled rather
            // than rounded onto its neighbour's number.
            .y_label_formatter(&|v| {
                if v.fract() == 0.0 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            })
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        for (counts, colour, name) in [(&neg, BLUE, names.1), (&pos, RED, names.0)] {
            let width = 1.0 / bins as f64;
            chart
                .draw_series(counts.iter().enumerate().map(|(b, &c)| {
                    Rectangle::new(
                        [(b as f64 * width, 0.0), ((b + 1) as f64 * width, c as f64)],
                        colour.mix(0.35).filled(),
                    )
                }))
                .map_err(err)?
                .label(format!("true {name}"))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.mix(0.35).filled())
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperMiddle, 14)?;
        Ok(())
    })
}

/// ROC and PR figures of a binary evaluation, the ROC with a band from `resamples`
/// stratified bootstrap resamples (none when 0), seeded.
pub fn binary_figures(
    out: &Canvas,
    labels: &[bool],
    scores: &[f64],
    eval: &BinaryEvaluation,
    resamples: usize,
    seed: u64,
) -> Result<Vec<(String, String)>> {
    let get = |metric: Metric| {
        eval.rows
            .iter()
            .find(|r| r.metric == metric)
            .map_or(f64::NAN, |r| r.value)
    };
    let rate = |k: usize, n: usize| k as f64 / n.max(1) as f64;
    let point = |c: &crate::metrics::Confusion| {
        (
            rate(c.fp, c.fp + c.tn),
            rate(c.tp, c.tp + c.fn_),
            rate(c.tp, c.tp + c.fp),
        )
    };
    let (fpr, tpr, ppv) = point(&eval.confusion);
    let (yfpr, ytpr, yppv) = eval
        .confusion_at_youden
        .as_ref()
        .map_or((f64::NAN, f64::NAN, f64::NAN), point);
    let at_threshold = format!("threshold {:.2}", eval.threshold);
    let at_youden = format!("Youden threshold {:.2}", eval.youden_threshold);
    let roc = roc(
        out,
        &crate::metrics::roc_curve(labels, scores),
        &crate::metrics::roc_band(labels, scores, resamples, seed),
        get(Metric::RocAuc),
        &[
            Marker {
                x: fpr,
                y: tpr,
                label: at_threshold.clone(),
            },
            Marker {
                x: yfpr,
                y: ytpr,
                label: at_youden.clone(),
            },
        ],
    )?;
    let pr = precision_recall(
        out,
        &crate::metrics::pr_curve(labels, scores),
        get(Metric::AveragePrecision),
        eval.positives as f64 / eval.n as f64,
        &[
            Marker {
                x: tpr,
                y: ppv,
                label: at_threshold,
            },
            Marker {
                x: ytpr,
                y: yppv,
                label: at_youden,
            },
        ],
    )?;
    let calibration = calibration(out, labels, scores)?;
    let histograms = score_histograms(out, labels, scores, (&eval.positive, &eval.negative))?;
    Ok(vec![
        ("ROC curve".into(), roc),
        ("Precision–recall curve".into(), pr),
        ("Calibration".into(), calibration),
        ("Score distributions".into(), histograms),
    ])
}

/// Bar chart of each run's accuracy and ROC AUC (multi-label runs: macro and micro AUC)
/// with their 95 % intervals.
pub fn comparison(out: &Canvas, runs: &[crate::compare::RunSummary]) -> Result<String> {
    let get = |r: &crate::compare::RunSummary, m: Metric| r.metric(&m.into()).cloned();
    render(out, "comparison", &|area| {
        let n = runs.len();
        let mut chart = ChartBuilder::on(area)
            .margin(16)
            .x_label_area_size(60)
            .y_label_area_size(52)
            // Headroom above 1 keeps the legend off the bars.
            .build_cartesian_2d(0.0..n as f64, 0.0..1.2)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc("Value (95 % CI)")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        let [first, second] = crate::compare::charted(runs);
        for (k, (metric, colour)) in [(first, BLUE), (second, RED)].into_iter().enumerate() {
            let offset = 0.15 + 0.35 * k as f64;
            let bars: Vec<(f64, f64, f64, f64)> = runs
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    get(r, metric).map(|m| (i as f64 + offset, m.value, m.ci_low, m.ci_high))
                })
                .collect();
            chart
                .draw_series(bars.iter().map(|&(x, v, _, _)| {
                    Rectangle::new(
                        [(x, 0.0), (x + 0.3, if v.is_finite() { v } else { 0.0 })],
                        colour.mix(0.5).filled(),
                    )
                }))
                .map_err(err)?
                .label(metric.name())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.mix(0.5).filled())
                });
            for &(x, _, lo, hi) in bars.iter().filter(|b| b.2.is_finite()) {
                chart
                    .draw_series(LineSeries::new(
                        [(x + 0.15, lo), (x + 0.15, hi)],
                        BLACK.stroke_width(2),
                    ))
                    .map_err(err)?;
            }
        }
        for (i, r) in runs.iter().enumerate() {
            let (x, bottom) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            // Alternate rows so that neighbouring names do not overlap.
            let bottom = bottom + if i % 2 == 1 { 18 } else { 0 };
            let style = TextStyle::from(("sans-serif", 13).into_font()).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Top,
                ),
            );
            // The run's own label, unique among the runs.
            let label = if r.run == r.backbone {
                r.run.clone()
            } else {
                format!("{} ({})", r.run, r.backbone)
            };
            area.draw(&Text::new(label, (x, bottom + 8), style))
                .map_err(err)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 14)?;
        Ok(())
    })
}

/// Cross-validation: for each backbone, one point per fold (seeds averaged) of `metric`,
/// and the mean with its 95 % t interval over folds beside them.
pub fn folds(
    out: &Canvas,
    runs: &[crate::compare::RunSummary],
    aggregates: &[crate::crossval::Aggregate],
    metric: Metric,
) -> Result<String> {
    let label = metric.label();
    let compared = metric.into();
    let rows: Vec<&crate::crossval::Aggregate> =
        aggregates.iter().filter(|a| a.metric == compared).collect();
    // Each backbone's fold values, as the aggregate averaged them.
    let units = crate::crossval::unit_values(runs, &compared);
    let points: Vec<Vec<f64>> = rows
        .iter()
        .map(|a| {
            units
                .iter()
                .find(|(b, _)| *b == a.backbone)
                .map_or_else(Vec::new, |(_, v)| v.clone())
        })
        .collect();
    let low = points
        .iter()
        .flatten()
        .chain(rows.iter().map(|a| &a.ci_low))
        .copied()
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::min);
    let y_min = ((low - 0.05).max(0.0) * 10.0).floor() / 10.0;
    render(out, "folds", &|area| {
        let n = rows.len().max(1);
        let mut chart = ChartBuilder::on(area)
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(52)
            // Headroom above 1 keeps the legend off the points.
            .build_cartesian_2d(0.0..n as f64, y_min..1.0 + 0.25 * (1.0 - y_min))
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(label.as_str())
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        if metric == Metric::RocAuc && y_min < 0.5 {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, 0.5), (n as f64, 0.5)],
                    6,
                    4,
                    BLACK.mix(0.4).into(),
                ))
                .map_err(err)?
                .label("chance")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], BLACK.mix(0.4)));
        }
        for (i, (a, values)) in rows.iter().zip(&points).enumerate() {
            let x = i as f64 + 0.35;
            let spread = 0.2 / values.len().max(1) as f64;
            let dots = chart
                .draw_series(values.iter().enumerate().map(|(k, &v)| {
                    Circle::new((x - 0.1 + spread * k as f64, v), 4, BLUE.mix(0.7).filled())
                }))
                .map_err(err)?;
            if i == 0 {
                dots.label("fold")
                    .legend(|(x, y)| Circle::new((x + 7, y), 4, BLUE.mix(0.7).filled()));
            }
            if a.mean.is_finite() {
                let mx = i as f64 + 0.7;
                let mean = chart
                    .draw_series([Circle::new((mx, a.mean), 5, BLACK.filled())])
                    .map_err(err)?;
                if i == 0 {
                    mean.label("mean, 95 % CI")
                        .legend(|(x, y)| Circle::new((x + 7, y), 5, BLACK.filled()));
                }
                if a.ci_low.is_finite() {
                    chart
                        .draw_series(LineSeries::new(
                            [(mx, a.ci_low.max(y_min)), (mx, a.ci_high.min(1.0))],
                            BLACK.stroke_width(2),
                        ))
                        .map_err(err)?;
                }
            }
            let (px, bottom) = chart.backend_coord(&(i as f64 + 0.5, y_min));
            let style = TextStyle::from(("sans-serif", 13).into_font()).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Top,
                ),
            );
            area.draw(&Text::new(
                format!("{} ({} folds)", a.backbone, a.folds),
                (px, bottom + 8),
                style,
            ))
            .map_err(err)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 13)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The operating points at the threshold and at Youden's threshold coincide when the
    /// thresholds do: both marks are drawn there, the triangle inside the ring, and the
    /// legend says they are one point.
    #[test]
    fn coinciding_operating_points_both_stay_visible() {
        let dir = ortl_fixtures::Workdir::new();
        let canvas = Canvas {
            dir: &dir.join("."),
            dpi: 96,
        };
        let at = |label: &str| Marker {
            x: 0.2,
            y: 0.8,
            label: label.into(),
        };
        let curve = [(0.0, 0.0, f64::INFINITY), (0.2, 0.8, 0.5), (1.0, 1.0, 0.1)];
        let svg = roc(
            &canvas,
            &curve,
            &[],
            0.8,
            &[at("threshold 0.50"), at("Youden threshold 0.50")],
        )
        .unwrap();
        let ring = svg
            .lines()
            .find(|l| l.starts_with("<circle") && l.contains(r#"r="9""#))
            .unwrap_or_else(|| panic!("no ring: {svg}"));
        assert!(ring.contains(r#"fill="none""#), "{ring}");
        let number = |line: &str, attribute: &str| -> f64 {
            let rest = line.split(&format!(r#" {attribute}=""#)).nth(1).unwrap();
            rest.split('"').next().unwrap().parse().unwrap()
        };
        let centre = (number(ring, "cx"), number(ring, "cy"));
        // The red triangles: the marker, then its legend entry.
        let triangle = svg
            .lines()
            .find(|l| l.starts_with("<polygon") && l.contains(r##"fill="#FF0000""##))
            .unwrap_or_else(|| panic!("no triangle: {svg}"));
        let points: Vec<(f64, f64)> = triangle
            .split(r#"points=""#)
            .nth(1)
            .unwrap()
            .split_whitespace()
            .filter_map(|p| p.split_once(','))
            .map(|(x, y)| (x.parse().unwrap(), y.trim_end_matches('"').parse().unwrap()))
            .collect();
        assert_eq!(points.len(), 3, "{triangle}");
        for (x, y) in points {
            let from_centre = ((x - centre.0).powi(2) + (y - centre.1).powi(2)).sqrt();
            assert!(
                from_centre < 8.0,
                "the triangle fits inside the ring: {triangle}"
            );
        }
        assert!(svg.contains("Youden threshold 0.50 (same point)"), "{svg}");
    }

    #[test]
    fn thinning_keeps_the_ends_and_every_visible_move() {
        // 10,001 points along a staircase of 10 visible steps, with sub-pixel jitter.
        let points: Vec<(f64, f64)> = (0..=10_000)
            .map(|i| {
                let x = f64::from(i) / 10_000.0;
                ((x * 10.0).floor() / 10.0 + 1e-5 * f64::from(i % 3), x)
            })
            .collect();
        let kept = thin(points.iter().copied());
        assert!(kept.len() < 2_500, "{} points kept", kept.len());
        assert_eq!(kept.first(), points.first());
        assert_eq!(kept.last(), points.last());
        // No dropped point is farther than the step from the kept polyline's vertices.
        for p in &points {
            let near = kept
                .iter()
                .any(|k| (k.0 - p.0).abs() <= 1.0 / 2000.0 && (k.1 - p.1).abs() <= 1.0 / 2000.0);
            assert!(near, "{p:?} lost");
        }
    }

    #[test]
    fn few_images_get_equal_count_bins_many_get_equal_width_ones() {
        let scores: Vec<f64> = (0..90).map(|i| f64::from(i) / 90.0).collect();
        let labels: Vec<bool> = (0..90).map(|i| i % 3 == 0).collect();
        let (points, binning) = calibration_bins(&labels, &scores);
        assert_eq!(binning, "3 equal-count bins");
        assert_eq!(points.iter().map(|p| p.2).collect::<Vec<_>>(), [30, 30, 30]);
        assert!((points[0].0 - 14.5 / 90.0).abs() < 1e-12);
        assert!((points[0].1 - 10.0 / 30.0).abs() < 1e-12);
        let scores: Vec<f64> = (0..1000).map(|i| f64::from(i) / 1000.0).collect();
        let labels = vec![true; 1000];
        let (points, binning) = calibration_bins(&labels, &scores);
        assert_eq!(binning, "10 equal-width bins");
        assert!(points.iter().all(|p| p.2 == 100));
    }
}
