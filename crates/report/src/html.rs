//! report.html (one self-contained file: tables and inline SVG figures, no scripts, opens
//! offline) and report.md. Class names and paths come from users: the HTML is built with
//! maud, which escapes every interpolated text (only the figures' SVG, which the plot
//! backends escape themselves, goes in as markup); the Markdown escapes with [`md_text`].

use std::fmt::Write;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::evaluate::{BinaryEvaluation, MetricRow, MulticlassEvaluation};
use crate::metrics::Metric;
use crate::multilabel::{AT_THRESHOLD, Evaluation};

/// Figures two per row on a wide page and one on a narrow one; the gallery a grid of tiles at
/// least 320 pixels wide, their pictures at the tile's width (bordered, so a heatmap's caption band
/// reads as part of it, not as the caption of the picture above) and their labels as text.
const REPORT_STYLE: &str = "body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}td.text{text-align:left}.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,560px),1fr));gap:1.5em}.figures figure{margin:0}.figures svg{width:100%;height:auto}figcaption{text-align:center}.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:1em;align-items:start}figure.cam{margin:0;padding:0.5em;border:1px solid #ddd}figure.cam img{display:block;box-sizing:border-box;max-width:100%;height:auto;margin-bottom:0.6em;border:1px solid #ddd}figure.cam img:not([style]){width:100%}figure.cam figcaption{text-align:left}figure.cam dl{display:grid;grid-template-columns:auto 1fr;gap:0.1em 0.8em;margin:0}figure.cam dt{color:#666}figure.cam dd{margin:0;overflow-wrap:anywhere}.missing{color:#a60}.note{color:#a60}";

/// Added for multi-label reports: wide tables scroll, the ROC panels take the page's width,
/// interval bounds sit under their value, the co-occurrence table's column names run
/// upwards so that 14 findings fit across, and a long finding name is cut with an ellipsis
/// (whole on hovering).
const FINDINGS_STYLE: &str = ".wide{overflow-x:auto}figure.wide{margin:1em 0}figure.wide svg{display:block;margin:0 auto;width:100%;max-width:1200px;height:auto}td small{display:block;color:#666;white-space:nowrap}th.up{writing-mode:vertical-rl;transform:rotate(180deg);text-align:left;white-space:nowrap}span.name{display:inline-block;max-width:16em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;vertical-align:bottom}th.up span.name{max-width:none;max-height:12em}td.same{font-weight:bold;outline:2px solid #888;outline-offset:-2px}";

const COMPARISON_STYLE: &str = "body{font-family:sans-serif;max-width:1300px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}";

/// A page: the document head with `title` and `style`, then `body`.
fn page(title: &str, style: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                style { (PreEscaped(style)) }
            }
            body { (body) }
        }
    }
    .into_string()
        + "\n"
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else {
        format!("{v:.4}")
    }
}

/// A p-value for people: below 1e-4 as "< 0.0001" (four decimals would print a
/// misleading 0.0000); CSV and JSON keep the number.
fn p_value(p: f64) -> String {
    if p < 1e-4 {
        "< 0.0001".into()
    } else {
        number(p)
    }
}

fn interval(row: &MetricRow) -> String {
    if row.ci_low.is_nan() {
        "—".into()
    } else {
        format!("{:.4} – {:.4}", row.ci_low, row.ci_high)
    }
}

/// Why metrics at the Youden threshold are optimistic, and where the threshold came from.
fn youden_note(b: &BinaryEvaluation) -> String {
    let source = match &b.threshold_source {
        Some(source) => format!(" The threshold {:.4} {source}.", b.threshold),
        None => String::new(),
    };
    format!(
        "The Youden-optimal threshold is chosen and scored on these same images, so metrics at it are optimistic; choose a threshold on validation predictions with --threshold-from and score test predictions with it.{source}"
    )
}

/// What the report evaluated.
pub enum Metrics<'a> {
    /// One class per image: binary metrics (two classes) and per-class ones.
    Classes {
        binary: Option<&'a BinaryEvaluation>,
        multiclass: &'a MulticlassEvaluation,
    },
    /// Findings per image, with the SVG of their ROC panels.
    Findings {
        evaluation: &'a Evaluation,
        roc: String,
    },
}

