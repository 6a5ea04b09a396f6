//! Decoding runs ahead of inference on its own threads: batches of decoded, resized images
//! arrive on a channel, in input order or as images finish.

use std::sync::mpsc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use ndarray::{ArrayD, IxDyn};
use ortl_imaging::{DecodeError, DecodeOptions, Intensity, decode, resize};
use rayon::prelude::*;

use crate::{Item, ModelInfo};

/// A decoded batch: the items that decoded, their pixels, and those that failed.
pub struct Prepared {
    pub items: Vec<Item>,
    /// `[N, H, W, 3]` at the model's input size.
    pub pixels: ArrayD<u8>,
    pub failed: Vec<DecodeError>,
    /// What decoding did to each image's values beyond reading 8 bits, by kind.
    pub intensity: Vec<Intensity>,
}

/// One image decoded and resized, with what was done to its values.
type Loaded = Result<(Vec<u8>, Option<Intensity>), DecodeError>;

/// Starts decoding `items` on `threads` threads into batches of `batch`, in input order or,
/// `unordered`, as images finish; two batches wait at most. Join the handle once the
/// receiver is drained (or dropped, which stops the decoding).
pub fn spawn(
    items: Vec<Item>,
    info: &ModelInfo,
    decoding: DecodeOptions,
    batch: usize,
    threads: usize,
    unordered: bool,
) -> Result<(mpsc::Receiver<Prepared>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::sync_channel::<Prepared>(2);
    let info = info.clone();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("ortl-decode-{i}"))
        .build()
        .context("cannot start the decoding threads")?;
    let producer = std::thread::spawn(move || {
        if unordered {
            produce_unordered(items, batch, &info, decoding, pool, &tx);
        } else {
            for batch in items.chunks(batch) {
                let prepared = pool.install(|| prepare(batch.to_vec(), &info, decoding));
                if tx.send(prepared).is_err() {
                    break;
                }
            }
        }
    });
    Ok((rx, producer))
}

/// Decodes all items in parallel and sends batches in the order images finish.
fn produce_unordered(
    items: Vec<Item>,
    batch: usize,
    info: &ModelInfo,
    options: DecodeOptions,
    pool: rayon::ThreadPool,
    tx: &mpsc::SyncSender<Prepared>,
) {
    let (done_tx, done_rx) = mpsc::channel::<(Item, Loaded)>();
    let decode_info = info.clone();
    // The decoding pool works on its own thread; this one gathers what it finishes.
    let workers = std::thread::spawn(move || {
        pool.install(|| {
            items.into_par_iter().for_each_with(done_tx, |done, item| {
                let result = load(&item, &decode_info, options);
                let _ = done.send((item, result));
            })
        })
    });
    let mut pending = Vec::new();
    for finished in done_rx {
        pending.push(finished);
        if pending.len() == batch
            && tx
                .send(assemble(std::mem::take(&mut pending), info))
                .is_err()
        {
            break;
        }
    }
    if !pending.is_empty() {
        let _ = tx.send(assemble(pending, info));
    }
    let _ = workers.join();
}

/// Decodes and resizes one image exactly as ortl-augment did for the training tensors.
fn load(item: &Item, info: &ModelInfo, options: DecodeOptions) -> Loaded {
    decode(&item.path, options).map(|decoded| {
        let pixels = resize(&decoded.pixels, info.height, info.width, info.filter).to_u8();
        (pixels, decoded.intensity)
    })
}

/// Decodes and resizes a batch in parallel, keeping input order.
fn prepare(batch: Vec<Item>, info: &ModelInfo, options: DecodeOptions) -> Prepared {
    let decoded: Vec<Loaded> = batch
        .par_iter()
        .map(|item| load(item, info, options))
        .collect();
    assemble(batch.into_iter().zip(decoded).collect(), info)
}

/// Stacks decoded images into one batch, setting aside the failures.
fn assemble(decoded: Vec<(Item, Loaded)>, info: &ModelInfo) -> Prepared {
    let mut items = Vec::new();
    let mut pixels = Vec::with_capacity(decoded.len() * info.height * info.width * 3);
    let mut failed = Vec::new();
    let mut intensity = Vec::new();
    for (item, result) in decoded {
        match result {
            Ok((p, applied)) => {
                pixels.extend(p);
                items.push(item);
                intensity.extend(applied);
            }
            Err(e) => failed.push(e),
        }
    }
    let shape = IxDyn(&[items.len(), info.height, info.width, 3]);
    Prepared {
        pixels: ArrayD::from_shape_vec(shape, pixels).expect("sizes match"),
        items,
        failed,
        intensity,
    }
}
