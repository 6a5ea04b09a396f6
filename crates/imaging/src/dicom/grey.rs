//! Grey DICOM pixels from the stored integers up (PS3.3 C.11): done here rather than by
//! dicom-pixeldata's converters, which take the minimum and maximum of signed samples read as
//! unsigned (CT padded with −2000 counts as 63536 and comes out black) and have no pixel
//! padding. dicom-pixeldata still decodes the pixel data and parses the window, VOI LUT
//! function and VOI LUT Sequence (including the functional groups of enhanced files).

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::{DecodedPixelData, PixelRepresentation, VoiLutFunction};

use crate::window::{self, Window};

/// Reads one frame's samples as the integers they store: Bits Stored bits ending at High
/// Bit, masked out of each Bits Allocated sample and sign-extended when Pixel Representation
/// is 1 (PS3.5 8.1.1). `Err` says what in the header is inconsistent.
pub(super) fn stored_samples(
    pixels: &DecodedPixelData,
    big_endian: bool,
) -> Result<Vec<i32>, String> {
    let (allocated, stored, high) = (
        u32::from(pixels.bits_allocated()),
        u32::from(pixels.bits_stored()),
        u32::from(pixels.high_bit()),
    );
    // dicom-pixeldata expands 1-bit samples to one byte each (0 or 255).
    let bytes = allocated.div_ceil(8) as usize;
    if !matches!(bytes, 1 | 2 | 4) || stored == 0 || stored > allocated || high >= allocated {
        return Err(format!(
            "Bits Allocated {allocated}, Bits Stored {stored}, High Bit {high} do not describe integer samples"
        ));
    }
    let shift = (high + 1)
        .checked_sub(stored)
        .ok_or_else(|| format!("High Bit {high} leaves no room for Bits Stored {stored}"))?;
    let signed = pixels.pixel_representation() == PixelRepresentation::Signed;
    // Pixel Data in explicit VR big endian is OW: dicom-rs brings each 16-bit word to native
    // order, so a 32-bit sample arrives with its two words still in big-endian order.
    let words_swapped = big_endian && bytes == 4;
    Ok(pixels
        .data()
        .chunks_exact(bytes)
        .map(|sample| {
            let mut raw = [0u8; 4];
            raw[..bytes].copy_from_slice(sample);
            let raw = u32::from_le_bytes(raw);
            let raw = if words_swapped {
                raw.rotate_left(16)
            } else {
                raw
            };
            sign_extend(raw >> shift, stored, signed)
        })
        .collect())
}

/// The low `bits` of `raw` as a stored value: two's complement when `signed`.
fn sign_extend(raw: u32, bits: u32, signed: bool) -> i32 {
    let value = i64::from(raw) & ((1i64 << bits) - 1);
    let negative = signed && value >> (bits - 1) & 1 == 1;
    (if negative {
        value - (1i64 << bits)
    } else {
        value
    }) as i32
}

/// A LUT Descriptor's entry count: 0 means 65536 (PS3.3 C.11.1.1.1, C.7.6.3.1.5).
pub(super) fn lut_entries(descriptor: i32) -> usize {
    if descriptor == 0 {
        65536
    } else {
        descriptor as usize
    }
}

/// A lookup table of the Modality or VOI LUT Sequence (PS3.3 C.11.1.1, C.11.2.1.1), or a
/// palette's (C.7.6.3.1.5).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Lut {
    /// The input value mapped to the first entry; lower inputs map to it too.
    first: i32,
    /// Bits of an output entry: the VOI LUT's outputs span 0..2^bits − 1.
    bits: u8,
    data: Vec<u16>,
}

impl Lut {
    /// Bits of an output entry.
    pub(super) fn bits(&self) -> u8 {
        self.bits
    }

    pub(super) fn new(first: i32, bits: u8, data: Vec<u16>, signed: bool) -> Self {
        // The descriptor's first mapped value is often written as US even when the input is
        // signed (PS3.3 C.11.1.1.1 allows either): −2000 then reads 63536.
        let first = if signed && first > i32::from(i16::MAX) {
            first - 65536
        } else {
            first
        };
        Lut { first, bits, data }
    }

    pub(super) fn look_up(&self, value: f64) -> f64 {
        let index =
            (value.round() - f64::from(self.first)).clamp(0.0, (self.data.len() - 1) as f64);
        f64::from(self.data[index as usize])
    }
}