/// Everything the report shows.
pub struct Report<'a> {
    pub title: String,
    pub source: String,
    /// What was evaluated and how it was trained (from the run's train.json): backbone,
    /// whether pretrained, data, settings, versions.
    pub provenance: Vec<(String, String)>,
    pub metrics: Metrics<'a>,
    pub figures: Vec<(String, String)>,
    /// How the intervals were computed, as a sentence.
    pub intervals: String,
    pub notes: Vec<String>,
    pub gallery: Option<crate::gallery::Rendered>,
}

pub fn html(r: &Report) -> String {
    let body = html! {
        h1 { (r.title) }
        p { "Predictions: " code { (r.source) } ". " (r.intervals) }
        @if !r.provenance.is_empty() {
            h2 { "Model and training" }
            table {
                @for (what, value) in &r.provenance {
                    tr { th { (what) } td.text { (value) } }
                }
            }
        }
        @for note in &r.notes {
            p.note { (note) }
        }
        @match &r.metrics {
            Metrics::Classes { binary, multiclass } => {
                @if let Some(b) = binary {
                    (binary_section(b))
                }
                (multiclass_section(multiclass))
            }
            Metrics::Findings { evaluation, roc } => (findings_section(evaluation, roc)),
        }
        @if !r.figures.is_empty() {
            h2 { "Figures" }
            div.figures {
                @for (caption, svg) in &r.figures {
                    // SVG from the plot backends, which escape the text they draw.
                    figure { (PreEscaped(svg)) figcaption { (caption) } }
                }
            }
        }
        // Last: dozens of tiles would push the figures far down the page.
        @if let Some(gallery) = &r.gallery {
            (gallery.html)
        }
    };
    match r.metrics {
        Metrics::Classes { .. } => page(&r.title, REPORT_STYLE, body),
        Metrics::Findings { .. } => {
            page(&r.title, &(REPORT_STYLE.to_string() + FINDINGS_STYLE), body)
        }
    }
}

/// A finding's metric as its value with the interval beneath it; a dash when undefined.
fn estimate(row: &MetricRow) -> Markup {
    html! {
        @if row.value.is_nan() {
            "—"
        } @else {
            (format!("{:.3}", row.value))
            @if !row.ci_low.is_nan() {
                small { (format!("{:.3}–{:.3}", row.ci_low, row.ci_high)) }
            }
        }
    }
}

/// A finding's name in a table cell: cut to the cell's width by the style, whole as its
/// title.
fn finding_name(name: &str) -> Markup {
    html! { span.name title=(name) { (name) } }
}

/// The averages as sentences (HTML and Markdown say the same).
fn averages(e: &Evaluation) -> [String; 2] {
    let bounds = |row: &MetricRow| {
        if row.ci_low.is_nan() {
            "no interval".to_string()
        } else {
            format!(
                "95 % CI {:.3}–{:.3}, bootstrap over images",
                row.ci_low, row.ci_high
            )
        }
    };
    let mut macro_average = format!(
        "Macro-average ROC AUC {} ({}): the mean over the {} findings with positive and negative labels known.",
        number(e.macro_auc.value),
        bounds(&e.macro_auc),
        e.averaged.len()
    );
    if !e.undefined.is_empty() {
        macro_average += &format!(" Undefined, so not averaged: {}.", e.why_undefined());
    }
    let micro_average = format!(
        "Micro-average ROC AUC {} ({}): every known (image, finding) label pooled, {} labels, {} positive.",
        number(e.micro_auc.value),
        bounds(&e.micro_auc),
        e.labels,
        e.positive_labels
    );
    [macro_average, micro_average]
}

/// White to blue with `share` (0 to 1), as the confusion matrix.
fn tint(share: f64) -> String {
    let share = if share.is_nan() { 0.0 } else { share };
    format!(
        "background:rgb({},{},255)",
        (255.0 - 120.0 * share) as u8,
        (255.0 - 80.0 * share) as u8
    )
}

fn percent(rate: f64) -> String {
    if rate.is_nan() {
        "—".into()
    } else {
        format!("{:.1} %", 100.0 * rate)
    }
}

