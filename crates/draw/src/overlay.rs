//! Heatmap overlays: the class activation map in a colour map (jet, turbo or viridis) over
//! the grey image, opaque where the model looks and transparent where it does not, so the
//! anatomy stays readable. The map is upsampled smoothly for display (bicubic, then a
//! Gaussian of a quarter feature cell, so a 3×3 map does not show as diamonds). The
//! caption (class and probability) sits in a band above the image and the colour bar in a
//! band beside it: nothing is drawn over the image itself. Small images (often 100 or 224
//! pixels) are scaled up so that the picture, opened alone at 100 %, has legible text.

use image::imageops::{self, FilterType};
use image::{GrayImage, ImageBuffer, Luma, RgbImage};
use plotters::prelude::*;

use crate::font;

/// Overlays larger than this on their long side are scaled down (a 3000-pixel radiograph
/// would make a slow, heavy PNG that no screen shows at full size).
pub const MAX_SIDE: u32 = 1024;

/// Overlays smaller than this on their long side are scaled up: at 100 pixels the caption
/// would be too small to read, or wider than the picture.
pub const MIN_SIDE: u32 = 384;

/// Opacity of the heat colour at the map's maximum.
const MAX_ALPHA: f32 = 0.65;

/// The colour map of the overlay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Colormap {
    /// Blue → cyan → yellow → red, as the Keras Grad-CAM example.
    #[default]
    Jet,
    /// Google's Turbo: jet's order without its false bands.
    Turbo,
    /// Perceptually uniform, readable in grey and by colour-blind readers.
    Viridis,
}

impl Colormap {
    /// The colour of `t` in [0, 1].
    pub fn rgb(self, t: f32) -> [u8; 3] {
        let t = t.clamp(0.0, 1.0);
        let of = |g: colorous::Gradient| {
            let c = g.eval_continuous(f64::from(t));
            [c.r, c.g, c.b]
        };
        match self {
            Colormap::Jet => jet(t),
            Colormap::Turbo => of(colorous::TURBO),
            Colormap::Viridis => of(colorous::VIRIDIS),
        }
    }
}

/// The jet colour map: blue (0) → cyan → yellow → red (1).
pub fn jet(t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    let channel = |centre: f32| ((1.5 - (4.0 * t - centre).abs()).clamp(0.0, 1.0) * 255.0) as u8;
    [channel(3.0), channel(2.0), channel(1.0)]
}

/// Bilinear upsampling of a `[h, w]` map to `[height, width]` (row-major): the values the
/// `.npy` files keep.
pub fn upsample(map: &[f32], h: usize, w: usize, height: u32, width: u32) -> Vec<f32> {
    let buffer: ImageBuffer<Luma<f32>, Vec<f32>> =
        ImageBuffer::from_raw(w as u32, h as u32, map.to_vec()).expect("map is h × w");
    imageops::resize(&buffer, width, height, FilterType::Triangle).into_raw()
}

/// Upsampling for display: bicubic, then a Gaussian blur of a quarter feature cell, clamped
/// to [0, 1]; level sets come out round where bilinear interpolation of a coarse map draws
/// diamonds.
pub fn smooth_upsample(map: &[f32], h: usize, w: usize, height: u32, width: u32) -> Vec<f32> {
    let buffer: ImageBuffer<Luma<f32>, Vec<f32>> =
        ImageBuffer::from_raw(w as u32, h as u32, map.to_vec()).expect("map is h × w");
    let up = imageops::resize(&buffer, width, height, FilterType::CatmullRom);
    let cell = (f64::from(width) / w as f64).min(f64::from(height) / h as f64);
    let sigma = (cell / 4.0) as f32;
    let smooth = if sigma >= 0.5 {
        imageops::blur(&up, sigma)
    } else {
        up
    };
    smooth
        .into_raw()
        .into_iter()
        .map(|v| v.clamp(0.0, 1.0))
        .collect()
}

