//! Decoding any supported file to 8-bit grey or RGB, with a pixel limit checked from the
//! header before any allocation, so a decompression bomb is refused rather than exhausting
//! memory.
//!
//! Conversions follow TensorFlow's `decode_image(channels=3)` as Keras uses it: grey becomes
//! three equal channels (kept as one here until the very end: resizing one channel and
//! copying it is exact and three times cheaper), alpha is dropped (not composited), 16-bit
//! samples are scaled to 8 bits, palettes are expanded. EXIF orientation is not applied (Keras
//! does not apply it either), so training and inference see the pixels in stored order.
//! DICOM files (recognised by content, whatever their name, with or without preamble and
//! file meta) go through [`crate::dicom`], and
//! a [`Window`] other than `auto` maps stored values to 8 bits for every format.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, ImageDecoder, ImageReader, RgbImage};

use crate::dicom;
use crate::window::{self, Window};

/// Upper bounds on what a decoder may allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest width × height accepted.
    pub max_pixels: u64,
}

impl DecodeLimits {
    /// Pillow's `MAX_IMAGE_PIXELS` (89,478,485) doubled, Pillow's hard-error threshold: well
    /// above any radiograph (a 4320×4320 detector is 18.7 Mpx) and far below a bomb.
    pub const DEFAULT_MAX_PIXELS: u64 = 178_956_970;
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_pixels: Self::DEFAULT_MAX_PIXELS,
        }
    }
}

/// Everything that decides the decoded pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DecodeOptions {
    pub limits: DecodeLimits,
    pub window: Window,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{}: cannot read the file: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a readable image ({reason})", path.display())]
    Format { path: PathBuf, reason: String },
    #[error(
        "{}: {width}x{height} pixels exceeds the limit of {max} pixels (raise it with --max-pixels if the image is genuine)",
        path.display()
    )]
    TooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
        max: u64,
    },
}

impl DecodeError {
    pub fn path(&self) -> &Path {
        match self {
            DecodeError::Io { path, .. }
            | DecodeError::Format { path, .. }
            | DecodeError::TooLarge { path, .. } => path,
        }
    }
}

/// Decoded 8-bit pixels: grey stays one channel until it is resized.
#[derive(Clone, Debug, PartialEq)]
pub enum Pixels {
    Grey(GrayImage),
    Rgb(RgbImage),
}

impl Pixels {
    pub fn width(&self) -> u32 {
        match self {
            Pixels::Grey(i) => i.width(),
            Pixels::Rgb(i) => i.width(),
        }
    }

    pub fn height(&self) -> u32 {
        match self {
            Pixels::Grey(i) => i.height(),
            Pixels::Rgb(i) => i.height(),
        }
    }

    pub fn channels(&self) -> usize {
        match self {
            Pixels::Grey(_) => 1,
            Pixels::Rgb(_) => 3,
        }
    }

    /// Row-major samples, `channels()` per pixel.
    pub fn as_raw(&self) -> &[u8] {
        match self {
            Pixels::Grey(i) => i.as_raw(),
            Pixels::Rgb(i) => i.as_raw(),
        }
    }

    /// Three channels, grey replicated.
    pub fn into_rgb(self) -> RgbImage {
        match self {
            Pixels::Rgb(i) => i,
            Pixels::Grey(i) => {
                let raw: Vec<u8> = i.as_raw().iter().flat_map(|&v| [v, v, v]).collect();
                RgbImage::from_raw(i.width(), i.height(), raw).expect("three bytes a pixel")
            }
        }
    }
}

/// What decoding did to the stored values beyond reading 8-bit pixels.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Intensity {
    /// Without per-file numbers, so that a data set's files can be counted by kind.
    pub kind: String,
    /// With the file's own numbers (window, rescale, value range).
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    pub pixels: Pixels,
    /// `None` for an 8-bit image read as stored.
    pub intensity: Option<Intensity>,
}

