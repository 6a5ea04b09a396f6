//! Colour DICOM pixels (PS3.3 C.7.6.3.1), done here because dicom-pixeldata 0.10 gets them
//! wrong: its YBR_FULL conversion has the wrong sign on green's Cb term (pure green reads
//! (0,199,5)), it refuses uncompressed YBR_FULL_422 (it takes every frame to hold three
//! samples per pixel, where 4:2:2 holds two) and it reads PALETTE COLOR as grey indices.
//! Uncompressed RGB and YBR are read from the Pixel Data bytes; palette indices come from
//! dicom-pixeldata's decoded frame like grey samples do.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::{DecodedPixelData, PixelRepresentation};
use image::RgbImage;

use super::grey::{self, Lut};

/// An uncompressed colour frame decoded here: its Photometric Interpretation, as named.
pub(super) struct Native {
    pub(super) image: RgbImage,
    pub(super) photometric: &'static str,
}

/// How three samples of a pixel are stored.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Samples {
    Rgb,
    YbrFull,
    YbrFull422,
}

/// The first frame of uncompressed 8-bit RGB, YBR_FULL or YBR_FULL_422 pixel data, as RGB;
/// `None` for anything else (left to dicom-pixeldata). `Err` is the reason, to follow
/// "DICOM ".
pub(super) fn native(
    object: &DefaultDicomObject,
    (width, height): (u32, u32),
) -> Option<Result<Native, String>> {
    let (samples, photometric) = match super::photometric_of(object)?.as_str() {
        "RGB" => (Samples::Rgb, "RGB"),
        "YBR_FULL" => (Samples::YbrFull, "YBR_FULL"),
        "YBR_FULL_422" => (Samples::YbrFull422, "YBR_FULL_422"),
        _ => return None,
    };
    if super::int(object, tags::BITS_ALLOCATED) != Some(8) {
        return None;
    }
    let planar = super::int(object, tags::PLANAR_CONFIGURATION) == Some(1);
    let image = object
        .element(tags::PIXEL_DATA)
        .ok()
        .and_then(|e| e.to_bytes().ok())
        .ok_or_else(|| "file has no Pixel Data".to_string())
        .and_then(|data| frame(&data, samples, planar, width, height));
    Some(image.map(|image| Native { image, photometric }))
}

/// 8-bit YBR_FULL as RLE Lossless leaves it: dicom-pixeldata decodes the segments (and calls
/// the result RGB) but converts nothing, unlike the JPEG decoders.
pub(super) fn ybr_full_decoded(pixels: &DecodedPixelData) -> Result<RgbImage, String> {
    let planar = pixels.planar_configuration() == dicom_pixeldata::PlanarConfiguration::PixelFirst;
    frame(
        pixels.data(),
        Samples::YbrFull,
        planar,
        pixels.columns(),
        pixels.rows(),
    )
}

/// The first frame of `data` as RGB.
fn frame(
    data: &[u8],
    samples: Samples,
    planar: bool,
    width: u32,
    height: u32,
) -> Result<RgbImage, String> {
    let pixels = width as usize * height as usize;
    // 4:2:2 stores Y1 Y2 Cb Cr for each pair of pixels along a row (PS3.3 C.7.6.3.1.2).
    if samples == Samples::YbrFull422 && width % 2 == 1 {
        return Err(format!("YBR_FULL_422 with an odd width ({width})"));
    }
    let length = if samples == Samples::YbrFull422 {
        2 * pixels
    } else {
        3 * pixels
    };
    let data = data.get(..length).ok_or_else(|| {
        format!(
            "pixel data is {} bytes, short of one {width}×{height} frame ({length})",
            data.len()
        )
    })?;
    let triplets: Vec<[u8; 3]> = match samples {
        Samples::YbrFull422 => data
            .chunks_exact(4)
            .flat_map(|c| [[c[0], c[2], c[3]], [c[1], c[2], c[3]]])
            .collect(),
        // Planar Configuration 1 stores each sample's plane in turn: RRR…GGG…BBB…
        _ if planar => (0..pixels)
            .map(|i| [data[i], data[pixels + i], data[2 * pixels + i]])
            .collect(),
        _ => data.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect(),
    };
    let rgb = triplets
        .into_iter()
        .flat_map(|t| {
            if samples == Samples::Rgb {
                t
            } else {
                ybr_to_rgb(t)
            }
        })
        .collect();
    Ok(RgbImage::from_raw(width, height, rgb).expect("3 bytes per pixel"))
}

/// PS3.3 C.7.6.3.1.2: R = Y + 1.402 (Cr − 128), G = Y − 0.344136 (Cb − 128) − 0.714136
/// (Cr − 128), B = Y + 1.772 (Cb − 128), rounded and clamped to 0..=255.
fn ybr_to_rgb([y, cb, cr]: [u8; 3]) -> [u8; 3] {
    let (y, cb, cr) = (f64::from(y), f64::from(cb) - 128.0, f64::from(cr) - 128.0);
    [
        y + 1.402 * cr,
        y - 0.344136 * cb - 0.714136 * cr,
        y + 1.772 * cb,
    ]
    .map(|v| v.round().clamp(0.0, 255.0) as u8)
}

/// A PALETTE COLOR frame through its Red, Green and Blue Palette Color Lookup Tables
/// (PS3.3 C.7.6.3.1.5): indices below the first mapped value take the first entry, above the
/// last the last; 16-bit entries keep their high byte. `Err` is the reason, to follow
/// "DICOM ".
pub(super) fn palette(
    object: &DefaultDicomObject,
    pixels: &DecodedPixelData,
) -> Result<RgbImage, String> {
    let signed = pixels.pixel_representation() == PixelRepresentation::Signed;
    let luts = [
        (
            "Red",
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        ),
        (
            "Green",
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        ),
        (
            "Blue",
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        ),
    ]
    .map(|(name, descriptor, data)| table(object, descriptor, data, signed).ok_or(name));
    let luts = luts
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|name| {
            format!("PALETTE COLOR without a readable {name} Palette Color Lookup Table (descriptor of entries, first value, 8 or 16 bits, and that many entries)")
        })?;
    let rgb = grey::stored_samples(pixels, super::is_big_endian(object))?
        .into_iter()
        .flat_map(|index| {
            let at = |lut: &Lut| {
                let entry = lut.look_up(f64::from(index)) as u16;
                (entry >> (lut.bits() - 8)) as u8
            };
            [at(&luts[0]), at(&luts[1]), at(&luts[2])]
        })
        .collect();
    RgbImage::from_raw(pixels.columns(), pixels.rows(), rgb)
        .ok_or_else(|| "pixel data is shorter than Rows × Columns".into())
}

/// One palette table (entries of 8 or 16 bits), `None` when inconsistent.
fn table(object: &DefaultDicomObject, descriptor: Tag, data: Tag, signed: bool) -> Option<Lut> {
    let descriptor: Vec<i32> = object.element(descriptor).ok()?.to_multi_int().ok()?;
    let [entries, first, bits] = descriptor[..] else {
        return None;
    };
    let entries = grey::lut_entries(entries);
    let bytes = object.element(data).ok()?.to_bytes().ok()?;
    // 8-bit entries are stored a byte each, 16-bit ones little endian.
    let values: Vec<u16> = match bits {
        8 => bytes.iter().map(|&b| u16::from(b)).collect(),
        16 => bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect(),
        _ => return None,
    };
    let values = values.get(..entries)?.to_vec();
    Some(Lut::new(first, bits as u8, values, signed))
}
