//! Resizing to the model's input size. The default reproduces what Keras'
//! `image_dataset_from_directory` does: `tf.image.resize(method="bilinear",
//! antialias=False)`, half-pixel centres, aspect ratio not kept. Downscaling a large
//! radiograph this way aliases, exactly as it does in Keras; the antialiased filters are
//! there for users who prefer quality over parity.

use clap::ValueEnum;
use std::fmt;

use image::imageops::FilterType;
use image::{GrayImage, ImageBuffer, Pixel, RgbImage};
use serde::{Deserialize, Serialize};

use crate::FloatImage;
use crate::decode::Pixels;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Filter {
    /// TensorFlow bilinear without antialiasing (Keras' default).
    #[default]
    Bilinear,
    /// TensorFlow nearest neighbour, half-pixel centres.
    Nearest,
    /// Triangle filter widened by the scale factor (PIL's BILINEAR, TF's `antialias=True`).
    BilinearAntialias,
    /// Lanczos, three lobes, antialiased.
    Lanczos3,
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            self.to_possible_value()
                .expect("every variant has a name")
                .get_name(),
        )
    }
}

/// One output coordinate's two source indices and the weight of the upper one.
struct Tap {
    lower: usize,
    upper: usize,
    lerp: f32,
}

/// TensorFlow's `compute_interpolation_weights` with half-pixel centres.
fn taps(out_len: usize, in_len: usize) -> Vec<Tap> {
    let scale = in_len as f32 / out_len as f32;
    (0..out_len)
        .map(|i| {
            let source = (i as f32 + 0.5) * scale - 0.5;
            let floor = source.floor();
            Tap {
                lower: floor.max(0.0) as usize,
                upper: (source.ceil() as usize).min(in_len - 1),
                lerp: source - floor,
            }
        })
        .collect()
}

/// An 8-bit image with one (grey) or three (RGB) channels.
pub trait Raster {
    fn width(&self) -> u32;
    fn height(&self) -> u32;
    fn channels(&self) -> usize;
    /// Row-major samples, `channels()` per pixel.
    fn as_raw(&self) -> &[u8];
}

/// `RgbImage` and `GrayImage` alike.
impl<P: Pixel<Subpixel = u8>> Raster for ImageBuffer<P, Vec<u8>> {
    fn width(&self) -> u32 {
        self.width()
    }
    fn height(&self) -> u32 {
        self.height()
    }
    fn channels(&self) -> usize {
        usize::from(P::CHANNEL_COUNT)
    }
    fn as_raw(&self) -> &[u8] {
        self.as_raw()
    }
}

impl Raster for Pixels {
    fn width(&self) -> u32 {
        Pixels::width(self)
    }
    fn height(&self) -> u32 {
        Pixels::height(self)
    }
    fn channels(&self) -> usize {
        Pixels::channels(self)
    }
    fn as_raw(&self) -> &[u8] {
        Pixels::as_raw(self)
    }
}