fn findings_section(e: &Evaluation, roc: &str) -> Markup {
    let c = &e.co_occurrence;
    // Shaded against the most frequent pair: co-occurrence rates are small beside prevalence.
    let most = (0..c.findings.len())
        .flat_map(|a| {
            (0..c.findings.len())
                .filter(move |&b| b != a)
                .map(move |b| (a, b))
        })
        .map(|(a, b)| c.rate[a][b])
        .filter(|r| r.is_finite())
        .fold(0.0, f64::max);
    let shade = |a: usize, b: usize| (a != b && most > 0.0).then(|| tint(c.rate[a][b] / most));
    html! {
        h2 { "Per finding" }
        p {
            "Each finding counts only the images where its label is known. Sensitivity, specificity, PPV, NPV and F1 are at the file's threshold (present at p ≥ t); each value has its 95 % interval beneath it."
        }
        div.wide {
            table {
                tr {
                    th { "Finding" } th { "Known" } th { "Positive" } th { "Prevalence" } th { "Threshold" }
                    th { (Metric::RocAuc.label()) }
                    @for m in AT_THRESHOLD { th { (m.label()) } }
                }
                @for f in &e.findings {
                    tr {
                        td { (finding_name(&f.finding)) } td { (f.n) } td { (f.positives) }
                        td { (number(f.prevalence)) } td { (number(f.threshold)) }
                        td { (estimate(f.metric(Metric::RocAuc))) }
                        @for m in AT_THRESHOLD { td { (estimate(f.metric(m))) } }
                    }
                }
            }
        }
        @for sentence in averages(e) {
            p { (sentence) }
        }
        figure.wide {
            // SVG from the plot backend, which escapes the text it draws.
            (PreEscaped(roc))
            figcaption { "ROC curve of each finding over the images where its label is known; ring: the operating point at the file's threshold; dashed: chance." }
        }
        h2 { "Label prevalence and co-occurrence" }
        p {
            "Each cell: the share of images with both findings positive among the images where both labels are known (the counts beneath); the diagonal is each finding's prevalence. Shading is relative to the most frequent pair."
        }
        div.wide {
            table {
                tr {
                    th {}
                    @for name in &c.findings { th.up { (finding_name(name)) } }
                }
                @for (a, name) in c.findings.iter().enumerate() {
                    tr {
                        th { (finding_name(name)) }
                        @for b in 0..c.findings.len() {
                            td.same[a == b] style=[shade(a, b)] {
                                (percent(c.rate[a][b]))
                                small { (c.both_positive[a][b]) "/" (c.both_known[a][b]) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn binary_section(b: &BinaryEvaluation) -> Markup {
    let c = &b.confusion;
    html! {
        h2 { "Binary metrics" }
        p {
            "Positive class " b { (b.positive) } ", negative class " b { (b.negative) } "; "
            (b.n) " images, " (b.positives) " positive. Threshold " (format!("{:.4}", b.threshold))
            "; Youden-optimal threshold " (number(b.youden_threshold)) "."
        }
        @if !b.youden_threshold.is_nan() {
            p { (youden_note(b)) }
        }
        table {
            tr { th {} th { "predicted " (b.negative) } th { "predicted " (b.positive) } }
            tr { td { "true " (b.negative) } td { "TN " (c.tn) } td { "FP " (c.fp) } }
            tr { td { "true " (b.positive) } td { "FN " (c.fn_) } td { "TP " (c.tp) } }
        }
        table {
            tr { th { "Metric" } th { "Value" } th { "95 % CI" } th { "Interval" } th { "Threshold" } }
            @for row in &b.rows {
                tr {
                    td { (row.metric.label()) }
                    td { (number(row.value)) }
                    td { (interval(row)) }
                    td { (row.interval.name()) }
                    td { (row.threshold.map_or(String::new(), number)) }
                }
            }
        }
    }
}

fn multiclass_section(m: &MulticlassEvaluation) -> Markup {
    html! {
        h2 { "Per class" }
        p {
            "Accuracy " (number(m.accuracy)) ", multi-class MCC " (number(m.mcc)) ", macro F1 "
            (number(m.macro_f1)) ", weighted F1 " (number(m.weighted_f1))
            ", macro one-vs-rest AUC " (number(m.macro_auc)) "."
        }
        table {
            tr {
                th { "class" } th { (Metric::Precision.label()) } th { (Metric::Sensitivity.label()) }
                th { (Metric::F1.label()) } th { (Metric::RocAuc.label()) " (one vs rest)" } th { "support" }
            }
            @for (class, p, recall, f1, auc, support) in &m.per_class {
                tr {
                    td { (class) } td { (number(*p)) } td { (number(*recall)) } td { (number(*f1)) }
                    td { (number(*auc)) } td { (support) }
                }
            }
        }
    }
}

/// Text that Markdown shows as written: its punctuation escaped, so a class named
/// `a|b` stays in its table cell and `*_x_*` is not emphasis.
pub fn md_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!'
        ) {
            out.push('\\');
        }
        match c {
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A code span that holds any text: fenced by more backticks than the text's longest run.
pub fn md_code(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!(
        "{fence}{pad}{}{pad}{fence}",
        text.replace(['\n', '\r'], " ")
    )
}

pub fn markdown(r: &Report) -> String {
    let mut md = format!(
        "# {}\n\nPredictions: {}. {}\n\n",
        md_text(&r.title),
        md_code(&r.source),
        r.intervals
    );
    if !r.provenance.is_empty() {
        md.push_str("## Model and training\n\n| | |\n|---|---|\n");
        for (what, value) in &r.provenance {
            let _ = writeln!(md, "| {} | {} |", md_text(what), md_text(value));
        }
        md.push('\n');
    }
    for note in &r.notes {
        let _ = writeln!(md, "> {note}\n");
    }
    match &r.metrics {
        Metrics::Classes { binary, multiclass } => {
            if let Some(b) = binary {
                let c = &b.confusion;
                let _ = writeln!(
                    md,
                    "Positive class **{}**; threshold {:.4} (Youden {}). TN {} · FP {} · FN {} · TP {}\n",
                    md_text(&b.positive),
                    b.threshold,
                    number(b.youden_threshold),
                    c.tn,
                    c.fp,
                    c.fn_,
                    c.tp
                );
                if !b.youden_threshold.is_nan() {
                    let _ = writeln!(md, "{}\n", youden_note(b));
                }
                md.push_str("| Metric | Value | 95 % CI | Interval |\n|---|---:|---:|---|\n");
                for row in &b.rows {
                    let _ = writeln!(
                        md,
                        "| {} | {} | {} | {} |",
                        row.metric.label(),
                        number(row.value),
                        interval(row),
                        row.interval.name()
                    );
                }
                md.push('\n');
            }
            let m = multiclass;
            let _ = writeln!(
                md,
                "| class | {} | {} | {} | {} (one vs rest) | support |\n|---|---:|---:|---:|---:|---:|",
                Metric::Precision.label(),
                Metric::Sensitivity.label(),
                Metric::F1.label(),
                Metric::RocAuc.label()
            );
            for (class, p, rec, f1, auc, support) in &m.per_class {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {support} |",
                    md_text(class),
                    number(*p),
                    number(*rec),
                    number(*f1),
                    number(*auc)
                );
            }
        }
        Metrics::Findings { evaluation, .. } => findings_markdown(&mut md, evaluation),
    }
    if let Some(gallery) = &r.gallery {
        md.push_str("\n## Where the model looks (Grad-CAM)\n");
        for (title, paths) in &gallery.listing {
            let _ = writeln!(md, "\n{}:\n", md_text(title));
            for path in paths {
                let _ = writeln!(md, "- {}", md_code(path));
            }
        }
    }
    md
}

/// The multi-label sections of report.md: the per-finding table, the averages and the
/// co-occurrence table.
fn findings_markdown(md: &mut String, e: &Evaluation) {
    let cell = |row: &MetricRow| {
        if row.value.is_nan() {
            "—".to_string()
        } else if row.ci_low.is_nan() {
            format!("{:.3}", row.value)
        } else {
            format!("{:.3} ({:.3}–{:.3})", row.value, row.ci_low, row.ci_high)
        }
    };
    md.push_str(
        "## Per finding\n\n| Finding | Known | Positive | Prevalence | Threshold | ROC AUC |",
    );
    for m in AT_THRESHOLD {
        let _ = write!(md, " {} |", m.label());
    }
    md.push_str("\n|---|---:|---:|---:|---:|---:|");
    md.push_str(&"---:|".repeat(AT_THRESHOLD.len()));
    md.push('\n');
    for f in &e.findings {
        let _ = write!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            md_text(&f.finding),
            f.n,
            f.positives,
            number(f.prevalence),
            number(f.threshold),
            cell(f.metric(Metric::RocAuc))
        );
        for m in AT_THRESHOLD {
            let _ = write!(md, " {} |", cell(f.metric(m)));
        }
        md.push('\n');
    }
    for sentence in averages(e) {
        let _ = write!(md, "\n{}\n", md_text(&sentence));
    }
    let c = &e.co_occurrence;
    md.push_str("\n## Label prevalence and co-occurrence\n\nBoth positive among both known (the diagonal: prevalence).\n\n|");
    for name in &c.findings {
        let _ = write!(md, " | {}", md_text(name));
    }
    md.push_str(" |\n|---|");
    md.push_str(&"---:|".repeat(c.findings.len()));
    md.push('\n');
    for (a, name) in c.findings.iter().enumerate() {
        let _ = write!(md, "| {} |", md_text(name));
        for b in 0..c.findings.len() {
            let _ = write!(
                md,
                " {} ({}/{}) |",
                percent(c.rate[a][b]),
                c.both_positive[a][b],
                c.both_known[a][b]
            );
        }
        md.push('\n');
    }
}

/// Cross-validation sections of comparison.html/// Cross-validation sections of comparison.html: per-backbone means over folds with their
/// intervals, the per-fold chart, and the paired comparisons.
pub struct CrossValidation<'a> {
    pub aggregates: &'a [crate::crossval::Aggregate],
    pub paired: &'a [crate::crossval::Paired],
    pub chart_svg: String,
    pub chart_metric: Metric,
}

fn between(low: f64, high: f64) -> String {
    if low.is_nan() {
        "—".into()
    } else {
        format!("{low:.4} – {high:.4}")
    }
}

fn cross_validation(cv: &CrossValidation) -> Markup {
    html! {
        h2 { "Over folds" }
        p {
            "Each backbone's metric per fold (runs of the same fold with other seeds averaged first), then the mean over folds, the sample standard deviation and the 95 % Student-t interval of the mean (clipped to the metric's range; with few folds it is wide). Runs where the metric is undefined (NaN) are counted under “undefined” and left out of the rest."
        }
        table {
            tr { th { "backbone" } th { "metric" } th { "runs" } th { "undefined" } th { "folds" } th { "mean ± sd" } th { "95 % CI" } th { "min – max" } }
            @for a in cv.aggregates {
                tr {
                    td { (a.backbone) } td { (a.metric.label()) } td { (a.runs) } td { (a.runs_nan) } td { (a.folds) }
                    td { (number(a.mean)) " ± " (number(a.std)) }
                    td { (between(a.ci_low, a.ci_high)) } td { (between(a.min, a.max)) }
                }
            }
        }
        figure {
            (PreEscaped(&cv.chart_svg))
            figcaption { (cv.chart_metric.label()) " per fold (blue) and the mean with its 95 % CI (black)." }
        }
        @if !cv.paired.is_empty() {
            h2 { "Paired comparisons" }
            p {
                "Backbone A minus backbone B on the folds both were run on: mean difference, 95 % Student-t interval and the two-sided paired t-test (folds are not fully independent, since their training sets overlap: read the p-values as a guide)."
            }
            table {
                tr { th { "metric" } th { "A" } th { "B" } th { "folds" } th { "mean A − B" } th { "95 % CI" } th { "p" } }
                @for p in cv.paired {
                    tr {
                        td { (p.metric.label()) } td { (p.a) } td { (p.b) } td { (p.folds) }
                        td { (number(p.mean_difference)) } td { (between(p.ci_low, p.ci_high)) }
                        td { (p_value(p.p_value)) }
                    }
                }
            }
        }
    }
}

/// comparison.html: the runs table and the bar chart, and the cross-validation sections
/// when the runs are folds.
pub fn comparison(
    runs: &[crate::compare::RunSummary],
    chart_svg: &str,
    cv: Option<&CrossValidation>,
    differences: &[crate::delong::AucDifference],
) -> String {
    use crate::compare::{Compared, compared, headline};
    let estimate = |m: Option<&MetricRow>| match m {
        Some(m) => format!("{} ({})", number(m.value), interval(m)),
        None => "—".into(),
    };
    let per_finding: Vec<String> = compared(runs)
        .into_iter()
        .filter_map(|m| match m {
            Compared::FindingAuc(finding) => Some(finding),
            Compared::Run(_) => None,
        })
        .collect();
    let body = html! {
        h1 { "Comparison across runs" }
        table {
            tr {
                th { "run" } th { "backbone" } th { "head" } th { "fold" } th { "seed" }
                th { "parameters" } th { "epochs" } th { "training s" } th { "images/s" }
                @for m in headline(runs) { th { (m.label()) " (95 % CI)" } }
            }
            @for r in runs {
                tr {
                    td { (r.run) } td { (r.backbone) } td { (r.head) }
                    td { (r.fold.map_or_else(|| "—".to_string(), |f| f.to_string())) }
                    td { (r.seed) } td { (r.parameters) } td { (r.epochs) }
                    td { (format!("{:.1}", r.train_seconds)) }
                    td { (format!("{:.1}", r.train_images_per_second)) }
                    @for &m in headline(runs) { td { (estimate(r.metric(&m.into()))) } }
                }
            }
        }
        figure { (PreEscaped(chart_svg)) }
        @if !per_finding.is_empty() {
            h2 { "ROC AUC per finding" }
            p {
                "Each finding's AUC over the images where its label is known, with DeLong's 95 % interval; the macro and micro averages above have bootstrap intervals over images."
            }
            table {
                tr { th { "finding" } @for r in runs { th { (r.run) } } }
                @for finding in per_finding {
                    tr {
                        td { (finding) }
                        @let auc = Compared::FindingAuc(finding);
                        @for r in runs { td { (estimate(r.metric(&auc))) } }
                    }
                }
            }
        }
        @if !differences.is_empty() {
            h2 { "ROC AUC differences (DeLong)" }
            p {
                "Run a's AUC minus run b's, with a 95 % interval and a two-sided p-value; paired (correlated AUCs) when both runs scored the same images, else as independent samples. Not corrected for multiple comparisons."
            }
            table {
                tr { th { "a" } th { "b" } th { "images" } th { "AUC a" } th { "AUC b" } th { "difference (95 % CI)" } th { "p" } }
                @for d in differences {
                    tr {
                        td { (d.a) } td { (d.b) }
                        td { (if d.paired { "same (paired)" } else { "different" }) }
                        td { (number(d.auc_a)) } td { (number(d.auc_b)) }
                        td { (number(d.difference)) " (" (number(d.ci_low)) " – " (number(d.ci_high)) ")" }
                        td { (p_value(d.p_value)) }
                    }
                }
            }
        }
        @if let Some(cv) = cv {
            (cross_validation(cv))
        }
    };
    page("ortl comparison", COMPARISON_STYLE, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped_and_figures_are_not() {
        let multiclass = MulticlassEvaluation {
            classes: vec!["<script>alert('x')</script>".into()],
            confusion: vec![vec![2]],
            accuracy: 0.5,
            mcc: 0.0,
            macro_f1: 0.5,
            weighted_f1: 0.5,
            macro_auc: 0.5,
            per_class: vec![("<script>alert('x')</script>".into(), 0.5, 0.5, 0.5, 0.5, 2)],
        };
        let report = Report {
            title: "a & \"b\"".into(),
            source: "p.csv".into(),
            provenance: vec![("Head".into(), "<b>bold</b>".into())],
            metrics: Metrics::Classes {
                binary: None,
                multiclass: &multiclass,
            },
            figures: vec![("<i>roc</i>".into(), "<svg><text>ROC</text></svg>".into())],
            intervals: "bootstrap".into(),
            notes: vec![],
            gallery: None,
        };
        let page = html(&report);
        assert!(
            page.contains("<title>a &amp; &quot;b&quot;</title>"),
            "{page}"
        );
        assert!(
            page.contains("&lt;script&gt;alert('x')&lt;/script&gt;"),
            "{page}"
        );
        assert!(!page.contains("<script>"));
        assert!(
            page.contains("&lt;b&gt;bold&lt;/b&gt;") && page.contains("&lt;i&gt;roc&lt;/i&gt;")
        );
        assert!(
            page.contains("<figure><svg><text>ROC</text></svg>"),
            "figures go in as markup"
        );
    }

    #[test]
    fn tiny_p_values_are_bounded_not_rounded_to_zero() {
        assert_eq!(p_value(3e-9), "< 0.0001");
        assert_eq!(p_value(0.0), "< 0.0001");
        assert_eq!(p_value(1e-4), "0.0001");
        assert_eq!(p_value(0.0417), "0.0417");
        assert_eq!(p_value(f64::NAN), "—");
    }

    /// A class named with Markdown's punctuation keeps its table cell and shows as written;
    /// a path with backticks stays one code span.
    #[test]
    fn markdown_text_and_code_are_escaped() {
        let cell = md_text("a|b *c* _d_ [e](f) <g> #1\\");
        assert_eq!(cell, "a\\|b \\*c\\* \\_d\\_ \\[e\\](f) \\<g\\> \\#1\\\\");
        let row = format!("| {cell} | 1 |");
        assert_eq!(row.matches('|').count() - row.matches("\\|").count(), 3);
        assert_eq!(md_text("two\nlines"), "two lines");
        assert_eq!(md_code("x.png"), "`x.png`");
        assert_eq!(md_code("a`b``c.png"), "```a`b``c.png```");
        assert_eq!(md_code("`edge"), "`` `edge ``");
    }
}