/// The map scaled to `[0, 1]` by its maximum (all zeros when nothing is positive).
pub fn normalized(map: &[f32]) -> Vec<f32> {
    let max = map.iter().copied().fold(0.0f32, f32::max);
    if max <= 0.0 || !max.is_finite() {
        return vec![0.0; map.len()];
    }
    map.iter().map(|v| (v / max).clamp(0.0, 1.0)).collect()
}

/// Size of the image part of an overlay for an image of `width × height`: its long side
/// brought within [`MIN_SIDE`, `MAX_SIDE`].
pub fn overlay_size(width: u32, height: u32) -> (u32, u32) {
    let long = width.max(height);
    let target = long.clamp(MIN_SIDE, MAX_SIDE);
    if long == target {
        return (width, height);
    }
    let scale = f64::from(target) / f64::from(long);
    let fit = |side: u32| ((f64::from(side) * scale).round() as u32).max(1);
    (fit(width), fit(height))
}

/// Where the parts of an overlay go: the image at (0, `band`), the caption band above it,
/// the colour bar band to its right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Size of the image part ([`overlay_size`]).
    pub width: u32,
    pub height: u32,
    /// Height of the caption band above the image.
    pub band: u32,
    /// Width of the colour-bar band right of the image.
    pub side: u32,
    /// Text size in pixels.
    pub text: u32,
}

impl Layout {
    /// The layout of the overlay of an image of `width × height`.
    pub fn of(width: u32, height: u32) -> Self {
        let (width, height) = overlay_size(width, height);
        // 16 pixels at MIN_SIDE: legible at 100 %, as a figure's labels are.
        let text = (f64::from(height.max(width)) / 24.0).clamp(16.0, 28.0) as u32;
        Layout {
            width,
            height,
            band: text * 2,
            side: text * 4,
            text,
        }
    }

    /// The whole picture's size.
    pub fn canvas(self) -> (u32, u32) {
        (self.width + self.side, self.height + self.band)
    }
}

/// How a map's values become colours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// Each map by its own maximum: where this image's evidence is strongest.
    #[default]
    Image,
    /// Every map by the largest value over all images, so colours compare across images
    /// (the PNGs are drawn once every image is scored).
    Global,
}

/// The map scaled to [0, 1] by `maximum` (all zeros when it is not positive).
pub fn scaled(map: &[f32], maximum: f32) -> Vec<f32> {
    if maximum <= 0.0 || !maximum.is_finite() {
        return vec![0.0; map.len()];
    }
    map.iter().map(|v| (v / maximum).clamp(0.0, 1.0)).collect()
}

/// Draws the `[cam_h, cam_w]` map over `image` (see the module doc), scaled by `maximum`
/// (`None`: by its own maximum).
pub fn overlay(
    image: &RgbImage,
    cam: &[f32],
    (cam_h, cam_w): (usize, usize),
    maximum: Option<f32>,
    caption: &str,
    colormap: Colormap,
) -> Result<RgbImage, String> {
    let layout = Layout::of(image.width(), image.height());
    let (width, height) = (layout.width, layout.height);
    let grey: GrayImage = imageops::grayscale(image);
    let grey = if (width, height) == grey.dimensions() {
        grey
    } else {
        imageops::resize(&grey, width, height, FilterType::Triangle)
    };
    let unit = match maximum {
        Some(maximum) => scaled(cam, maximum),
        None => normalized(cam),
    };
    let heat = smooth_upsample(&unit, cam_h, cam_w, height, width);
    let (canvas_w, canvas_h) = layout.canvas();
    let mut picture = RgbImage::from_pixel(canvas_w, canvas_h, image::Rgb([255, 255, 255]));
    for (i, (g, &h)) in grey.as_raw().iter().zip(&heat).enumerate() {
        let (x, y) = (i as u32 % width, i as u32 / width);
        let colour = colormap.rgb(h);
        let alpha = MAX_ALPHA * h;
        let blend = |c: u8| (f32::from(*g) * (1.0 - alpha) + f32::from(c) * alpha).round() as u8;
        picture.put_pixel(
            x,
            y + layout.band,
            image::Rgb([blend(colour[0]), blend(colour[1]), blend(colour[2])]),
        );
    }
    let mut pixels = picture.into_raw();
    draw_legend(&mut pixels, layout, caption, colormap)?;
    Ok(RgbImage::from_raw(canvas_w, canvas_h, pixels).expect("sizes match"))
}

