//! DICOM as hospitals store it (#37): ortl's decoding of real files, the test files pydicom
//! ships, against what an independent decoder makes of them. `scripts/fetch-dicom-corpus.sh`
//! (run by `make test`) fetches the files; `tests/data/dicom-corpus.tsv` holds the reference
//! values that `scripts/dicom-corpus-reference.py` computed once with pydicom and its libjpeg,
//! OpenJPEG, CharLS and RLE plugins, through the intensity pipeline ortl documents. A file
//! either matches its reference or is named in [`KNOWN`] with the reason and the fix, and a
//! known file that starts to match fails the test until its entry is removed.
//! `cargo test -p ortl-imaging --test corpus -- --nocapture` prints the results table.

use std::path::{Path, PathBuf};

use ortl_imaging::{DecodeOptions, Pixels, decode};

/// The most the reference grid may differ from ortl's, as a mean absolute difference in grey
/// levels, and the least their correlation may be.
const MAX_MEAN_ABS_DIFF: f64 = 2.0;
const MIN_CORRELATION: f64 = 0.99;
/// Whole-image mean and standard deviation may differ by this many grey levels.
const MAX_STAT_DIFF: f64 = 2.0;
/// A single pixel may differ by this much: lossy decoders round differently near edges, but
/// a flipped, shifted or inverted image differs by far more.
const MAX_SAMPLE_DIFF: i32 = 16;
/// Cells per side of the grid of block means (as in the reference script).
const GRID: usize = 16;

/// What ortl does with a file it does not decode to its reference.
#[derive(Clone, Copy, Debug)]
enum Known {
    /// ortl refuses it: the error must contain `says`.
    Refused {
        says: &'static str,
        why: &'static str,
    },
    /// ortl decodes it to different pixels.
    Differs { why: &'static str },
}

const JPEG_LS: &str = "JPEG-LS needs CharLS, a C++ library this build leaves out \
    (dicom-pixeldata's `charls` feature); convert with `gdcmconv --raw`";
const JPEG_12: &str = "12-bit lossy JPEG: no maintained pure-Rust decoder \
    (jpeg-decoder and zune-jpeg read 8-bit DCT only); convert with `gdcmconv --raw` or `dcmdjpeg`";

const RLE_32: &str = "RLE Lossless with 32-bit samples: refused by dicom-rs 0.10's RLE \
    decoder; convert with `gdcmconv --raw`";

const KNOWN: &[(&str, Known)] = &[
    (
        "JPGExtended.dcm",
        Known::Refused {
            says: "dcmdjpeg",
            why: JPEG_12,
        },
    ),
    (
        "JPEG-lossy.dcm",
        Known::Refused {
            says: "dcmdjpeg",
            why: "12-bit lossy JPEG whose scan header libjpeg rejects too (no reference)",
        },
    ),
    (
        "MR_truncated.dcm",
        Known::Refused {
            says: "the file is truncated or corrupt",
            why: "pixel data shorter than Rows × Columns: refused by pydicom too (no reference)",
        },
    ),
    (
        "badVR.dcm",
        Known::Refused {
            says: "NumberOfFrames",
            why: "Number of Frames '1A' is not a number: refused by pydicom too (no reference)",
        },
    ),
    (
        "MR_small_jpeg_ls_lossless.dcm",
        Known::Refused {
            says: "JPEG-LS",
            why: JPEG_LS,
        },
    ),
    (
        "JPEGLSNearLossless_08.dcm",
        Known::Refused {
            says: "JPEG-LS",
            why: JPEG_LS,
        },
    ),
    (
        "JPEGLSNearLossless_16.dcm",
        Known::Refused {
            says: "JPEG-LS",
            why: JPEG_LS,
        },
    ),
    (
        "SC_rgb_jls_lossy_line.dcm",
        Known::Refused {
            says: "JPEG-LS",
            why: JPEG_LS,
        },
    ),
    (
        "rtdose_rle_1frame.dcm",
        Known::Refused {
            says: "gdcmconv --raw",
            why: RLE_32,
        },
    ),
    (
        "SC_rgb_rle_32bit.dcm",
        Known::Refused {
            says: "gdcmconv --raw",
            why: RLE_32,
        },
    ),
    (
        "SC_rgb_jpeg.dcm",
        Known::Refused {
            says: "(0008,0008) claims 1230128452 bytes",
            why: "its data set is not in the VR its transfer syntax says (the value 'ORIG…' \
                read as a length; pydicom guesses the other encoding, dicom-object 0.10 \
                does not); re-encode it with `gdcmconv --raw`",
        },
    ),
    (
        "SC_jpeg_no_color_transform.dcm",
        Known::Differs {
            why: "an RGB JPEG with no colour transform marker is read as YCbCr by \
                jpeg-decoder; fix: let Photometric Interpretation RGB override the guess",
        },
    ),
];

/// One row of the reference file.
struct Reference {
    file: String,
    transfer_syntax: String,
    photometric: String,
    size: (u32, u32),
    channels: usize,
    mean: f64,
    std: f64,
    samples: Vec<i32>,
    grid: Vec<f64>,
}

fn references() -> Vec<Reference> {
    let text = include_str!("data/dicom-corpus.tsv");
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    assert_eq!(
        lines.next(),
        Some(
            "file\ttransfer_syntax\tphotometric\twidth\theight\tchannels\tmean\tstd\tsamples\tgrid"
        )
    );
    lines
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 10, "dicom-corpus.tsv: {line}");
            let numbers =
                |s: &str| -> Vec<f64> { s.split(' ').map(|v| v.parse().unwrap()).collect() };
            Reference {
                file: f[0].into(),
                transfer_syntax: f[1].into(),
                photometric: f[2].into(),
                size: (f[3].parse().unwrap(), f[4].parse().unwrap()),
                channels: f[5].parse().unwrap(),
                mean: f[6].parse().unwrap(),
                std: f[7].parse().unwrap(),
                samples: numbers(f[8]).into_iter().map(|v| v as i32).collect(),
                grid: numbers(f[9]),
            }
        })
        .collect()
}