/// Stored values to modality values (PS3.3 C.11.1): Hounsfield units for CT.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Modality {
    Rescale { slope: f64, intercept: f64 },
    Lut(Lut),
}

impl Modality {
    /// The Modality LUT Sequence if the file has one (it replaces Rescale Slope and
    /// Intercept), else the rescale dicom-pixeldata found (slope 1, intercept 0 without one).
    pub(super) fn of(
        object: &DefaultDicomObject,
        pixels: &DecodedPixelData,
    ) -> Result<Self, String> {
        let signed = pixels.pixel_representation() == PixelRepresentation::Signed;
        if let Some(item) = object
            .element(tags::MODALITY_LUT_SEQUENCE)
            .ok()
            .and_then(|e| e.items())
            .and_then(|items| items.first())
        {
            let descriptor: Vec<i32> = item
                .element(tags::LUT_DESCRIPTOR)
                .ok()
                .and_then(|e| e.to_multi_int().ok())
                .filter(|d: &Vec<i32>| d.len() == 3)
                .ok_or("its Modality LUT Sequence has no three-valued LUT Descriptor")?;
            let entries = lut_entries(descriptor[0]);
            let data: Vec<u16> = item
                .element(tags::LUT_DATA)
                .ok()
                .and_then(|e| e.to_multi_int().ok())
                .unwrap_or_default();
            if data.len() != entries {
                return Err(format!(
                    "its Modality LUT has {} entries where its descriptor says {entries}",
                    data.len()
                ));
            }
            let bits = u8::try_from(descriptor[2]).map_err(|_| "bad LUT Descriptor bits")?;
            return Ok(Modality::Lut(Lut::new(descriptor[1], bits, data, signed)));
        }
        let rescale = pixels
            .rescale()
            .map_err(|e| format!("its Rescale Slope/Intercept cannot be read ({e})"))?[0];
        Ok(Modality::Rescale {
            slope: rescale.slope,
            intercept: rescale.intercept,
        })
    }

    pub(super) fn apply(&self, stored: i32) -> f64 {
        match self {
            Modality::Rescale { slope, intercept } => f64::from(stored) * slope + intercept,
            Modality::Lut(lut) => lut.look_up(f64::from(stored)),
        }
    }
}

/// Modality values to display intensities 0..=255 (PS3.3 C.11.2).
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Voi {
    Lut(Lut),
    Window {
        center: f64,
        width: f64,
        function: VoiLutFunction,
    },
    /// A linear stretch from the lowest to the highest value.
    Range {
        low: f64,
        high: f64,
    },
}

impl Voi {
    pub(super) fn apply(&self, x: f64) -> f64 {
        const TOP: f64 = 255.0;
        match *self {
            Voi::Lut(ref lut) => {
                let top = ((1u32 << lut.bits.min(16)) - 1).max(1);
                lut.look_up(x) / f64::from(top) * TOP
            }
            Voi::Window {
                center: c,
                width: w,
                function,
            } => match function {
                // C.11.2.1.2.1: `((x − (c − 0.5)) / (w − 1) + 0.5) · 255`, clamped.
                VoiLutFunction::Linear => f64::from(Window::linear(x as f32, c as f32, w as f32)),
                // C.11.2.1.3.2: `((x − c) / w + 0.5) · 255`; black at or below c − w/2,
                // white above c + w/2.
                VoiLutFunction::LinearExact => {
                    if x <= c - w / 2.0 {
                        0.0
                    } else if x > c + w / 2.0 {
                        TOP
                    } else {
                        ((x - c) / w + 0.5) * TOP
                    }
                }
                // C.11.2.1.3.1: `255 / (1 + exp(−4 (x − c) / w))`.
                VoiLutFunction::Sigmoid => TOP / (1.0 + (-4.0 * (x - c) / w).exp()),
            },
            Voi::Range { low, high } => {
                f64::from(window::stretch(x as f32, low as f32, high as f32))
            }
        }
    }
}

