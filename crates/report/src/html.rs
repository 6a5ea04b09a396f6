//! report.html (one self-contained file: tables and inline SVG figures, no scripts, opens
//! offline) and report.md. Class names and paths come from users, so every text is escaped.

use std::fmt::Write;

use crate::evaluate::{BinaryEvaluation, MetricRow, MulticlassEvaluation};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else {
        format!("{v:.4}")
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
        Some(source) => format!(
            " The threshold {:.4} was chosen by Youden's J on {source}.",
            b.threshold
        ),
        None => String::new(),
    };
    format!(
        "The Youden-optimal threshold is chosen and scored on these same images, so metrics at it are optimistic; choose a threshold on validation predictions with --threshold-from and score test predictions with it.{source}"
    )
}

/// Everything the report shows.
pub struct Report<'a> {
    pub title: String,
    pub source: String,
    /// What was evaluated and how it was trained (from the run's train.json): backbone,
    /// whether pretrained, data, settings, versions.
    pub provenance: Vec<(String, String)>,
    pub binary: Option<&'a BinaryEvaluation>,
    pub multiclass: &'a MulticlassEvaluation,
    pub figures: Vec<(String, String)>,
    /// How the intervals were computed, as a sentence.
    pub intervals: String,
    pub notes: Vec<String>,
    pub gallery: Option<crate::gallery::Rendered>,
}

pub fn html(r: &Report) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}figure{{display:inline-block;margin:0.5em}}figcaption{{text-align:center}}figure.cam{{vertical-align:top}}figure.cam img{{margin:2px;vertical-align:bottom}}figure.cam figcaption{{font-size:0.85em}}.missing{{display:inline-block;width:120px;color:#a60}}.note{{color:#a60}}</style></head><body>",
        escape(&r.title)
    );
    let _ = write!(
        h,
        "<h1>{}</h1><p>Predictions: <code>{}</code>. {}</p>",
        escape(&r.title),
        escape(&r.source),
        escape(&r.intervals)
    );
    if !r.provenance.is_empty() {
        h.push_str("<h2>Model and training</h2><table>");
        for (what, value) in &r.provenance {
            let _ = write!(
                h,
                "<tr><th>{}</th><td style=\"text-align:left\">{}</td></tr>",
                escape(what),
                escape(value)
            );
        }
        h.push_str("</table>");
    }
    for note in &r.notes {
        let _ = write!(h, "<p class=\"note\">{}</p>", escape(note));
    }
    if let Some(b) = r.binary {
        let _ = write!(
            h,
            "<h2>Binary metrics</h2><p>Positive class <b>{}</b>, negative class <b>{}</b>; {} images, {} positive. Threshold {:.4}; Youden-optimal threshold {:.4}.</p>",
            escape(&b.positive),
            escape(&b.negative),
            b.n,
            b.positives,
            b.threshold,
            b.youden_threshold
        );
        let _ = write!(h, "<p>{}</p>", escape(&youden_note(b)));
        let c = &b.confusion;
        let _ = write!(
            h,
            "<table><tr><th></th><th>predicted {neg}</th><th>predicted {pos}</th></tr><tr><td>true {neg}</td><td>TN {}</td><td>FP {}</td></tr><tr><td>true {pos}</td><td>FN {}</td><td>TP {}</td></tr></table>",
            c.tn,
            c.fp,
            c.fn_,
            c.tp,
            neg = escape(&b.negative),
            pos = escape(&b.positive)
        );
        h.push_str(
            "<table><tr><th>Metric</th><th>Value</th><th>95 % CI</th><th>Interval</th><th>Threshold</th></tr>",
        );
        for row in &b.rows {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&crate::metrics::label(&row.metric)),
                number(row.value),
                interval(row),
                row.interval.name(),
                row.threshold.map_or(String::new(), |t| format!("{t:.4}"))
            );
        }
        h.push_str("</table>");
    }
    let m = r.multiclass;
    let _ = write!(
        h,
        "<h2>Per class</h2><p>Accuracy {}, multi-class MCC {}, macro F1 {}, weighted F1 {}, macro one-vs-rest AUC {}.</p>",
        number(m.accuracy),
        number(m.mcc),
        number(m.macro_f1),
        number(m.weighted_f1),
        number(m.macro_auc)
    );
    h.push_str("<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>AUC (one vs rest)</th><th>support</th></tr>");
    for (class, p, rec, f1, auc, support) in &m.per_class {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{support}</td></tr>",
            escape(class),
            number(*p),
            number(*rec),
            number(*f1),
            number(*auc)
        );
    }
    h.push_str("</table>");
    if let Some(gallery) = &r.gallery {
        h.push_str(&gallery.html);
    }
    h.push_str("<h2>Figures</h2>");
    for (caption, svg) in &r.figures {
        // SVG text from plotters: class names are escaped by its SVG backend.
        let _ = write!(
            h,
            "<figure>{svg}<figcaption>{}</figcaption></figure>",
            escape(caption)
        );
    }
    h.push_str("</body></html>\n");
    h
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
    if let Some(b) = r.binary {
        let c = &b.confusion;
        let _ = writeln!(
            md,
            "Positive class **{}**; threshold {:.4} (Youden {:.4}). TN {} · FP {} · FN {} · TP {}\n",
            md_text(&b.positive),
            b.threshold,
            b.youden_threshold,
            c.tn,
            c.fp,
            c.fn_,
            c.tp
        );
        let _ = writeln!(md, "{}\n", youden_note(b));
        md.push_str("| Metric | Value | 95 % CI | Interval |\n|---|---:|---:|---|\n");
        for row in &b.rows {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                crate::metrics::label(&row.metric),
                number(row.value),
                interval(row),
                row.interval.name()
            );
        }
        md.push('\n');
    }
    let m = r.multiclass;
    md.push_str(
        "| class | precision | recall | F1 | AUC | support |\n|---|---:|---:|---:|---:|---:|\n",
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

/// Cross-validation sections of comparison.html: per-backbone means over folds with their
/// intervals, the per-fold chart, and the paired comparisons.
pub struct CrossValidation<'a> {
    pub aggregates: &'a [crate::crossval::Aggregate],
    pub paired: &'a [crate::crossval::Paired],
    pub chart_svg: String,
    pub chart_metric: &'a str,
}

