//! Heatmap overlays: the class activation map in the jet colour map over the grey image,
//! opaque where the model looks and transparent where it does not, so the anatomy stays
//! readable; a caption (class and probability) and a colour bar are drawn inside the
//! picture, which keeps the image's own size.

use image::imageops::{self, FilterType};
use image::{GrayImage, ImageBuffer, Luma, RgbImage};
use plotters::prelude::*;

use crate::font;

/// Overlays larger than this on their long side are scaled down (a 3000-pixel radiograph
/// would make a slow, heavy PNG that no screen shows at full size).
pub const MAX_SIDE: u32 = 1024;

/// Opacity of the heat colour at the map's maximum.
const MAX_ALPHA: f32 = 0.65;

/// The jet colour map: blue (0) → cyan → yellow → red (1).
pub fn jet(t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    let channel = |centre: f32| ((1.5 - (4.0 * t - centre).abs()).clamp(0.0, 1.0) * 255.0) as u8;
    [channel(3.0), channel(2.0), channel(1.0)]
}

/// Bilinear upsampling of a `[h, w]` map to `[height, width]` (row-major).
pub fn upsample(map: &[f32], h: usize, w: usize, height: u32, width: u32) -> Vec<f32> {
    let buffer: ImageBuffer<Luma<f32>, Vec<f32>> =
        ImageBuffer::from_raw(w as u32, h as u32, map.to_vec()).expect("map is h × w");
    imageops::resize(&buffer, width, height, FilterType::Triangle).into_raw()
}

/// The map scaled to `[0, 1]` by its maximum (all zeros when nothing is positive).
pub fn normalized(map: &[f32]) -> Vec<f32> {
    let max = map.iter().copied().fold(0.0f32, f32::max);
    if max <= 0.0 || !max.is_finite() {
        return vec![0.0; map.len()];
    }
    map.iter().map(|v| (v / max).clamp(0.0, 1.0)).collect()
}

/// Size of the overlay for an image of `width × height`.
pub fn overlay_size(width: u32, height: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= MAX_SIDE {
        return (width, height);
    }
    let scale = f64::from(MAX_SIDE) / f64::from(long);
    let fit = |side: u32| ((f64::from(side) * scale).round() as u32).max(1);
    (fit(width), fit(height))
}

/// Draws the `[cam_h, cam_w]` map over `image` (see the module doc).
pub fn overlay(
    image: &RgbImage,
    cam: &[f32],
    cam_h: usize,
    cam_w: usize,
    caption: &str,
) -> Result<RgbImage, String> {
    let (width, height) = overlay_size(image.width(), image.height());
    let grey: GrayImage = imageops::grayscale(image);
    let grey = if (width, height) == grey.dimensions() {
        grey
    } else {
        imageops::resize(&grey, width, height, FilterType::Triangle)
    };
    let heat = upsample(&normalized(cam), cam_h, cam_w, height, width);
    let mut pixels = Vec::with_capacity((width * height * 3) as usize);
    for (g, &h) in grey.as_raw().iter().zip(&heat) {
        let colour = jet(h);
        let alpha = MAX_ALPHA * h;
        for c in colour {
            pixels.push((f32::from(*g) * (1.0 - alpha) + f32::from(c) * alpha).round() as u8);
        }
    }
    if height >= 48 && width >= 48 {
        draw_legend(&mut pixels, width, height, caption)?;
    }
    Ok(RgbImage::from_raw(width, height, pixels).expect("sizes match"))
}

/// Caption box top-left, colour bar with "high" / "low" along the right edge.
fn draw_legend(pixels: &mut [u8], width: u32, height: u32, caption: &str) -> Result<(), String> {
    font::register();
    let err = |e: DrawingAreaErrorKind<_>| format!("drawing the overlay legend: {e:?}");
    let root = BitMapBackend::with_buffer(pixels, (width, height)).into_drawing_area();
    let size = (f64::from(height) / 16.0).clamp(9.0, 26.0);
    let style = (font::FAMILY, size).into_font().color(&WHITE);
    let pad = (size / 3.0).round() as i32;
    if !caption.is_empty() {
        let (text_w, text_h) = root.estimate_text_size(caption, &style).map_err(err)?;
        root.draw(&Rectangle::new(
            [(0, 0), (text_w as i32 + 2 * pad, text_h as i32 + 2 * pad)],
            BLACK.mix(0.55).filled(),
        ))
        .map_err(err)?;
        root.draw(&Text::new(caption, (pad, pad), style.clone()))
            .map_err(err)?;
    }
    // Colour bar: a quarter of the height down to three quarters, high at the top.
    let bar_w = (width as i32 / 32).max(4);
    let (top, bottom) = (height as i32 / 4, height as i32 * 3 / 4);
    let right = width as i32 - pad;
    let left = right - bar_w;
    let (label_w, _) = root.estimate_text_size("high", &style).map_err(err)?;
    root.draw(&Rectangle::new(
        [
            (left - label_w as i32 - 2 * pad, top - pad),
            (width as i32, bottom + pad),
        ],
        BLACK.mix(0.45).filled(),
    ))
    .map_err(err)?;
    for y in top..bottom {
        let t = (bottom - y) as f32 / (bottom - top) as f32;
        let [r, g, b] = jet(t);
        root.draw(&Rectangle::new(
            [(left, y), (right, y + 1)],
            RGBColor(r, g, b).filled(),
        ))
        .map_err(err)?;
    }
    let label_x = left - label_w as i32 - pad;
    root.draw(&Text::new("high", (label_x, top), style.clone()))
        .map_err(err)?;
    root.draw(&Text::new(
        "low",
        (label_x, bottom - size.round() as i32),
        style,
    ))
    .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jet_runs_from_blue_through_green_to_red() {
        assert_eq!(jet(0.0), [0, 0, 127]);
        assert_eq!(jet(0.5), [127, 255, 127]);
        assert_eq!(jet(1.0), [127, 0, 0]);
    }

    #[test]
    fn normalized_scales_by_the_maximum_and_survives_all_zero_maps() {
        assert_eq!(normalized(&[0.0, 2.0, 1.0]), [0.0, 1.0, 0.5]);
        assert_eq!(normalized(&[0.0, 0.0]), [0.0, 0.0]);
        assert_eq!(normalized(&[f32::NAN, 1.0])[1], 1.0);
    }

    #[test]
    fn upsampling_keeps_the_hot_corner_and_the_size() {
        let map = [1.0, 0.0, 0.0, 0.0];
        let up = upsample(&map, 2, 2, 8, 8);
        assert_eq!(up.len(), 64);
        let argmax = up
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .unwrap();
        assert!(argmax / 8 < 4 && argmax % 8 < 4, "max at {argmax}");
    }

    #[test]
    fn overlay_keeps_the_image_size_up_to_the_cap_and_colours_the_hot_region() {
        let image = RgbImage::from_pixel(120, 90, image::Rgb([100, 100, 100]));
        // Hot top-left corner in a 3 × 4 map.
        let mut cam = vec![0.0; 12];
        cam[0] = 5.0;
        let out = overlay(&image, &cam, 3, 4, "tuberculosis 0.93").unwrap();
        assert_eq!(out.dimensions(), (120, 90));
        // Below the caption box, near the hot corner, red dominates; far away it is grey.
        let hot = out.get_pixel(3, 20);
        let cold = out.get_pixel(60, 80);
        assert!(hot[0] > hot[2] + 20, "hot pixel {hot:?}");
        assert_eq!(cold.0, [100, 100, 100]);
        assert_eq!(overlay_size(3000, 1500), (1024, 512));
    }
}