fn read(path: &Path) -> Result<Vec<u8>, DecodeError> {
    let bytes = std::fs::read(path).map_err(|source| DecodeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.is_empty() {
        return Err(DecodeError::Format {
            path: path.to_path_buf(),
            reason: "empty file".into(),
        });
    }
    Ok(bytes)
}

/// A decoder chosen by content, not by extension: a PNG named .jpg still decodes and a text
/// file named .jpg is reported as what it is.
fn decoder<'a>(path: &Path, bytes: &'a [u8]) -> Result<impl ImageDecoder + use<'a>, DecodeError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| DecodeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if reader.format().is_none() {
        return Err(DecodeError::Format {
            path: path.to_path_buf(),
            reason: "unknown or unsupported image format".into(),
        });
    }
    reader.into_decoder().map_err(|e| format_error(path, e))
}

fn format_error(path: &Path, err: image::ImageError) -> DecodeError {
    let format = |reason: &str| DecodeError::Format {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    match err {
        image::ImageError::IoError(source)
            if source.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            format("truncated: the data ends early")
        }
        image::ImageError::IoError(source) => DecodeError::Io {
            path: path.to_path_buf(),
            source,
        },
        image::ImageError::Unsupported(_) => format("unknown or unsupported image format"),
        other => DecodeError::Format {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    }
}

/// Refuses an empty image or one over the pixel limit.
pub(crate) fn check_size(
    path: &Path,
    (width, height): (u32, u32),
    limits: DecodeLimits,
) -> Result<(u32, u32), DecodeError> {
    if width == 0 || height == 0 {
        return Err(DecodeError::Format {
            path: path.to_path_buf(),
            reason: "zero-sized".into(),
        });
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(DecodeError::TooLarge {
            path: path.to_path_buf(),
            width,
            height,
            max: limits.max_pixels,
        });
    }
    Ok((width, height))
}

/// Reads only the header: width and height, with the pixel limit applied.
pub fn probe(path: &Path, limits: DecodeLimits) -> Result<(u32, u32), DecodeError> {
    let io = |source| DecodeError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut head = Vec::with_capacity(132);
    (&mut file).take(132).read_to_end(&mut head).map_err(io)?;
    if head.is_empty() {
        return Err(DecodeError::Format {
            path: path.to_path_buf(),
            reason: "empty file".into(),
        });
    }
    if let Some(layout) = dicom::Layout::of(&head) {
        file.seek(SeekFrom::Start(layout.skip() as u64))
            .map_err(io)?;
        return dicom::probe(path, layout, BufReader::new(file), limits);
    }
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let reader = ImageReader::new(BufReader::new(file))
        .with_guessed_format()
        .map_err(io)?;
    if reader.format().is_none() {
        return Err(DecodeError::Format {
            path: path.to_path_buf(),
            reason: "unknown or unsupported image format".into(),
        });
    }
    let size = reader
        .into_dimensions()
        .map_err(|e| format_error(path, e))?;
    check_size(path, size, limits)
}

/// Decodes the whole image (see the module notes for the conversions).
pub fn decode(path: &Path, options: DecodeOptions) -> Result<Decoded, DecodeError> {
    let bytes = read(path)?;
    if let Some(layout) = dicom::Layout::of(&bytes) {
        return dicom::decode(path, layout, &bytes, options.limits, options.window);
    }
    let mut decoder = decoder(path, &bytes)?;
    check_size(path, decoder.dimensions(), options.limits)?;
    let mut decoder_limits = image::Limits::default();
    // Room for the largest accepted image at 16 bits × 4 channels, plus decoder scratch.
    decoder_limits.max_alloc = Some(
        options
            .limits
            .max_pixels
            .saturating_mul(8)
            .saturating_add(1 << 26),
    );
    decoder
        .set_limits(decoder_limits)
        .map_err(|e| format_error(path, e))?;
    let image = DynamicImage::from_decoder(decoder).map_err(|e| format_error(path, e))?;
    Ok(windowed(image, options.window))
}

/// Decodes to 8-bit RGB with the default window.
pub fn decode_rgb(path: &Path, limits: DecodeLimits) -> Result<RgbImage, DecodeError> {
    decode(
        path,
        DecodeOptions {
            limits,
            window: Window::Auto,
        },
    )
    .map(|d| d.pixels.into_rgb())
}

/// 16-bit values below this use 12 bits or fewer: scaled from 16 bits they look black.
const LOW_RANGE: u16 = 1 << 12;

/// Applies `window` to a decoded PNG, JPEG, TIFF… image.
fn windowed(image: DynamicImage, window: Window) -> Decoded {
    let grey = !image.color().has_color();
    let sixteen = image.color().bytes_per_pixel() / image.color().channel_count() > 1;
    if window == Window::Auto {
        let intensity = sixteen.then(|| {
            let high = values(&image, true).into_iter().fold(0.0, f32::max);
            let mut kind = "16-bit scaled to 8 bits".to_string();
            if high < f32::from(LOW_RANGE) {
                kind.push_str(
                    ", values within 12 bits (dark: consider --window min-max or CENTER,WIDTH)",
                );
            }
            Intensity {
                detail: format!("16-bit scaled to 8 bits (highest value {high})"),
                kind,
            }
        });
        let pixels = match image {
            DynamicImage::ImageLuma8(i) => Pixels::Grey(i),
            DynamicImage::ImageRgb8(i) => Pixels::Rgb(i),
            other if grey => Pixels::Grey(other.to_luma8()),
            other => Pixels::Rgb(other.to_rgb8()),
        };
        return Decoded { pixels, intensity };
    }
    let (width, height) = (image.width(), image.height());
    let (out, low, high) = window::to_u8(&values(&image, sixteen), window);
    let pixels = if grey {
        Pixels::Grey(GrayImage::from_raw(width, height, out).expect("one byte a pixel"))
    } else {
        Pixels::Rgb(RgbImage::from_raw(width, height, out).expect("three bytes a pixel"))
    };
    let bits = if sixteen { 16 } else { 8 };
    Decoded {
        pixels,
        intensity: Some(Intensity {
            kind: format!("{bits}-bit, window {window}"),
            detail: format!("{bits}-bit, window {window} (values {low}..{high})"),
        }),
    }
}

/// The stored values (grey, or RGB without alpha) as f32, at 16 or 8 bits.
fn values(image: &DynamicImage, sixteen: bool) -> Vec<f32> {
    fn floats<T: Into<f32>>(raw: Vec<T>) -> Vec<f32> {
        raw.into_iter().map(Into::into).collect()
    }
    match (sixteen, image.color().has_color()) {
        (true, true) => floats(image.to_rgb16().into_raw()),
        (true, false) => floats(image.to_luma16().into_raw()),
        (false, true) => floats(image.to_rgb8().into_raw()),
        (false, false) => floats(image.to_luma8().into_raw()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, Rgba};

    #[test]
    fn grey_and_alpha_and_16_bit_become_rgb8() {
        let dir = tempfile::tempdir().unwrap();
        let grey = dir.path().join("g.png");
        ImageBuffer::from_pixel(3, 2, Luma([200u8]))
            .save(&grey)
            .unwrap();
        let img = decode_rgb(&grey, DecodeLimits::default()).unwrap();
        assert_eq!((img.width(), img.height()), (3, 2));
        assert_eq!(img.get_pixel(1, 1).0, [200, 200, 200]);

        let rgba = dir.path().join("a.png");
        ImageBuffer::from_pixel(2, 2, Rgba([10u8, 20, 30, 0]))
            .save(&rgba)
            .unwrap();
        assert_eq!(
            decode_rgb(&rgba, DecodeLimits::default())
                .unwrap()
                .get_pixel(0, 0)
                .0,
            [10, 20, 30]
        );

        let deep = dir.path().join("d.png");
        ImageBuffer::from_pixel(2, 2, Luma([65535u16]))
            .save(&deep)
            .unwrap();
        assert_eq!(
            decode_rgb(&deep, DecodeLimits::default())
                .unwrap()
                .get_pixel(0, 0)
                .0,
            [255, 255, 255]
        );
    }

    /// CMYK JPEGs and palette PNGs become RGB; EXIF orientation is not applied, as in
    /// Keras (`tf.io.decode_image` ignores it), so ortl sees the pixels the tutorial does.
    #[test]
    fn cmyk_palette_and_exif_rotated_images() {
        let dir = tempfile::tempdir().unwrap();
        let cmyk = dir.path().join("cmyk.jpg");
        let mut bytes = Vec::new();
        // Adobe CMYK JPEGs store inverted values: 255 everywhere is no ink, i.e. white.
        jpeg_encoder::Encoder::new(&mut bytes, 95)
            .encode(&[255u8; 8 * 4 * 4], 8, 4, jpeg_encoder::ColorType::Cmyk)
            .unwrap();
        std::fs::write(&cmyk, &bytes).unwrap();
        let img = decode_rgb(&cmyk, DecodeLimits::default()).unwrap();
        assert_eq!((img.width(), img.height()), (8, 4));
        let [r, g, b] = img.get_pixel(3, 2).0;
        assert_eq!(r, g);
        assert_eq!(g, b);

        let palette = dir.path().join("palette.png");
        let file = std::fs::File::create(&palette).unwrap();
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), 2, 1);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_palette(vec![255u8, 0, 0, 0, 0, 255]);
        encoder
            .write_header()
            .unwrap()
            .write_image_data(&[0, 1])
            .unwrap();
        let img = decode_rgb(&palette, DecodeLimits::default()).unwrap();
        assert_eq!(img.get_pixel(0, 0).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(1, 0).0, [0, 0, 255]);

        // Orientation 6 ("rotate 90° clockwise to display") in an EXIF APP1 segment.
        let mut exif = b"Exif\0\0II*\0\x08\0\0\0\x01\0".to_vec();
        exif.extend([0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]);
        let rotated = dir.path().join("rotated.jpg");
        let mut bytes = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, 90);
        encoder.add_app_segment(1, exif).unwrap();
        encoder
            .encode(&[128u8; 40 * 20 * 3], 40, 20, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        std::fs::write(&rotated, &bytes).unwrap();
        let mut decoder = image::ImageReader::open(&rotated)
            .unwrap()
            .with_guessed_format()
            .unwrap()
            .into_decoder()
            .unwrap();
        assert_eq!(
            image::ImageDecoder::orientation(&mut decoder).unwrap(),
            image::metadata::Orientation::Rotate90,
            "the test file carries the orientation tag"
        );
        let img = decode_rgb(&rotated, DecodeLimits::default()).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            (40, 20),
            "stored orientation kept"
        );
    }

    #[test]
    fn grey_stays_one_channel_and_colour_three() {
        let dir = tempfile::tempdir().unwrap();
        let grey = dir.path().join("g.png");
        ImageBuffer::from_fn(5, 3, |x, y| Luma([(x * 40 + y) as u8]))
            .save(&grey)
            .unwrap();
        let decoded = decode(&grey, DecodeOptions::default()).unwrap();
        assert_eq!(decoded.pixels.channels(), 1);
        assert_eq!(decoded.intensity, None, "8-bit read as stored");
        assert_eq!(decoded.pixels.as_raw()[6], 41);
        let rgb = decoded.pixels.into_rgb();
        assert_eq!(rgb.get_pixel(1, 1).0, [41, 41, 41]);
        let colour = dir.path().join("c.png");
        ImageBuffer::from_pixel(2, 2, image::Rgb([1u8, 2, 3]))
            .save(&colour)
            .unwrap();
        assert_eq!(
            decode(&colour, DecodeOptions::default())
                .unwrap()
                .pixels
                .channels(),
            3
        );
    }

    /// 16-bit values keep their range until the window maps them: a 12-bit radiograph
    /// stored in a 16-bit PNG is flagged under `auto` and stretched exactly by `min-max` or a
    /// fixed window.
    #[test]
    fn sixteen_bit_grey_is_windowed_from_full_precision() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("twelve.png");
        // Values 0, 16, …, 4080: 12 bits; a scale by 257 would crush them to 0..16.
        ImageBuffer::from_fn(256, 1, |x, _| Luma([(x * 16) as u16]))
            .save(&path)
            .unwrap();
        let auto = decode(&path, DecodeOptions::default()).unwrap();
        assert_eq!(
            auto.pixels.as_raw()[255],
            16,
            "4080 / 257, as Keras scales it"
        );
        let flagged = auto.intensity.unwrap();
        assert!(
            flagged.kind.contains("12 bits") && flagged.kind.contains("--window"),
            "{flagged:?}"
        );
        let options = |window| DecodeOptions {
            window,
            ..DecodeOptions::default()
        };
        let stretched = decode(&path, options(Window::MinMax)).unwrap();
        let expected: Vec<u8> = (0..256u32).map(|x| x as u8).collect();
        assert_eq!(stretched.pixels.as_raw(), expected.as_slice());
        assert!(stretched.intensity.unwrap().detail.contains("0..4080"));
        // The DICOM-style window over 0..4080 maps 16·v to v exactly.
        let fixed = Window::Fixed {
            center: 2040.5,
            width: 4081.0,
        };
        let windowed = decode(&path, options(fixed)).unwrap();
        assert_eq!(windowed.pixels.as_raw(), expected.as_slice());
        // A window on an 8-bit image applies too.
        let eight = dir.path().join("eight.png");
        ImageBuffer::from_fn(3, 1, |x, _| Luma([[10u8, 20, 30][x as usize]]))
            .save(&eight)
            .unwrap();
        let raw = decode(&eight, options(Window::MinMax)).unwrap();
        assert_eq!(raw.pixels.as_raw(), &[0, 128, 255]);
    }

    #[test]
    fn png_named_jpg_decodes_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("actually-png.jpg");
        ImageBuffer::from_pixel(4, 4, Luma([7u8]))
            .save_with_format(&path, image::ImageFormat::Png)
            .unwrap();
        assert_eq!(
            decode_rgb(&path, DecodeLimits::default()).unwrap().width(),
            4
        );
    }

    #[test]
    fn bad_files_name_the_file_and_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.jpg");
        std::fs::write(&text, "this is not an image").unwrap();
        let err = decode_rgb(&text, DecodeLimits::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("notes.jpg") && err.contains("not a readable image"),
            "{err}"
        );

        let empty = dir.path().join("empty.png");
        std::fs::write(&empty, "").unwrap();
        let err = decode_rgb(&empty, DecodeLimits::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("empty file"), "{err}");

        let mut png = Vec::new();
        ImageBuffer::from_fn(64, 64, |x, y| Luma([(x * y) as u8]))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let truncated = dir.path().join("cut.png");
        std::fs::write(&truncated, &png[..png.len() / 2]).unwrap();
        let err = decode_rgb(&truncated, DecodeLimits::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cut.png") && err.contains("truncated"),
            "{err}"
        );

        let missing = dir.path().join("missing.png");
        let err = decode_rgb(&missing, DecodeLimits::default()).unwrap_err();
        assert!(matches!(err, DecodeError::Io { .. }));
    }

    #[test]
    fn too_many_pixels_is_refused_from_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.png");
        ImageBuffer::from_pixel(100, 50, Luma([0u8]))
            .save(&path)
            .unwrap();
        let err = decode_rgb(&path, DecodeLimits { max_pixels: 4999 }).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::TooLarge {
                width: 100,
                height: 50,
                ..
            }
        ));
        assert!(err.to_string().contains("--max-pixels"));
    }
}
