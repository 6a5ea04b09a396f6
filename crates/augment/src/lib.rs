//! ortl-augment's work: decode each manifest image once, resize it, render its augmented
//! variants, and store everything as `uint8 [N,H,W,3]` shards with `tensors.csv` and
//! `meta.json` beside them (the `tensors/` contract in `ortl-manifest`).
//!
//! Work is spread over all cores, but each variant is a pure function of (seed, image path,
//! variant number), so the output is identical at any thread count.

use std::path::Path;

use anyhow::{Context, Result};
use ndarray::Array4;
use ortl_imaging::{
    AugmentSpec, DecodeError, DecodeOptions, Filter, Intensity, decode, resize, variant_seed,
};
use ortl_manifest::multilabel::AnyManifest;
use ortl_manifest::tensors::{self, FORMAT, META_FILE, ROWS_FILE, encode_targets};
use ortl_manifest::{Shard, Split, TensorMeta, TensorRow, paths};
use rayon::prelude::*;

/// Everything that decides the stored pixels.
#[derive(Clone, Debug)]
pub struct Job {
    pub height: usize,
    pub width: usize,
    pub filter: Filter,
    pub spec: AugmentSpec,
    /// Augmented variants per training image.
    pub copies: u32,
    /// Also store training images un-augmented (variant 0).
    pub keep_original: bool,
    pub seed: u64,
    pub shard_size: usize,
    pub decoding: DecodeOptions,
    /// Fail on the first unreadable image instead of skipping it.
    pub strict: bool,
}

impl Job {
    /// The variants stored for a row: augmented copies for training rows (k-fold rows
    /// serve as validation too, so they keep variant 0), variant 0 only for val/test.
    pub fn variants(&self, split: Split) -> Vec<u32> {
        let augmented = 1..=self.copies;
        match split {
            Split::Val | Split::Test => vec![0],
            Split::Train if self.copies == 0 => vec![0],
            Split::Train if self.keep_original => std::iter::once(0).chain(augmented).collect(),
            Split::Train => augmented.collect(),
            Split::Fold(_) => std::iter::once(0).chain(augmented).collect(),
        }
    }

    /// The stored images of one source (`height*width*3` bytes each), and what decoding
    /// did to its values.
    pub fn render(&self, source: &Source, variants: &[u32]) -> Rendered {
        let decoded = decode(&source.file, self.decoding)?;
        let resized = resize(&decoded.pixels, self.height, self.width, self.filter);
        let images = variants
            .iter()
            .map(|&variant| {
                if variant == 0 {
                    resized.to_u8()
                } else {
                    self.spec
                        .apply(&resized, variant_seed(self.seed, &source.path, variant))
                        .to_u8()
                }
            })
            .collect();
        Ok((images, decoded.intensity))
    }
}

/// One source image and what the manifest says of it, in either manifest form.
#[derive(Clone, Debug)]
pub struct Source {
    /// The path as the manifest gives it (variants are seeded by it).
    pub path: String,
    /// The file it resolves to.
    pub file: std::path::PathBuf,
    pub split: Split,
    /// The class index (single-label manifests).
    pub label: Option<usize>,
    /// The class, or the present findings joined by `|`.
    pub class: String,
    /// Multi-label: `tensors.csv`'s per-finding `1`/`0`/`-`; empty otherwise.
    pub targets: String,
}

/// The manifest's rows as sources, in manifest order.
pub fn sources(manifest: &AnyManifest) -> Vec<Source> {
    match manifest {
        AnyManifest::Classes(m) => m
            .rows
            .iter()
            .map(|row| Source {
                path: row.path.clone(),
                file: m.resolve(row),
                split: row.split,
                label: Some(row.label),
                class: row.class.clone(),
                targets: String::new(),
            })
            .collect(),
        AnyManifest::Findings(m) => m
            .rows
            .iter()
            .map(|row| {
                let present: Vec<&str> = m
                    .findings
                    .iter()
                    .zip(&row.targets)
                    .filter(|(_, t)| **t == Some(true))
                    .map(|(f, _)| f.as_str())
                    .collect();
                Source {
                    path: row.path.clone(),
                    file: m.resolve(row),
                    split: row.split,
                    label: None,
                    class: present.join("|"),
                    targets: encode_targets(&row.targets),
                }
            })
            .collect(),
    }
}

/// The stored variants of one source image and what decoding did to its values, or why it
/// could not be read.
type Rendered = Result<(Vec<Vec<u8>>, Option<Intensity>), DecodeError>;

/// What a finished run stored, for the summary line.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub sources: usize,
    pub images: usize,
    pub shards: usize,
    pub skipped: Vec<String>,
    /// Sources per kind of intensity mapping applied.
    pub intensity: std::collections::BTreeMap<String, usize>,
}

