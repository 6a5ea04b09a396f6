//! The report's figures, each drawn once per backend: PNG (bitmap, with an embedded font so
//! no system fonts are needed) and SVG (embedded in report.html).

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::evaluate::BinaryEvaluation;
use crate::input::Epoch;

const SIZE: (u32, u32) = (640, 480);

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

/// Draws `figure` to `<dir>/<name>.png` and returns it as an SVG string (also written).
fn render(
    dir: &Path,
    name: &str,
    figure: &dyn Fn(&DrawingArea<BitMapBackend, Shift>) -> Result<()>,
    svg_figure: &dyn Fn(&DrawingArea<SVGBackend, Shift>) -> Result<()>,
) -> Result<String> {
    ortl_explain::font::register();
    let png = dir.join(format!("{name}.png"));
    {
        let area = BitMapBackend::new(&png, SIZE).into_drawing_area();
        area.fill(&WHITE).map_err(err)?;
        figure(&area)?;
        area.present().map_err(err)?;
    }
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        area.fill(&WHITE).map_err(err)?;
        svg_figure(&area)?;
        area.present().map_err(err)?;
    }
    std::fs::write(dir.join(format!("{name}.svg")), &svg)?;
    Ok(svg)
}

/// One figure function for both backends.
macro_rules! figure {
    ($dir:expr, $name:expr, |$area:ident| $body:block) => {
        render(
            $dir,
            $name,
            &|$area: &DrawingArea<BitMapBackend, Shift>| $body,
            &|$area: &DrawingArea<SVGBackend, Shift>| $body,
        )
    };
}

/// A plot on [0, x_max] × [0, y_max] with the report's caption, margins and axis titles.
fn axes<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
    (x_max, y_max): (f64, f64),
    (x_desc, y_desc): (&str, &str),
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 22))
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

/// ROC curve with the AUC in the legend and the chance diagonal.
pub fn roc(dir: &Path, points: &[(f64, f64, f64)], auc: f64) -> Result<String> {
    figure!(dir, "roc", |area| {
        let mut chart = axes(
            area,
            "ROC curve",
            (1.0, 1.0),
            (
                "False positive rate (1 − specificity)",
                "True positive rate (sensitivity)",
            ),
        )?;
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
                points.iter().map(|&(x, y, _)| (x, y)),
                BLUE.stroke_width(2),
            ))
            .map_err(err)?
            .label(format!("model (AUC = {auc:.3})"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        legend(&mut chart, SeriesLabelPosition::LowerRight, 15)?;
        Ok(())
    })
}

/// Precision–recall curve with average precision and the prevalence baseline.
pub fn precision_recall(
    dir: &Path,
    points: &[(f64, f64, f64)],
    ap: f64,
    prevalence: f64,
) -> Result<String> {
    figure!(dir, "precision_recall", |area| {
        let mut chart = axes(
            area,
            "Precision–recall curve",
            (1.0, 1.05),
            ("Recall (sensitivity)", "Precision (PPV)"),
        )?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, prevalence), (1.0, prevalence)],
                BLACK.mix(0.4),
            ))
            .map_err(err)?
            .label(format!("prevalence {prevalence:.2}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.4)));
        let mut steps = vec![(0.0, points.first().map_or(1.0, |p| p.1))];
        steps.extend(points.iter().map(|&(r, p, _)| (r, p)));
        chart
            .draw_series(LineSeries::new(steps, RED.stroke_width(2)))
            .map_err(err)?
            .label(format!("model (AP = {ap:.3})"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
        legend(&mut chart, SeriesLabelPosition::LowerLeft, 15)?;
        Ok(())
    })
}

/// Confusion matrix heat map: counts and row-normalised rates (rows: true class).
pub fn confusion(dir: &Path, classes: &[String], matrix: &[Vec<usize>]) -> Result<String> {
    figure!(dir, "confusion_matrix", |area| {
        use plotters::style::text_anchor::{HPos, Pos, VPos};
        let k = classes.len();
        let kf = k as f64;
        let mut chart = ChartBuilder::on(area)
            .caption("Confusion matrix (rows: true class)", ("sans-serif", 22))
            .margin(16)
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
                let shade = RGBColor(
                    (255.0 - 200.0 * rate) as u8,
                    (255.0 - 140.0 * rate) as u8,
                    255,
                );
                chart
                    .draw_series([Rectangle::new([(x, y), (x + 1.0, y + 1.0)], shade.filled())])
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
        Ok(())
    })
}

/// Loss and accuracy per epoch, training vs validation, side by side (as the tutorial).
pub fn training_curves(dir: &Path, history: &[Epoch]) -> Result<String> {
    figure!(dir, "training_curves", |area| {
        let panels = area.split_evenly((1, 2));
        let last = history.len().max(2);
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
                .x_label_formatter(&|x| format!("{x:.0}"))
                .label_style(("sans-serif", 13))
                .draw()
                .map_err(err)?;
            for (values, colour, label) in [(&train, BLUE, "training"), (&val, RED, "validation")] {
                chart
                    .draw_series(LineSeries::new(
                        history
                            .iter()
                            .zip(values)
                            .filter(|(_, v)| v.is_finite())
                            .map(|(e, &v)| (e.epoch as f64, v)),
                        colour.stroke_width(2),
                    ))
                    .map_err(err)?
                    .label(label)
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                    });
            }
            let corner = if title == "Loss" {
                SeriesLabelPosition::UpperRight
            } else {
                SeriesLabelPosition::LowerRight
            };
            legend(&mut chart, corner, 13)?;
        }
        Ok(())
    })
}

