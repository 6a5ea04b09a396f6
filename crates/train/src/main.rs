//! ortl-train: tensors/ to a trained, self-contained model.onnx. The command line is
//! [`ortl_train::Args`]; this binary draws the run on stderr.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use ortl_train::fit::StepRecord;
use ortl_train::{Args, Console, Settings};

fn main() -> std::process::ExitCode {
    ortl_cli::main_with("ortl-train", |args: Args| {
        let settings = Settings::resolve(&args)?;
        ortl_train::run(settings, &mut Terminal::default())?;
        Ok(())
    })
}

/// Stderr: the run's lines, with a live bar between them on a terminal.
#[derive(Default)]
struct Terminal {
    live: LiveProgress,
}

impl Console for Terminal {
    fn line(&mut self, text: &str) {
        self.live.clear();
        eprintln!("{text}");
    }

    fn step(&mut self, record: &StepRecord, epochs: usize) {
        self.live.step(record, epochs);
    }

    /// Ctrl-C or SIGTERM stops the run after the step in progress.
    fn stop_flag(&mut self) -> Result<Arc<AtomicBool>> {
        let stop = Arc::new(AtomicBool::new(false));
        let raise = Arc::clone(&stop);
        ctrlc::set_handler(move || raise.store(true, Ordering::SeqCst))
            .context("installing the Ctrl-C handler")?;
        Ok(stop)
    }
}

/// A bar per epoch on a terminal (steps, images/s, running loss, the epoch's and the run's
/// remaining time); invisible when stderr is not a terminal, where the epoch lines suffice.
#[derive(Default)]
struct LiveProgress {
    bar: Option<indicatif::ProgressBar>,
    epoch: usize,
    loss_sum: f64,
    images: usize,
    seconds: f64,
}

impl LiveProgress {
    fn step(&mut self, record: &StepRecord, epochs: usize) {
        if self.bar.is_none() || self.epoch != record.epoch {
            if let Some(bar) = self.bar.take() {
                bar.finish_and_clear();
            }
            let bar = ortl_cli::progress::bar(
                record.steps as u64,
                &format!("epoch {}/{epochs}", record.epoch),
            );
            bar.set_style(
                indicatif::ProgressStyle::with_template("{prefix} {bar:24} {pos}/{len} · {msg}")
                    .expect("progress template is valid"),
            );
            *self = LiveProgress {
                bar: Some(bar),
                epoch: record.epoch,
                ..Default::default()
            };
        }
        self.loss_sum += record.loss * record.images as f64;
        self.images += record.images;
        self.seconds += record.seconds;
        let Some(bar) = &self.bar else { return };
        bar.set_position(record.step as u64);
        let per_step = self.seconds / record.step as f64;
        let left = record.steps - record.step + record.steps * (epochs - record.epoch);
        let eta = |steps: usize| {
            humantime::format_duration(std::time::Duration::from_secs(
                (per_step * steps as f64) as u64,
            ))
        };
        bar.set_message(format!(
            "loss {:.4} · {:.0} img/s · eta {} (run {})",
            self.loss_sum / self.images.max(1) as f64,
            self.images as f64 / self.seconds.max(1e-9),
            eta(record.steps - record.step),
            eta(left)
        ));
    }

    fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for LiveProgress {
    /// An interrupted or failed run leaves its message, not a half-drawn bar.
    fn drop(&mut self) {
        self.clear();
    }
}
