//! DICOM files as hospitals store them, read and decoded by dicom-rs; grey pixels then go
//! from their stored integers through the modality LUT, the VOI LUT or window the file gives
//! (or the one asked for) and MONOCHROME1's inversion (so that bone is bright) down to 8 bits
//! in [`grey`]. Only the first frame is read.

use std::io::Read;
use std::path::Path;

use dicom_core::VR;
use dicom_dictionary_std::{tags, uids};
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, FileMetaTableBuilder, OpenFileOptions};
use dicom_pixeldata::{
    ConvertOptions, DecodedPixelData, PhotometricInterpretation, PixelDecoder, PixelRepresentation,
    VoiLutFunction,
};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use image::{DynamicImage, GrayImage};

use crate::decode::{DecodeError, DecodeLimits, Decoded, Intensity, Pixels, check_size};
use crate::window::Window;

mod bounds;
mod colour;
mod grey;

use grey::{Modality, Voi};

/// How a DICOM stream begins. A Part 10 file has a 128-byte preamble, `DICM`, then its file
/// meta group; older archives and some PACS exports drop the preamble, the magic too, or
/// write the bare data set with no file meta at all (then, as PS3.5 A.1 has it for data sets
/// exchanged without meta, implicit VR little endian, or explicit when the VR bytes say so).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    Preamble,
    Magic,
    MetaGroup,
    DataSet { explicit: bool },
}

impl Layout {
    /// Tells the layout from the first 132 bytes; `None` when they are not DICOM. No image
    /// format ortl reads starts with the bytes of group 0002 or 0008.
    pub(crate) fn of(head: &[u8]) -> Option<Self> {
        if head.get(128..132) == Some(b"DICM") {
            return Some(Layout::Preamble);
        }
        if head.starts_with(b"DICM") {
            return Some(Layout::Magic);
        }
        let head = head.get(..8)?;
        let vr = VR::from_binary([head[4], head[5]]);
        match u16::from_le_bytes([head[0], head[1]]) {
            // The file meta group is always explicit VR.
            0x0002 if vr.is_some() => Some(Layout::MetaGroup),
            0x0008 => Some(Layout::DataSet {
                explicit: vr.is_some(),
            }),
            _ => None,
        }
    }

    /// Bytes to skip before the stream [`open`] reads.
    pub(crate) fn skip(self) -> usize {
        if self == Layout::Preamble { 128 } else { 0 }
    }

    /// What dicom-object reads before the stream, so that every layout reads as the magic and
    /// a meta group: a data set gets a meta group naming only its transfer syntax.
    fn prefix(self) -> Vec<u8> {
        let mut prefix = Vec::new();
        match self {
            Layout::Preamble | Layout::Magic => {}
            Layout::MetaGroup => prefix.extend(b"DICM"),
            Layout::DataSet { explicit } => {
                let uid = if explicit {
                    uids::EXPLICIT_VR_LITTLE_ENDIAN
                } else {
                    uids::IMPLICIT_VR_LITTLE_ENDIAN
                };
                // The SOP class and instance are required in a meta group but unused here.
                let meta = FileMetaTableBuilder::new()
                    .transfer_syntax(uid)
                    .media_storage_sop_class_uid(uids::SECONDARY_CAPTURE_IMAGE_STORAGE)
                    .media_storage_sop_instance_uid("2.25.0")
                    .build()
                    .expect("a meta group of constants");
                prefix.extend(b"DICM");
                meta.write(&mut prefix).expect("writing to memory");
            }
        }
        prefix
    }

    /// Said in the intensity detail, for a file that is not plain Part 10.
    fn describe(self) -> &'static str {
        match self {
            Layout::Preamble => "",
            Layout::Magic | Layout::MetaGroup => ", no preamble",
            Layout::DataSet { explicit: false } => ", data set without file meta (implicit VR)",
            Layout::DataSet { explicit: true } => ", data set without file meta (explicit VR)",
        }
    }
}

/// Whether the first 132 bytes are DICOM, in any [`Layout`].
pub(crate) fn is_dicom(head: &[u8]) -> bool {
    Layout::of(head).is_some()
}

