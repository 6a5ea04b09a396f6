//! Decoding any supported file to 8-bit RGB, with a pixel limit checked from the header
//! before any allocation, so a decompression bomb is refused rather than exhausting memory.
//!
//! Conversions follow TensorFlow's `decode_image(channels=3)` as Keras uses it: grey is
//! replicated to three channels, alpha is dropped (not composited), 16-bit samples are scaled
//! to 8 bits, palettes are expanded. EXIF orientation is not applied (Keras does not apply it
//! either), so training and inference see the pixels in stored order.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use image::{ImageReader, RgbImage};

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

fn reader(path: &Path) -> Result<ImageReader<BufReader<File>>, DecodeError> {
    let io = |source| DecodeError::Io {
        path: path.to_path_buf(),
        source,
    };
    // The format comes from the content, not the extension: a PNG named .jpg still decodes
    // and a text file named .jpg is reported as what it is.
    ImageReader::open(path)
        .map_err(io)?
        .with_guessed_format()
        .map_err(io)
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
            if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
                format("empty file")
            } else {
                format("truncated: the data ends early")
            }
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

/// Reads only the header: width and height, with the pixel limit applied.
pub fn probe(path: &Path, limits: DecodeLimits) -> Result<(u32, u32), DecodeError> {
    let reader = reader(path)?;
    if reader.format().is_none() {
        return Err(DecodeError::Format {
            path: path.to_path_buf(),
            reason: "unknown or unsupported image format".into(),
        });
    }
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| format_error(path, e))?;
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

/// Decodes the whole image to 8-bit RGB (see the module notes for the conversions).
pub fn decode_rgb(path: &Path, limits: DecodeLimits) -> Result<RgbImage, DecodeError> {
    probe(path, limits)?;
    let mut reader = reader(path)?;
    let mut decoder_limits = image::Limits::default();
    // Room for the largest accepted image at 16 bits × 4 channels, plus decoder scratch.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(1 << 26));
    reader.limits(decoder_limits);
    let image = reader.decode().map_err(|e| format_error(path, e))?;
    Ok(image.to_rgb8())
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