/// The caption in the band above the image, the colour bar with "high" / "low" in the band
/// beside it.
fn draw_legend(
    pixels: &mut [u8],
    layout: Layout,
    caption: &str,
    colormap: Colormap,
) -> Result<(), String> {
    font::register();
    let err = |e: DrawingAreaErrorKind<_>| format!("drawing the overlay legend: {e:?}");
    let root = BitMapBackend::with_buffer(pixels, layout.canvas()).into_drawing_area();
    let size = f64::from(layout.text);
    let pad = (size / 2.0).round() as i32;
    if !caption.is_empty() {
        // A long class name is set smaller rather than cut off at the picture's edge.
        let room = f64::from(layout.canvas().0) - f64::from(pad);
        let (wide, _) = root
            .estimate_text_size(caption, &(font::FAMILY, size).into_font().color(&BLACK))
            .map_err(err)?;
        let fitted = size * (room / f64::from(wide.max(1))).min(1.0);
        let style = (font::FAMILY, fitted).into_font().color(&BLACK);
        root.draw(&Text::new(caption, (pad / 2, pad / 2), style))
            .map_err(err)?;
    }
    let band = layout.band as i32;
    let (left, bar_w) = (layout.width as i32 + pad / 2, (layout.text as i32).max(6));
    let (top, bottom) = (band + pad, band + layout.height as i32 - pad);
    if bottom - top < 8 {
        return root.present().map_err(err);
    }
    for y in top..bottom {
        let t = (bottom - y) as f32 / (bottom - top) as f32;
        let [r, g, b] = colormap.rgb(t);
        root.draw(&Rectangle::new(
            [(left, y), (left + bar_w, y + 1)],
            RGBColor(r, g, b).filled(),
        ))
        .map_err(err)?;
    }
    root.draw(&Rectangle::new(
        [(left, top), (left + bar_w, bottom)],
        BLACK,
    ))
    .map_err(err)?;
    let label_x = left + bar_w + 2;
    let small = (font::FAMILY, size * 0.8).into_font().color(&BLACK);
    root.draw(&Text::new("high", (label_x, top), small.clone()))
        .map_err(err)?;
    root.draw(&Text::new(
        "low",
        (label_x, bottom - (size * 0.8) as i32),
        small,
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
    fn overlay_keeps_the_image_whole_and_puts_caption_and_bar_beside_it() {
        let image = RgbImage::from_pixel(480, 360, image::Rgb([100, 100, 100]));
        // Hot top-left corner in a 3 × 4 map.
        let mut cam = vec![0.0; 12];
        cam[0] = 5.0;
        let out = overlay(
            &image,
            &cam,
            (3, 4),
            None,
            "tuberculosis 0.93",
            Colormap::Jet,
        )
        .unwrap();
        // On a global scale twice this map's maximum, the corner is half as hot.
        let half = overlay(&image, &cam, (3, 4), Some(10.0), "", Colormap::Jet).unwrap();
        let layout = Layout::of(480, 360);
        assert_eq!(
            (layout.width, layout.height),
            (480, 360),
            "kept at its size"
        );
        let (full, dim) = (
            out.get_pixel(2, layout.band + 2),
            half.get_pixel(2, layout.band + 2),
        );
        assert!(dim[0] < full[0] || dim[2] != full[2], "{full:?} vs {dim:?}");
        assert_eq!(out.dimensions(), layout.canvas());
        assert!(layout.band > 0 && layout.side > 0);
        // The image sits below the caption band: its hot corner is red, the far corner
        // untouched grey; nothing of the legend is drawn over it.
        let hot = out.get_pixel(2, layout.band + 2);
        assert!(hot[0] > hot[2] + 20, "hot pixel {hot:?}");
        for (x, y) in [(240, 320), (479, 359), (472, 180), (400, 40)] {
            assert_eq!(
                out.get_pixel(x, y + layout.band).0,
                [100, 100, 100],
                "({x}, {y})"
            );
        }
        assert_eq!(overlay_size(3000, 1500), (1024, 512));
    }

    /// A 100-pixel image opened alone must be readable at 100 %: its overlay is scaled up
    /// and its caption set at 16 pixels or more, inside the picture.
    #[test]
    fn small_images_get_an_overlay_with_legible_text() {
        for (w, h) in [(100, 100), (224, 224), (64, 48)] {
            let layout = Layout::of(w, h);
            assert_eq!(layout.width.max(layout.height), MIN_SIDE, "{w}×{h}");
            assert!(layout.text >= 16, "{w}×{h}: {layout:?}");
        }
        assert_eq!(overlay_size(100, 50), (384, 192));
        let image = RgbImage::from_pixel(100, 100, image::Rgb([100, 100, 100]));
        let caption = "a class with a very long name indeed 0.93 (true class, Grad-CAM++)";
        let out = overlay(&image, &[0.0; 4], (2, 2), None, caption, Colormap::Jet).unwrap();
        let layout = Layout::of(100, 100);
        assert_eq!(out.dimensions(), layout.canvas());
        // The caption's ink ends before the right edge of the band.
        let inked = |x: u32| (0..layout.band).any(|y| out.get_pixel(x, y).0 != [255, 255, 255]);
        let (canvas_w, _) = layout.canvas();
        assert!(inked(10), "caption drawn");
        assert!(!inked(canvas_w - 1), "caption fits");
    }

    #[test]
    fn display_upsampling_is_round_not_diamond() {
        // One hot cell in the middle of a 5 × 5 map, shown at 100 × 100: the half-maximum
        // contour lies as far out along the diagonal as along the axes (bilinear's lies
        // about 30 % closer on the diagonal: a diamond).
        let mut map = vec![0.0; 25];
        map[12] = 1.0;
        let radius = |up: &[f32], dx: f64, dy: f64| {
            let peak = up[50 * 100 + 50];
            (0..60)
                .map(f64::from)
                .find(|&r| {
                    let (x, y) = (
                        (50.0 + r * dx).round() as usize,
                        (50.0 + r * dy).round() as usize,
                    );
                    up[y * 100 + x] < peak / 2.0
                })
                .unwrap()
        };
        let smooth = smooth_upsample(&map, 5, 5, 100, 100);
        let diagonal = std::f64::consts::FRAC_1_SQRT_2;
        let ratio = radius(&smooth, diagonal, diagonal) / radius(&smooth, 1.0, 0.0);
        assert!(
            (0.85..1.15).contains(&ratio),
            "smooth: diagonal/axis {ratio}"
        );
        let bilinear = upsample(&map, 5, 5, 100, 100);
        let ratio = radius(&bilinear, diagonal, diagonal) / radius(&bilinear, 1.0, 0.0);
        assert!(ratio < 0.85, "bilinear: diagonal/axis {ratio}");
    }

    #[test]
    fn colour_maps_run_from_their_low_to_their_high_colour() {
        assert_eq!(Colormap::Viridis.rgb(0.0), [68, 1, 84]);
        assert_eq!(Colormap::Viridis.rgb(1.0), [253, 231, 37]);
        let [r, g, b] = Colormap::Turbo.rgb(0.0);
        assert!(
            u32::from(r) + u32::from(g) + u32::from(b) < 120,
            "turbo starts dark"
        );
        let [r, g, b] = Colormap::Turbo.rgb(0.15);
        assert!(b > r && b > g, "then blue");
        let [r, g, b] = Colormap::Turbo.rgb(1.0);
        assert!(r > g && r > b, "turbo ends dark red");
        assert_eq!(Colormap::Jet.rgb(0.5), jet(0.5));
    }
}