/// Renders every manifest row into `dir` (an empty staging folder that will become
/// `final_dir`, against which source paths are written); `progress` is called once per
/// source image.
pub fn write_tensors(
    manifest: &AnyManifest,
    manifest_name: &str,
    job: &Job,
    dir: &Path,
    final_dir: &Path,
    progress: impl Fn() + Sync,
) -> Result<Summary> {
    let mut summary = Summary::default();
    let mut writer = ShardWriter::new(dir, job);
    let rows_path = dir.join(ROWS_FILE);
    let mut csv = csv::Writer::from_path(&rows_path)
        .with_context(|| format!("cannot create {}", rows_path.display()))?;
    // Bounded batches keep memory near one shard whatever the data set size; a batch is
    // written (rows, shards) on another thread while the next one renders.
    let batch = (job.shard_size / (job.copies as usize + 1)).clamp(16, 256);
    let sources = sources(manifest);
    let (tx, rx) = std::sync::mpsc::sync_channel::<(&[Source], Vec<(Vec<u32>, Rendered)>)>(1);
    let written = std::thread::scope(|scope| {
        let writing = scope.spawn(|| -> Result<Vec<Shard>> {
            for (rows, rendered) in rx {
                for (row, (variants, result)) in rows.iter().zip(rendered) {
                    let (images, intensity) = match result {
                        Ok(rendered) => rendered,
                        Err(err) if job.strict => return Err(err).context("--strict"),
                        Err(err) => {
                            summary.skipped.push(err.to_string());
                            continue;
                        }
                    };
                    summary.sources += 1;
                    if let Some(intensity) = &intensity {
                        *summary.intensity.entry(intensity.kind.clone()).or_default() += 1;
                    }
                    let detail = intensity.map(|i| i.detail).unwrap_or_default();
                    let source = paths::relative_to(final_dir, &row.file);
                    for (variant, pixels) in variants.into_iter().zip(images) {
                        let (shard, index) = writer.push(pixels)?;
                        csv.serialize(TensorRow {
                            shard,
                            index,
                            label: row.label,
                            class: row.class.clone(),
                            split: row.split,
                            path: source.clone(),
                            variant,
                            intensity: detail.clone(),
                            targets: row.targets.clone(),
                        })?;
                        summary.images += 1;
                    }
                }
            }
            let shards = writer.finish()?;
            csv.flush()?;
            Ok(shards)
        });
        for rows in sources.chunks(batch) {
            let rendered: Vec<(Vec<u32>, Rendered)> = rows
                .par_iter()
                .map(|row| {
                    let variants = job.variants(row.split);
                    let result = job.render(row, &variants);
                    progress();
                    (variants, result)
                })
                .collect();
            // A closed channel means the writer stopped on an error, which join returns.
            if tx.send((rows, rendered)).is_err() {
                break;
            }
        }
        drop(tx);
        writing.join().expect("the writing thread does not panic")
    });
    let shards = written?;
    summary.shards = shards.len();
    let meta = TensorMeta {
        format: FORMAT.into(),
        height: job.height,
        width: job.width,
        channels: 3,
        task: manifest.task(),
        classes: manifest.classes().to_vec(),
        seed: job.seed,
        copies: job.copies,
        keep_original: job.keep_original,
        filter: job.filter,
        window: job.decoding.window,
        intensity: summary.intensity.clone(),
        augmentation: job.spec.clone(),
        shards,
        manifest: manifest_name.into(),
        ortl_version: env!("CARGO_PKG_VERSION").into(),
    };
    let meta_path = dir.join(META_FILE);
    std::fs::write(&meta_path, serde_json::to_string_pretty(&meta)? + "\n")
        .with_context(|| format!("writing {}", meta_path.display()))?;
    Ok(summary)
}

/// Fills shards of `shard_size` images and writes each when full.
struct ShardWriter<'a> {
    dir: &'a Path,
    job: &'a Job,
    pixels: Vec<u8>,
    count: usize,
    shards: Vec<Shard>,
}

impl<'a> ShardWriter<'a> {
    fn new(dir: &'a Path, job: &'a Job) -> Self {
        Self {
            dir,
            job,
            pixels: Vec::new(),
            count: 0,
            shards: Vec::new(),
        }
    }

    fn name(&self) -> String {
        format!("shard-{:05}.npy", self.shards.len())
    }

    fn push(&mut self, image: Vec<u8>) -> Result<(String, usize)> {
        let at = (self.name(), self.count);
        self.pixels.extend_from_slice(&image);
        self.count += 1;
        if self.count == self.job.shard_size {
            self.flush()?;
        }
        Ok(at)
    }

    fn flush(&mut self) -> Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        let shape = (self.count, self.job.height, self.job.width, 3);
        let array = Array4::from_shape_vec(shape, std::mem::take(&mut self.pixels))?;
        let file = self.name();
        tensors::write_shard(&self.dir.join(&file), &array)?;
        self.shards.push(Shard {
            file,
            images: self.count,
        });
        self.count = 0;
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<Shard>> {
        self.flush()?;
        Ok(self.shards)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job {
            height: 8,
            width: 8,
            filter: Filter::Bilinear,
            spec: ortl_imaging::augment::tutorial(),
            copies: 3,
            keep_original: false,
            seed: 1,
            shard_size: 4,
            decoding: DecodeOptions::default(),
            strict: false,
        }
    }

    #[test]
    fn variants_per_split() {
        let j = job();
        assert_eq!(j.variants(Split::Train), vec![1, 2, 3]);
        assert_eq!(j.variants(Split::Val), vec![0]);
        assert_eq!(j.variants(Split::Fold(2)), vec![0, 1, 2, 3]);
        assert_eq!(
            Job {
                keep_original: true,
                ..job()
            }
            .variants(Split::Train),
            vec![0, 1, 2, 3]
        );
        assert_eq!(Job { copies: 0, ..job() }.variants(Split::Train), vec![0]);
    }
}