/// The corpus folder: `ORTL_DICOM_CORPUS` (then it must exist, as under `make test`), else
/// the cache the fetch script fills, if it has been run.
fn corpus() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ORTL_DICOM_CORPUS") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.is_dir(),
            "ORTL_DICOM_CORPUS={} is not a folder; run scripts/fetch-dicom-corpus.sh",
            dir.display()
        );
        return Some(dir);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/dicom-corpus");
    dir.is_dir().then_some(dir)
}

/// `[start, end)` of each of at most [`GRID`] cells along `size`, split at `i · size / n`.
fn cells(size: usize) -> Vec<(usize, usize)> {
    let n = GRID.min(size);
    (0..n).map(|i| (i * size / n, (i + 1) * size / n)).collect()
}

/// Pearson correlation; 1 for two constant sequences that are equal.
fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 && vb == 0.0 {
        if a == b { 1.0 } else { 0.0 }
    } else {
        cov / (va * vb).sqrt()
    }
}

/// How far ortl's pixels are from the reference: `Err` says what differs.
fn compare(pixels: &Pixels, reference: &Reference) -> Result<String, String> {
    let (width, height, channels) = (
        pixels.width() as usize,
        pixels.height() as usize,
        pixels.channels(),
    );
    if (pixels.width(), pixels.height()) != reference.size || channels != reference.channels {
        return Err(format!(
            "{width}x{height}x{channels}, expected {}x{}x{}",
            reference.size.0, reference.size.1, reference.channels
        ));
    }
    let raw = pixels.as_raw();
    let at = |y: usize, x: usize, c: usize| f64::from(raw[(y * width + x) * channels + c]);
    let n = raw.len() as f64;
    let mean = raw.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let std = (raw
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    let points = [
        (0, 0),
        (height / 2, width / 2),
        (height - 1, width - 1),
        (height / 4, 3 * width / 4),
        (3 * height / 4, width / 4),
    ];
    let samples: Vec<i32> = points
        .iter()
        .flat_map(|&(y, x)| (0..channels).map(move |c| (y, x, c)))
        .map(|(y, x, c)| at(y, x, c) as i32)
        .collect();
    let mut grid = Vec::new();
    for &(r0, r1) in &cells(height) {
        for &(c0, c1) in &cells(width) {
            for c in 0..channels {
                let sum: f64 = (r0..r1)
                    .flat_map(|y| (c0..c1).map(move |x| (y, x)))
                    .map(|(y, x)| at(y, x, c))
                    .sum();
                grid.push(sum / ((r1 - r0) * (c1 - c0)) as f64);
            }
        }
    }
    let mad = grid
        .iter()
        .zip(&reference.grid)
        .map(|(a, b)| (a - b).abs())
        .sum::<f64>()
        / grid.len() as f64;
    let r = correlation(&grid, &reference.grid);
    let worst_sample = samples
        .iter()
        .zip(&reference.samples)
        .map(|(a, b)| (a - b).abs())
        .max()
        .unwrap_or(0);
    let summary = format!(
        "r {r:.4}, MAD {mad:.2}, mean {mean:.1}/{:.1}, std {std:.1}/{:.1}, worst pixel {worst_sample}",
        reference.mean, reference.std
    );
    let matches = r >= MIN_CORRELATION
        && mad <= MAX_MEAN_ABS_DIFF
        && (mean - reference.mean).abs() <= MAX_STAT_DIFF
        && (std - reference.std).abs() <= MAX_STAT_DIFF
        && worst_sample <= MAX_SAMPLE_DIFF;
    if matches { Ok(summary) } else { Err(summary) }
}

#[test]
fn real_dicom_files_decode_as_an_independent_decoder_does() {
    let Some(dir) = corpus() else {
        println!(
            "skipped: no DICOM corpus in .cache/dicom-corpus; run scripts/fetch-dicom-corpus.sh (make test does)"
        );
        return;
    };
    let references = references();
    let mut files: Vec<&str> = references.iter().map(|r| r.file.as_str()).collect();
    let unreferenced: Vec<&str> = KNOWN
        .iter()
        .map(|(f, _)| *f)
        .filter(|f| !files.contains(f))
        .collect();
    files.extend(unreferenced);
    let mut failures = Vec::new();
    println!(
        "{:<34} {:<24} {:<14} result",
        "file", "transfer syntax", "photometric"
    );
    for file in files {
        let reference = references.iter().find(|r| r.file == file);
        let known = KNOWN.iter().find(|(f, _)| *f == file).map(|(_, k)| *k);
        let outcome = decode(&dir.join(file), DecodeOptions::default());
        let (result, failure) = match (&outcome, reference, known) {
            (Ok(decoded), Some(reference), None) => match compare(&decoded.pixels, reference) {
                Ok(summary) => (format!("ok: {summary}"), None),
                Err(summary) => (format!("FAILED: {summary}"), Some(summary)),
            },
            (Ok(decoded), Some(reference), Some(Known::Differs { why })) => {
                match compare(&decoded.pixels, reference) {
                    Ok(summary) => (
                        format!("FAILED: now matches ({summary})"),
                        Some("now matches its reference; remove it from KNOWN".into()),
                    ),
                    Err(summary) => (format!("known, differs: {why} ({summary})"), None),
                }
            }
            (Err(error), _, Some(Known::Refused { says, why })) => {
                let message = error.to_string();
                if message.contains(says) && message.contains(file) && !message.contains('\n') {
                    (format!("known, refused: {why}"), None)
                } else {
                    let failure = format!(
                        "refused, but not with a one-line error naming the file and '{says}': {message}"
                    );
                    (format!("FAILED: {failure}"), Some(failure))
                }
            }
            (Err(error), ..) => {
                let failure = format!("refused: {error}");
                (format!("FAILED: {failure}"), Some(failure))
            }
            (Ok(_), None, _) => {
                let failure =
                    "decodes, but has no reference; add it to the reference script".to_string();
                (format!("FAILED: {failure}"), Some(failure))
            }
            (Ok(_), Some(_), Some(Known::Refused { .. })) => (
                "FAILED: now decodes".into(),
                Some("now decodes; mark it Differs or remove it from KNOWN".into()),
            ),
        };
        println!(
            "{file:<34} {:<24} {:<14} {result}",
            reference.map_or("-", |r| r.transfer_syntax.as_str()),
            reference.map_or("-", |r| r.photometric.as_str()),
        );
        if let Some(failure) = failure {
            failures.push(format!("{file}: {failure}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_grid_and_correlation_behave() {
    assert_eq!(cells(3), [(0, 1), (1, 2), (2, 3)]);
    assert_eq!(cells(40)[..2], [(0, 2), (2, 5)]);
    assert!((correlation(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-12);
    assert!((correlation(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    assert_eq!(correlation(&[5.0, 5.0], &[5.0, 5.0]), 1.0);
    assert_eq!(correlation(&[5.0, 5.0], &[4.0, 4.0]), 0.0);
}
