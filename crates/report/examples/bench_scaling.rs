//! The scaling plot of `make bench` (bench/bench.sh): ortl-train images/s against image
//! size at batch 32 and 2 threads, with the batch and thread variants at 100 pixels as
//! separate points.
//!
//!     cargo run --release -p ortl-report --example bench_scaling -- .bench/results.jsonl bench/scaling.png

use anyhow::{Context, Result};
use plotters::prelude::*;

struct Point {
    size: u32,
    batch: u32,
    threads: u32,
    images_per_second: f64,
}

fn read(path: &str) -> Result<Vec<Point>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    let mut points = Vec::new();
    for line in text.lines().filter(|l| l.contains("\"scale\"")) {
        let row: serde_json::Value = serde_json::from_str(line)?;
        let r = &row["result"];
        let seconds = r["epoch_seconds"][0].as_f64().unwrap_or(f64::NAN);
        let int = |key: &str| r[key].as_u64().unwrap_or(0) as u32;
        points.push(Point {
            size: int("size"),
            batch: int("batch"),
            threads: int("threads"),
            images_per_second: f64::from(int("images")) / seconds,
        });
    }
    Ok(points)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (input, output) = (&args[1], &args[2]);
    let points = read(input)?;
    ortl_draw::font::register();
    let (width, height) = (720, 480);
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    draw(&points, &mut pixels, (width, height))?;
    image::save_buffer(
        output,
        &pixels,
        width,
        height,
        image::ExtendedColorType::Rgb8,
    )
    .with_context(|| format!("cannot write {output}"))
}

fn draw(points: &[Point], pixels: &mut [u8], size: (u32, u32)) -> Result<()> {
    let root = BitMapBackend::with_buffer(pixels, size).into_drawing_area();
    root.fill(&WHITE)?;
    let top = points
        .iter()
        .map(|p| p.images_per_second)
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "ortl-train scaling (ResNet50, full fine-tuning)",
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(40u32..240u32, 0.0..top * 1.2)?;
    chart
        .configure_mesh()
        .x_desc("image side (pixels)")
        .y_desc("training images/s")
        .label_style(("sans-serif", 14))
        .draw()?;
    let series = [
        ("batch 32, 2 threads", 32, 2, BLUE),
        ("batch 8, 2 threads", 8, 2, GREEN),
        ("batch 64, 2 threads", 64, 2, MAGENTA),
        ("batch 32, 1 thread", 32, 1, RED),
    ];
    for (label, batch, threads, colour) in series {
        let mut line: Vec<(u32, f64)> = points
            .iter()
            .filter(|p| p.batch == batch && p.threads == threads)
            .map(|p| (p.size, p.images_per_second))
            .collect();
        line.sort_by_key(|p| p.0);
        if line.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2)));
        chart.draw_series(line.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}