/// Reliability diagram: in ten equal-width score bins, the observed fraction of positives
/// against the mean predicted probability, with the diagonal of perfect calibration.
pub fn calibration(dir: &Path, labels: &[bool], scores: &[f64]) -> Result<String> {
    let bins = 10;
    let mut sums = vec![(0.0f64, 0usize, 0usize); bins];
    for (&y, &s) in labels.iter().zip(scores) {
        let b = ((s * bins as f64) as usize).min(bins - 1);
        sums[b].0 += s;
        sums[b].1 += usize::from(y);
        sums[b].2 += 1;
    }
    let points: Vec<(f64, f64, usize)> = sums
        .iter()
        .filter(|b| b.2 > 0)
        .map(|&(s, pos, n)| (s / n as f64, pos as f64 / n as f64, n))
        .collect();
    figure!(dir, "calibration", |area| {
        let mut chart = axes(
            area,
            "Calibration (reliability) diagram",
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
                LineSeries::new(points.iter().map(|p| (p.0, p.1)), GREEN.stroke_width(2))
                    .point_size(4),
            )
            .map_err(err)?
            .label("model (points: 10 score bins)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], GREEN.stroke_width(2)));
        legend(&mut chart, SeriesLabelPosition::UpperLeft, 14)?;
        Ok(())
    })
}

/// Histograms of the positive-class score for each true class (20 bins), overlaid.
pub fn score_histograms(
    dir: &Path,
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
    figure!(dir, "score_histograms", |area| {
        let mut chart = ChartBuilder::on(area)
            .caption("Scores by true class", ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(52)
            .build_cartesian_2d(0.0..1.0, 0.0..top * 1.1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(format!("Probability of {}", names.0))
            .y_desc("Images")
            .y_label_formatter(&|v| format!("{v:.0}"))
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

/// ROC and PR figures of a binary evaluation.
pub fn binary_figures(
    dir: &Path,
    labels: &[bool],
    scores: &[f64],
    eval: &BinaryEvaluation,
) -> Result<Vec<(String, String)>> {
    let get = |name: &str| {
        eval.rows
            .iter()
            .find(|r| r.metric == name)
            .map_or(f64::NAN, |r| r.value)
    };
    let roc = roc(
        dir,
        &crate::metrics::roc_curve(labels, scores),
        get("roc_auc"),
    )?;
    let pr = precision_recall(
        dir,
        &crate::metrics::pr_curve(labels, scores),
        get("average_precision"),
        eval.positives as f64 / eval.n as f64,
    )?;
    let calibration = calibration(dir, labels, scores)?;
    let histograms = score_histograms(dir, labels, scores, (&eval.positive, &eval.negative))?;
    Ok(vec![
        ("ROC curve".into(), roc),
        ("Precision–recall curve".into(), pr),
        ("Calibration".into(), calibration),
        ("Score distributions".into(), histograms),
    ])
}

/// Bar chart of each run's accuracy and ROC AUC with their 95 % intervals.
pub fn comparison(dir: &Path, runs: &[crate::compare::RunSummary]) -> Result<String> {
    let get =
        |r: &crate::compare::RunSummary, m: &str| r.metrics.iter().find(|x| x.metric == m).cloned();
    figure!(dir, "comparison", |area| {
        let n = runs.len();
        let mut chart = ChartBuilder::on(area)
            .caption("Comparison across runs", ("sans-serif", 22))
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
        for (k, (metric, colour)) in [("accuracy", BLUE), ("roc_auc", RED)]
            .into_iter()
            .enumerate()
        {
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
                .label(metric)
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
            let name = std::path::Path::new(&r.run)
                .file_name()
                .map_or(r.run.clone(), |f| f.to_string_lossy().into_owned());
            let label = match (r.fold, r.seed) {
                (Some(fold), Some(seed)) => format!("{} f{fold} s{seed}", r.backbone),
                _ if name == r.backbone => name,
                _ => format!("{name} ({})", r.backbone),
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
    dir: &Path,
    runs: &[crate::compare::RunSummary],
    aggregates: &[crate::crossval::Aggregate],
    metric: &str,
) -> Result<String> {
    let label = crate::compare::label(metric);
    let rows: Vec<&crate::crossval::Aggregate> =
        aggregates.iter().filter(|a| a.metric == metric).collect();
    // Each backbone's fold values, as the aggregate averaged them.
    let units = crate::crossval::unit_values(runs, metric);
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
    figure!(dir, "folds", |area| {
        let n = rows.len().max(1);
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("{label} per fold (mean and 95 % CI)"),
                ("sans-serif", 22),
            )
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
            .y_desc(label)
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        if metric == "roc_auc" && y_min < 0.5 {
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
