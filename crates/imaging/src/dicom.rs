//! DICOM files as hospitals store them, through dicom-rs: the modality LUT (rescale slope and
//! intercept), then the VOI LUT or window the file gives (or the one asked for), MONOCHROME1
//! inverted so that bone is bright, down to 8 bits. Only the first frame is read.

use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_pixeldata::{
    ConvertOptions, DecodedPixelData, PhotometricInterpretation, PixelDecoder, VoiLutOption,
    WindowLevel,
};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use image::DynamicImage;

use crate::decode::{DecodeError, DecodeLimits, Decoded, Intensity, Pixels, check_size};
use crate::window::Window;

/// The preamble is 128 bytes, then the magic `DICM`.
pub(crate) fn is_dicom(head: &[u8]) -> bool {
    head.get(128..132) == Some(b"DICM")
}

fn format(path: &Path, reason: impl Into<String>) -> DecodeError {
    DecodeError::Format {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Parses the object, up to the pixel data only when `header_only`, and refuses a transfer
/// syntax whose pixel data this build cannot decode, by name.
/// `from` starts at the `DICM` magic (after the preamble).
fn open(
    path: &Path,
    from: impl std::io::Read,
    header_only: bool,
) -> Result<DefaultDicomObject, DecodeError> {
    let mut options = OpenFileOptions::new();
    if header_only {
        options = options.read_until(tags::PIXEL_DATA);
    }
    let object = options
        .from_reader(from)
        .map_err(|e| format(path, format!("not a readable DICOM file ({e})")))?;
    let uid = object.meta().transfer_syntax();
    match TransferSyntaxRegistry.get(uid) {
        Some(ts) if ts.can_decode_all() => Ok(object),
        Some(ts) => Err(format(
            path,
            format!(
                "DICOM transfer syntax {} ({uid}) cannot be decoded by this build; convert the file to an uncompressed one (e.g. gdcmconv --raw IN OUT)",
                ts.name()
            ),
        )),
        None => Err(format(path, format!("unknown DICOM transfer syntax {uid}"))),
    }
}

/// Columns and rows: width and height.
fn size(object: &DefaultDicomObject, path: &Path) -> Result<(u32, u32), DecodeError> {
    Ok((
        dimension(object, tags::COLUMNS, path)?,
        dimension(object, tags::ROWS, path)?,
    ))
}

fn dimension(
    object: &DefaultDicomObject,
    tag: dicom_core::Tag,
    path: &Path,
) -> Result<u32, DecodeError> {
    object
        .element(tag)
        .ok()
        .and_then(|e| e.to_int::<u32>().ok())
        .ok_or_else(|| {
            format(
                path,
                "a DICOM file without Rows and Columns is not an image",
            )
        })
}

/// Reads up to the pixel data only; `from` starts at the `DICM` magic.
pub(crate) fn probe(
    path: &Path,
    from: impl std::io::Read,
    limits: DecodeLimits,
) -> Result<(u32, u32), DecodeError> {
    let object = open(path, from, true)?;
    check_size(path, size(&object, path)?, limits)
}

pub(crate) fn decode(
    path: &Path,
    bytes: &[u8],
    limits: DecodeLimits,
    window: Window,
) -> Result<Decoded, DecodeError> {
    let object = open(path, &bytes[128..], false)?;
    check_size(path, size(&object, path)?, limits)?;
    let transfer_syntax = TransferSyntaxRegistry
        .get(object.meta().transfer_syntax())
        .map_or("?", |ts| ts.name());
    let frames = object
        .element(tags::NUMBER_OF_FRAMES)
        .ok()
        .and_then(|e| e.to_int::<u32>().ok())
        .unwrap_or(1);
    // Only the first frame is decoded: a multi-frame file can hold hundreds.
    let pixels = object
        .decode_pixel_data_frame(0)
        .map_err(|e| format(path, format!("DICOM pixel data cannot be decoded ({e})")))?;
    let voi = match window {
        Window::Auto => VoiLutOption::First,
        Window::MinMax => VoiLutOption::Normalize,
        Window::Fixed { center, width } => VoiLutOption::Custom(WindowLevel {
            center: f64::from(center),
            width: f64::from(width),
        }),
    };
    let options = ConvertOptions::new().with_voi_lut(voi).force_8bit();
    let image = pixels
        .to_dynamic_image_with_options(0, &options)
        .map_err(|e| format(path, format!("DICOM pixel data cannot be converted ({e})")))?;
    let intensity = describe(&pixels, frames, window, transfer_syntax);
    let pixels = match image {
        DynamicImage::ImageLuma8(grey) => Pixels::Grey(grey),
        other => Pixels::Rgb(other.into_rgb8()),
    };
    Ok(Decoded {
        pixels,
        intensity: Some(intensity),
    })
}

/// What was applied, in words: the kind (no per-file numbers, for counting) and the detail.
fn describe(
    pixels: &DecodedPixelData,
    frames: u32,
    window: Window,
    transfer_syntax: &str,
) -> Intensity {
    let photometric = pixels.photometric_interpretation();
    let monochrome = pixels.samples_per_pixel() == 1;
    let mut kind = vec![format!("DICOM {photometric}")];
    let mut detail = vec![format!(
        "DICOM {photometric}, {} of {} bits, {transfer_syntax}",
        pixels.bits_stored(),
        pixels.bits_allocated()
    )];
    if frames > 1 {
        kind.push("first frame".into());
        detail.push(format!("frame 1 of {frames}"));
    }
    if monochrome {
        if let Ok(&[rescale, ..]) = pixels.rescale()
            && (rescale.slope, rescale.intercept) != (1.0, 0.0)
        {
            kind.push("rescaled".into());
            detail.push(format!(
                "rescale slope {} intercept {}",
                rescale.slope, rescale.intercept
            ));
        }
        let lut = pixels
            .voi_lut_sequence()
            .ok()
            .flatten()
            .is_some_and(|s| !s.is_empty());
        let file_window = pixels
            .window()
            .ok()
            .flatten()
            .and_then(|w| w.first().copied());
        let function = pixels
            .voi_lut_function()
            .ok()
            .flatten()
            .and_then(|f| f.first().copied())
            .map_or("LINEAR".to_string(), |f| format!("{f:?}").to_uppercase());
        match window {
            Window::Auto if lut => {
                kind.push("VOI LUT from the file".into());
                detail.push("VOI LUT from the file".into());
            }
            Window::Auto => match file_window {
                Some(w) => {
                    kind.push("window from the file".into());
                    detail.push(format!(
                        "window center {} width {} ({function}) from the file",
                        w.center, w.width
                    ));
                }
                None => {
                    kind.push("min-max (no window in the file)".into());
                    detail.push("min-max (no window in the file)".into());
                }
            },
            Window::MinMax => {
                kind.push("min-max".into());
                detail.push("min-max".into());
            }
            Window::Fixed { center, width } => {
                kind.push(format!("window {center},{width}"));
                detail.push(format!("window center {center} width {width} ({function})"));
            }
        }
        if *photometric == PhotometricInterpretation::Monochrome1 {
            kind.push("inverted".into());
            detail.push("inverted (MONOCHROME1)".into());
        }
    } else if window != Window::Auto {
        // dicom-pixeldata applies no LUT to colour images.
        kind.push("colour: window not applied".into());
        detail.push("colour: window not applied".into());
    }
    Intensity {
        kind: kind.join(", "),
        detail: detail.join("; "),
    }
}