/// The stored values the file marks as padding (Pixel Padding Value, up to Pixel Padding
/// Range Limit when given; PS3.3 C.7.5.1.1.2), in stored units, inclusive.
pub(super) fn padding(
    object: &DefaultDicomObject,
    pixels: &DecodedPixelData,
) -> Option<(i32, i32)> {
    let signed = pixels.pixel_representation() == PixelRepresentation::Signed;
    let bits = u32::from(pixels.bits_stored()).clamp(1, 32);
    // Either VR (US or SS) and either sign convention: the stored bits are what count.
    let read = |tag: Tag| {
        object
            .element(tag)
            .ok()
            .and_then(|e| e.to_int::<i64>().ok())
            .map(|v| sign_extend(v as u32, bits, signed))
    };
    let value = read(tags::PIXEL_PADDING_VALUE)?;
    let limit = read(tags::PIXEL_PADDING_RANGE_LIMIT).unwrap_or(value);
    Some((value.min(limit), value.max(limit)))
}

/// The lowest and highest modality value outside the padding (`None` when every sample is
/// padding).
pub(super) fn range(
    stored: &[i32],
    modality: &Modality,
    padding: Option<(i32, i32)>,
) -> Option<(f64, f64)> {
    stored
        .iter()
        .filter(|&&v| padding.is_none_or(|(low, high)| v < low || v > high))
        .map(|&v| modality.apply(v))
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((low, high)) => Some((f64::min(low, v), f64::max(high, v))),
        })
}

/// A VOI LUT as dicom-pixeldata parses it (its type is not exported), its first mapped value
/// read with the pixels' signedness.
pub(super) fn voi_lut(first: i32, bits: u8, data: &[u16], pixels: &DecodedPixelData) -> Voi {
    let signed = pixels.pixel_representation() == PixelRepresentation::Signed;
    Voi::Lut(Lut::new(first, bits, data.to_vec(), signed))
}

/// The 8-bit intensities: modality LUT, VOI, then MONOCHROME1's inversion (so that bone is
/// bright in both).
pub(super) fn to_u8(stored: &[i32], modality: &Modality, voi: &Voi, invert: bool) -> Vec<u8> {
    stored
        .iter()
        .map(|&v| {
            let y = voi.apply(modality.apply(v)).round().clamp(0.0, 255.0) as u8;
            if invert { 255 - y } else { y }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_bits_are_masked_and_sign_extended() {
        // 12 stored bits: 0xF830 & 0xFFF = 0x830, whose top bit makes it 0x830 − 4096.
        assert_eq!(sign_extend(0xF830, 12, true), 0x830 - 4096);
        assert_eq!(sign_extend(0xF830, 12, false), 0x830);
        assert_eq!(sign_extend(0xF830, 16, true), -2000);
        assert_eq!(sign_extend(0xFFFF_FFFF, 32, true), -1);
    }

    #[test]
    fn a_lut_clamps_outside_its_inputs_and_reads_a_us_first_value_as_signed() {
        let lut = Lut::new(65535, 8, vec![10, 20, 30], true); // first = −1
        assert_eq!(lut.first, -1);
        assert_eq!(
            [-5.0, -1.0, 0.0, 1.0, 7.0].map(|x| lut.look_up(x)),
            [10.0, 10.0, 20.0, 30.0, 30.0]
        );
    }

    #[test]
    fn window_functions_follow_the_standard() {
        let window = |function| Voi::Window {
            center: 100.0,
            width: 51.0,
            function,
        };
        // LINEAR: ((x − 99.5) / 50 + 0.5) · 255; x = 110 gives (0.21 + 0.5) · 255 = 181.05.
        assert!((window(VoiLutFunction::Linear).apply(110.0) - 181.05).abs() < 1e-3);
        // LINEAR_EXACT: ((x − 100) / 51 + 0.5) · 255; x = 110 gives 177.5.
        assert!((window(VoiLutFunction::LinearExact).apply(110.0) - 177.5).abs() < 1e-9);
        assert_eq!(window(VoiLutFunction::LinearExact).apply(74.5), 0.0);
        // SIGMOID: 255 / (1 + e^(−4·10/51)) = 175.21…
        let sigmoid = 255.0 / (1.0 + (-40.0f64 / 51.0).exp());
        assert!((window(VoiLutFunction::Sigmoid).apply(110.0) - sigmoid).abs() < 1e-9);
        assert!((window(VoiLutFunction::Sigmoid).apply(100.0) - 127.5).abs() < 1e-9);
    }
}