fn format(path: &Path, reason: impl Into<String>) -> DecodeError {
    DecodeError::Format {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Parses the object, up to the pixel data only when `header_only`, and refuses a transfer
/// syntax whose pixel data this build cannot decode, by name.
/// `from` starts [`Layout::skip`] bytes into the file.
fn open(
    path: &Path,
    layout: Layout,
    from: impl Read,
    header_only: bool,
) -> Result<DefaultDicomObject, DecodeError> {
    let mut options = OpenFileOptions::new().read_preamble(ReadPreamble::Never);
    if header_only {
        options = options.read_until(tags::PIXEL_DATA);
    }
    let prefix = layout.prefix();
    let mut stream = prefix.as_slice().chain(from);
    let seen = bounds::check(&mut stream, header_only)
        .map_err(|overrun| format(path, overrun.to_string()))?;
    let object = options
        .from_reader(seen.as_slice().chain(stream))
        .map_err(|e| format(path, format!("not a readable DICOM file ({e})")))?;
    let uid = object.meta().transfer_syntax();
    match TransferSyntaxRegistry.get(uid) {
        // dicom-rs's JPEG decoder (jpeg-decoder) reads only 8-bit lossy JPEG.
        Some(_)
            if uid == uids::JPEG_EXTENDED12_BIT
                && int(&object, tags::BITS_STORED).unwrap_or(0) > 8 =>
        {
            Err(format(
                path,
                format!(
                    "12-bit lossy JPEG (JPEG Extended, {uid}) cannot be decoded by this build; convert it with `gdcmconv --raw {0} OUT.dcm` or `dcmdjpeg {0} OUT.dcm`",
                    path.display()
                ),
            ))
        }
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

/// Whether the data set is encoded in explicit VR big endian (a retired transfer syntax,
/// still in archives).
fn is_big_endian(object: &DefaultDicomObject) -> bool {
    // Spelled out: dicom-rs deprecates its constant for this retired transfer syntax.
    const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";
    object.meta().transfer_syntax().trim_end_matches('\0') == EXPLICIT_VR_BIG_ENDIAN
}

/// The file's own Photometric Interpretation (a decoder may rename what it returns).
fn photometric_of(object: &DefaultDicomObject) -> Option<String> {
    let element = object.element(tags::PHOTOMETRIC_INTERPRETATION).ok()?;
    Some(
        element
            .to_str()
            .ok()?
            .trim_end_matches(['\0', ' '])
            .to_string(),
    )
}

/// An integer attribute, when present and readable.
fn int(object: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<u32> {
    object.element(tag).ok().and_then(|e| e.to_int().ok())
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
    int(object, tag).ok_or_else(|| {
        format(
            path,
            "a DICOM file without Rows and Columns is not an image",
        )
    })
}

/// Whether `keyword` names a DICOM attribute in the standard dictionary (`PatientID`).
pub fn is_keyword(keyword: &str) -> bool {
    keyword_tag(keyword).is_some()
}

fn keyword_tag(keyword: &str) -> Option<dicom_core::Tag> {
    use dicom_core::dictionary::DataDictionary;
    dicom_dictionary_std::StandardDataDictionary
        .by_name(keyword)
        .map(|entry| entry.tag.inner())
}

/// The value of the attribute named `keyword` (the standard dictionary's name:
/// `PatientID`, `StudyInstanceUID`, `AccessionNumber`) in the DICOM file at `path`, read
/// up to the pixel data only; `Ok(None)` when the file is not DICOM or lacks it (or it is
/// empty). Used to split by patient or study.
pub fn attribute(path: &Path, keyword: &str) -> Result<Option<String>, DecodeError> {
    use std::io::{Seek, SeekFrom};
    let Some(tag) = keyword_tag(keyword) else {
        return Ok(None);
    };
    let io = |e: std::io::Error| DecodeError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut head = Vec::with_capacity(132);
    (&mut file).take(132).read_to_end(&mut head).map_err(io)?;
    let Some(layout) = Layout::of(&head) else {
        return Ok(None);
    };
    file.seek(SeekFrom::Start(layout.skip() as u64))
        .map_err(io)?;
    let object = open(path, layout, std::io::BufReader::new(file), true)?;
    Ok(object
        .element(tag)
        .ok()
        .and_then(|e| e.to_str().ok().map(|v| v.trim().to_string()))
        .filter(|v| !v.is_empty()))
}

/// Reads up to the pixel data only; `from` starts [`Layout::skip`] bytes into the file.
pub(crate) fn probe(
    path: &Path,
    layout: Layout,
    from: impl Read,
    limits: DecodeLimits,
) -> Result<(u32, u32), DecodeError> {
    let object = open(path, layout, from, true)?;
    check_size(path, size(&object, path)?, limits)
}

pub(crate) fn decode(
    path: &Path,
    layout: Layout,
    bytes: &[u8],
    limits: DecodeLimits,
    window: Window,
) -> Result<Decoded, DecodeError> {
    let object = open(path, layout, &bytes[layout.skip()..], false)?;
    let size = check_size(path, size(&object, path)?, limits)?;
    let ts = TransferSyntaxRegistry.get(object.meta().transfer_syntax());
    let transfer_syntax = ts.map_or("?", |ts| ts.name());
    let frames = int(&object, tags::NUMBER_OF_FRAMES).unwrap_or(1);
    let mut notes = Vec::new();
    let describe =
        |photometric: &dyn std::fmt::Display, stored: u16, allocated: u16, signed: bool| {
            Note::same(format!("DICOM {photometric}")).detail(format!(
                "DICOM {photometric}, {stored} of {allocated} bits{}, {transfer_syntax}{}",
                if signed { " signed" } else { "" },
                layout.describe()
            ))
        };
    if frames > 1 {
        notes.push(Note::same("first frame").detail(format!("frame 1 of {frames}")));
    }
    // A window applies to grey values only.
    let unwindowed = || (window != Window::Auto).then(|| Note::same("colour: window not applied"));
    // Uncompressed colour is read from its bytes (dicom-pixeldata refuses YBR_FULL_422 there).
    if let Some(native) = ts
        .filter(|ts| ts.is_codec_free())
        .and_then(|_| colour::native(&object, size))
    {
        let native = native.map_err(|reason| format(path, format!("DICOM {reason}")))?;
        let stored = int(&object, tags::BITS_STORED)
            .and_then(|bits| u16::try_from(bits).ok())
            .unwrap_or(8);
        notes.insert(0, describe(&native.photometric, stored, 8, false));
        notes.extend(unwindowed());
        return Ok(decoded(Pixels::Rgb(native.image), notes));
    }
    // Only the first frame is decoded: a multi-frame file can hold hundreds.
    let pixels = object
        .decode_pixel_data_frame(0)
        .map_err(|e| {
            format(
                path,
                format!(
                    "DICOM pixel data in {} cannot be decoded ({e}); convert the file to an uncompressed transfer syntax with `gdcmconv --raw {} OUT.dcm`",
                    ts.map_or("an unknown transfer syntax", |ts| ts.name()),
                    path.display()
                ),
            )
        })?;
    let photometric = pixels.photometric_interpretation();
    let signed = pixels.pixel_representation() == PixelRepresentation::Signed;
    notes.insert(
        0,
        describe(
            photometric,
            pixels.bits_stored(),
            pixels.bits_allocated(),
            signed,
        ),
    );
    let (width, height) = (pixels.columns(), pixels.rows());
    let pixels = if pixels.samples_per_pixel() == 1 && photometric.is_monochrome() {
        let (grey, grey_notes) = monochrome(&object, &pixels, window)
            .map_err(|reason| format(path, format!("DICOM {reason}")))?;
        notes.extend(grey_notes);
        Pixels::Grey(
            GrayImage::from_raw(width, height, grey)
                .ok_or_else(|| format(path, "DICOM pixel data is shorter than Rows × Columns"))?,
        )
    } else if *photometric == PhotometricInterpretation::PaletteColor {
        notes.extend(unwindowed());
        Pixels::Rgb(
            colour::palette(&object, &pixels)
                .map_err(|reason| format(path, format!("DICOM {reason}")))?,
        )
    } else if ts.is_some_and(|ts| ts.uid() == uids::RLE_LOSSLESS)
        && photometric_of(&object).as_deref() == Some("YBR_FULL")
        && pixels.bits_allocated() == 8
    {
        notes.extend(unwindowed());
        notes[0] = describe(
            &PhotometricInterpretation::YbrFull,
            pixels.bits_stored(),
            pixels.bits_allocated(),
            false,
        );
        Pixels::Rgb(
            colour::ybr_full_decoded(&pixels)
                .map_err(|reason| format(path, format!("DICOM {reason}")))?,
        )
    } else {
        notes.extend(unwindowed());
        let options = ConvertOptions::new().force_8bit();
        let image = pixels
            .to_dynamic_image_with_options(0, &options)
            .map_err(|e| format(path, format!("DICOM pixel data cannot be converted ({e})")))?;
        match image {
            DynamicImage::ImageLuma8(grey) => Pixels::Grey(grey),
            other => Pixels::Rgb(other.into_rgb8()),
        }
    };
    Ok(decoded(pixels, notes))
}

/// The notes joined into the intensity record: kinds with ", ", details with "; ".
fn decoded(pixels: Pixels, notes: Vec<Note>) -> Decoded {
    Decoded {
        pixels,
        intensity: Some(Intensity {
            kind: notes
                .iter()
                .map(|n| n.kind.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            detail: notes
                .iter()
                .map(|n| n.detail.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        }),
    }
}

/// One step of what was done to the intensities: its kind carries no per-file numbers (so
/// that a data set's files can be counted by kind), its detail does.
struct Note {
    kind: String,
    detail: String,
}

impl Note {
    fn same(text: impl Into<String>) -> Self {
        let text = text.into();
        Note {
            detail: text.clone(),
            kind: text,
        }
    }

    fn detail(self, detail: String) -> Self {
        Note { detail, ..self }
    }
}

/// The standard's name of a VOI LUT function (PS3.3 C.11.2.1.3).
fn function_name(function: VoiLutFunction) -> &'static str {
    match function {
        VoiLutFunction::Linear => "LINEAR",
        VoiLutFunction::LinearExact => "LINEAR_EXACT",
        VoiLutFunction::Sigmoid => "SIGMOID",
    }
}

/// A MONOCHROME1/2 frame to 8 bits: the modality LUT, then the VOI the file gives (its first
/// VOI LUT, else its first window) or `window` asks for, then MONOCHROME1's inversion.
/// `Err` is the reason, to follow "DICOM ".
fn monochrome(
    object: &DefaultDicomObject,
    pixels: &DecodedPixelData,
    window: Window,
) -> Result<(Vec<u8>, Vec<Note>), String> {
    let stored = grey::stored_samples(pixels, is_big_endian(object))?;
    let modality = Modality::of(object, pixels)?;
    let mut notes = Vec::new();
    match modality {
        Modality::Rescale { slope, intercept } if (slope, intercept) != (1.0, 0.0) => {
            notes.push(
                Note::same("rescaled")
                    .detail(format!("rescale slope {slope} intercept {intercept}")),
            );
        }
        Modality::Rescale { .. } => {}
        Modality::Lut(_) => notes.push(Note::same("modality LUT from the file")),
    }
    let function = pixels
        .voi_lut_function()
        .ok()
        .flatten()
        .and_then(|f| f.first().copied())
        .unwrap_or_default();
    let file_lut = pixels
        .voi_lut_sequence()
        .ok()
        .flatten()
        .and_then(|luts| luts.first());
    let file_window = pixels
        .window()
        .ok()
        .flatten()
        .and_then(|w| w.first().copied());
    let min_max = |kind: &str| {
        let padding = grey::padding(object, pixels);
        // An image of nothing but padding has no range: it goes black.
        let (low, high) = grey::range(&stored, &modality, padding).unwrap_or((0.0, 0.0));
        let ignored = match padding {
            Some((a, b)) if a == b => format!(", padding value {a} ignored"),
            Some((a, b)) => format!(", padding values {a} to {b} ignored"),
            None => String::new(),
        };
        let note = Note::same(kind).detail(format!("{kind}: {low} to {high}{ignored}"));
        (Voi::Range { low, high }, note)
    };
    let (voi, note) = match (window, file_lut, file_window) {
        (Window::Auto, Some(lut), _) => (
            grey::voi_lut(lut.min_pixel_value, lut.bits_stored, &lut.data, pixels),
            Note::same("VOI LUT from the file"),
        ),
        (Window::Auto, None, Some(w)) => (
            Voi::Window {
                center: w.center,
                width: w.width,
                function,
            },
            Note::same("window from the file").detail(format!(
                "window center {} width {} ({}) from the file",
                w.center,
                w.width,
                function_name(function)
            )),
        ),
        (Window::Auto, None, None) => min_max("min-max (no window in the file)"),
        (Window::MinMax, ..) => min_max("min-max"),
        // The file's VOI LUT function applies to a window chosen by the user too, as in a
        // viewer adjusting the file's window.
        (Window::Fixed { center, width }, ..) => (
            Voi::Window {
                center: f64::from(center),
                width: f64::from(width),
                function,
            },
            Note::same(format!("window {center},{width}")).detail(format!(
                "window center {center} width {width} ({})",
                function_name(function)
            )),
        ),
    };
    notes.push(note);
    let invert = *pixels.photometric_interpretation() == PhotometricInterpretation::Monochrome1;
    if invert {
        notes.push(Note::same("inverted").detail("inverted (MONOCHROME1)".into()));
    }
    Ok((grey::to_u8(&stored, &modality, &voi, invert), notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_formats_are_not_taken_for_dicom() {
        for head in [
            &b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..],
            b"\xFF\xD8\xFF\xE0\0\x10JFIF\0",
            b"BM6\0\0\0\0\0\0\x006\0\0\0",
            b"GIF89a\x01\0\x01\0\0\0",
            b"II*\0\x08\0\0\0",
            b"MM\0*\0\0\0\x08",
            b"RIFF\0\0\0\0WEBPVP8 ",
        ] {
            assert_eq!(Layout::of(head), None, "{head:?}");
        }
        // (0008,0005) CS, explicit; (0008,0016) with a 26-byte length, implicit.
        assert_eq!(
            Layout::of(b"\x08\0\x05\0CS\x0a\0ISO_IR 100"),
            Some(Layout::DataSet { explicit: true })
        );
        assert_eq!(
            Layout::of(b"\x08\0\x16\0\x1a\0\0\x001.2.840"),
            Some(Layout::DataSet { explicit: false })
        );
        assert_eq!(Layout::of(b"\x02\0\0\0UL\x04\0"), Some(Layout::MetaGroup));
        assert_eq!(Layout::of(b"DICM\x02\0\0\0UL"), Some(Layout::Magic));
    }
}