fn between(low: f64, high: f64) -> String {
    if low.is_nan() {
        "—".into()
    } else {
        format!("{low:.4} – {high:.4}")
    }
}

fn cross_validation(h: &mut String, cv: &CrossValidation) {
    let _ = write!(
        h,
        "<h2>Over folds</h2><p>Each backbone's metric per fold (runs of the same fold with other seeds averaged first), then the mean over folds, the sample standard deviation and the 95 % Student-t interval of the mean (clipped to the metric's range; with few folds it is wide).</p><table><tr><th>backbone</th><th>metric</th><th>runs</th><th>folds</th><th>mean ± sd</th><th>95 % CI</th><th>min – max</th></tr>"
    );
    for a in cv.aggregates {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ± {}</td><td>{}</td><td>{}</td></tr>",
            escape(&a.backbone),
            crate::compare::label(&a.metric),
            a.runs,
            a.folds,
            number(a.mean),
            number(a.std),
            between(a.ci_low, a.ci_high),
            between(a.min, a.max)
        );
    }
    let _ = write!(
        h,
        "</table><figure>{}<figcaption>{} per fold (blue) and the mean with its 95 % CI (black).</figcaption></figure>",
        cv.chart_svg,
        crate::compare::label(cv.chart_metric)
    );
    if cv.paired.is_empty() {
        return;
    }
    let _ = write!(
        h,
        "<h2>Paired comparisons</h2><p>Backbone A minus backbone B on the folds both were run on: mean difference, 95 % Student-t interval and the two-sided paired t-test (folds are not fully independent, since their training sets overlap: read the p-values as a guide).</p><table><tr><th>metric</th><th>A</th><th>B</th><th>folds</th><th>mean A − B</th><th>95 % CI</th><th>p</th></tr>"
    );
    for p in cv.paired {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            crate::compare::label(&p.metric),
            escape(&p.a),
            escape(&p.b),
            p.folds,
            number(p.mean_difference),
            between(p.ci_low, p.ci_high),
            number(p.p_value)
        );
    }
    h.push_str("</table>");
}

/// comparison.html: the runs table and the bar chart, and the cross-validation sections
/// when the runs are folds.
pub fn comparison(
    runs: &[crate::compare::RunSummary],
    chart_svg: &str,
    cv: Option<&CrossValidation>,
    differences: &[crate::delong::AucDifference],
) -> String {
    let mut h = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ortl comparison</title><style>body{font-family:sans-serif;max-width:1300px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}</style></head><body><h1>Comparison across runs</h1><table><tr><th>run</th><th>backbone</th><th>head</th><th>fold</th><th>seed</th><th>parameters</th><th>epochs</th><th>training s</th><th>images/s</th>",
    );
    for m in crate::compare::METRICS {
        let _ = write!(h, "<th>{m} (95 % CI)</th>");
    }
    h.push_str("</tr>");
    let opt = |v: Option<String>| v.unwrap_or_else(|| "—".into());
    for r in runs {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td>",
            escape(&r.run),
            escape(&r.backbone),
            escape(&r.head),
            opt(r.fold.map(|v| v.to_string())),
            r.seed,
            r.parameters,
            r.epochs,
            r.train_seconds,
            r.train_images_per_second
        );
        for m in &r.metrics {
            let _ = write!(h, "<td>{} ({})</td>", number(m.value), interval(m));
        }
        h.push_str("</tr>");
    }
    let _ = write!(h, "</table><figure>{chart_svg}</figure>");
    if !differences.is_empty() {
        h.push_str("<h2>ROC AUC differences (DeLong)</h2><p>Run a's AUC minus run b's, with a 95 % interval and a two-sided p-value; paired (correlated AUCs) when both runs scored the same images, else as independent samples. Not corrected for multiple comparisons.</p><table><tr><th>a</th><th>b</th><th>images</th><th>AUC a</th><th>AUC b</th><th>difference (95 % CI)</th><th>p</th></tr>");
        for d in differences {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ({} – {})</td><td>{}</td></tr>",
                escape(&d.a),
                escape(&d.b),
                if d.paired {
                    "same (paired)"
                } else {
                    "different"
                },
                number(d.auc_a),
                number(d.auc_b),
                number(d.difference),
                number(d.ci_low),
                number(d.ci_high),
                number(d.p_value)
            );
        }
        h.push_str("</table>");
    }
    if let Some(cv) = cv {
        cross_validation(&mut h, cv);
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
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