/// Resizes `image` to `height × width` with `filter`, keeping float precision and its
/// channels: a grey image stays one channel (equal to resizing its RGB copy, channel by
/// channel, at a third of the work).
pub fn resize(image: &impl Raster, height: usize, width: usize, filter: Filter) -> FloatImage {
    let (in_h, in_w, channels) = (
        image.height() as usize,
        image.width() as usize,
        image.channels(),
    );
    let raw = image.as_raw();
    let px = |y: usize, x: usize, c: usize| f32::from(raw[(y * in_w + x) * channels + c]);
    let mut out = FloatImage::zeros_like(height, width, channels);
    let mut set = |oy: usize, ox: usize, c: usize, value: f32| out.set(oy, ox, c, value);
    match filter {
        Filter::Bilinear => {
            let (ys, xs) = (taps(height, in_h), taps(width, in_w));
            for (oy, ty) in ys.iter().enumerate() {
                for (ox, tx) in xs.iter().enumerate() {
                    for c in 0..channels {
                        let top = px(ty.lower, tx.lower, c)
                            + (px(ty.lower, tx.upper, c) - px(ty.lower, tx.lower, c)) * tx.lerp;
                        let bottom = px(ty.upper, tx.lower, c)
                            + (px(ty.upper, tx.upper, c) - px(ty.upper, tx.lower, c)) * tx.lerp;
                        set(oy, ox, c, top + (bottom - top) * ty.lerp);
                    }
                }
            }
        }
        Filter::Nearest => {
            let nearest = |i: usize, in_len: usize, out_len: usize| {
                let scale = in_len as f32 / out_len as f32;
                (((i as f32 + 0.5) * scale).floor() as usize).min(in_len - 1)
            };
            for oy in 0..height {
                let sy = nearest(oy, in_h, height);
                for ox in 0..width {
                    let sx = nearest(ox, in_w, width);
                    for c in 0..channels {
                        set(oy, ox, c, px(sy, sx, c));
                    }
                }
            }
        }
        Filter::BilinearAntialias | Filter::Lanczos3 => {
            let kind = if filter == Filter::Lanczos3 {
                FilterType::Lanczos3
            } else {
                FilterType::Triangle
            };
            let (w, h) = (width as u32, height as u32);
            let raw = raw.to_vec();
            out = if channels == 1 {
                let grey = GrayImage::from_raw(image.width(), image.height(), raw)
                    .expect("one byte a pixel");
                let resized = image::imageops::resize(&grey, w, h, kind);
                FloatImage {
                    height,
                    width,
                    channels: 1,
                    data: resized.into_raw().into_iter().map(f32::from).collect(),
                }
            } else {
                let rgb = RgbImage::from_raw(image.width(), image.height(), raw)
                    .expect("three bytes a pixel");
                FloatImage::from_rgb(&image::imageops::resize(&rgb, w, h, kind))
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 10) as u8, (y * 10) as u8, 0])
        })
    }

    #[test]
    fn same_size_is_identity_for_every_filter() {
        let img = ramp(5, 4);
        for &filter in Filter::value_variants() {
            let name = filter.to_string();
            assert_eq!(
                resize(&img, 4, 5, filter).to_u8(),
                img.as_raw().clone(),
                "{name}"
            );
        }
    }

    /// The grey fast path: resizing one channel and copying it equals resizing the grey
    /// image replicated to RGB, bit for bit, for every filter and for up- and downscaling.
    #[test]
    fn grey_resizes_exactly_as_its_rgb_copy() {
        let grey = GrayImage::from_fn(37, 23, |x, y| image::Luma([((x * 7 + y * 13) % 256) as u8]));
        let rgb = Pixels::Grey(grey.clone()).into_rgb();
        for &filter in Filter::value_variants() {
            let name = filter.to_string();
            for (h, w) in [(10, 16), (23, 37), (50, 41)] {
                let (one, three) = (resize(&grey, h, w, filter), resize(&rgb, h, w, filter));
                assert_eq!(one.channels, 1);
                assert_eq!(one.to_u8(), three.to_u8(), "{name} to {h}x{w}");
                for (i, v) in one.data.iter().enumerate() {
                    assert_eq!(three.data[i * 3..i * 3 + 3], [*v; 3], "{name} to {h}x{w}");
                }
            }
        }
    }

    #[test]
    fn bilinear_halving_matches_tensorflow() {
        // tf.image.resize([[0,10,20,30]], [1,2], 'bilinear', antialias=False) -> [5, 25]:
        // half-pixel centres put output 0 at input 0.5, output 1 at input 2.5.
        let img = ramp(4, 1);
        let out = resize(&img, 1, 2, Filter::Bilinear);
        assert_eq!([out.at(0, 0, 0), out.at(0, 1, 0)], [5.0, 25.0]);
    }

    #[test]
    fn bilinear_doubling_clamps_at_the_border() {
        // Output 0 maps to input -0.25 -> clamps to pixel 0; output 1 to 0.25 -> 2.5.
        let img = ramp(2, 1);
        let out = resize(&img, 1, 4, Filter::Bilinear);
        let row: Vec<f32> = (0..4).map(|x| out.at(0, x, 0)).collect();
        assert_eq!(row, vec![0.0, 2.5, 7.5, 10.0]);
    }

    #[test]
    fn nearest_picks_half_pixel_centres() {
        let img = ramp(4, 1);
        let out = resize(&img, 1, 2, Filter::Nearest);
        assert_eq!([out.at(0, 0, 0), out.at(0, 1, 0)], [10.0, 30.0]);
    }

    #[test]
    fn filter_names_round_trip_through_display_and_serde() {
        for &filter in Filter::value_variants() {
            let name = filter.to_string();
            assert_eq!(Filter::from_str(&name, false), Ok(filter));
            assert_eq!(
                serde_json::to_string(&filter).unwrap(),
                format!("\"{name}\"")
            );
        }
        assert!(Filter::from_str("cubic", false).is_err());
    }
}
