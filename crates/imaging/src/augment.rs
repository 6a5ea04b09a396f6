//! Random augmentation with the semantics and parameters of Keras' preprocessing layers, so
//! the tutorial's `Sequential([RandomFlip, RandomRotation, RandomContrast, RandomZoom,
//! RandomTranslation])` has an exact counterpart. Layers run in that order, each resampling
//! the previous layer's float output as Keras does; brightness, not in the tutorial, runs last.
//!
//! Randomness: every (seed, image, variant) gets its own generator, and every layer its own
//! stream of it, so a result never depends on thread count, scheduling or which other
//! layers are switched on.

use clap::ValueEnum;
use std::f32::consts::PI;
use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::FloatImage;
use crate::sample::{Affine, FillMode, Interpolation, warp};

/// Keras `RandomFlip` modes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Flip {
    #[default]
    None,
    Horizontal,
    Vertical,
    #[value(name = "horizontal_and_vertical")]
    HorizontalAndVertical,
}

impl fmt::Display for Flip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            self.to_possible_value()
                .expect("every variant has a name")
                .get_name(),
        )
    }
}

/// The augmentation pipeline. Zero factors switch a layer off. Factors are Keras' own:
/// symmetric ranges `[-f, f]` around no change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AugmentSpec {
    pub flip: Flip,
    /// Rotation as a fraction of a full turn: 0.2 draws angles in ±72°.
    pub rotate: f32,
    /// Contrast factor drawn in `[max(0, 1 - f), 1 + f]`; pixels move away from (or
    /// towards) each channel's mean by that factor, then are clipped to 0..=255.
    pub contrast: f32,
    /// Zoom height and width factors: each axis scales by `1 + u`, `u` in `[-f, f]`;
    /// positive `u` zooms out, as in Keras.
    pub zoom: (f32, f32),
    /// Translation as fractions of the height and width.
    pub translate: (f32, f32),
    /// Brightness: adds `u · 255`, `u` in `[-f, f]`, then clips.
    pub brightness: f32,
    pub fill: FillMode,
    /// Value outside the image with `fill: constant`.
    pub fill_value: f32,
    pub interpolation: Interpolation,
}

impl Default for AugmentSpec {
    fn default() -> Self {
        Self {
            flip: Flip::None,
            rotate: 0.0,
            contrast: 0.0,
            zoom: (0.0, 0.0),
            translate: (0.0, 0.0),
            brightness: 0.0,
            fill: FillMode::Reflect,
            fill_value: 0.0,
            interpolation: Interpolation::Bilinear,
        }
    }
}

/// Independent streams per layer, so switching one layer on leaves the others' draws alone.
#[derive(Clone, Copy)]
enum Layer {
    Flip = 1,
    Rotate,
    Contrast,
    Zoom,
    Translate,
    Brightness,
}

/// The chest X-ray tutorial's augmentation: `RandomFlip("horizontal_and_vertical")`,
/// `RandomRotation(0.2)`, `RandomContrast(1.0)`, `RandomZoom(0.5, 0.2)`,
/// `RandomTranslation(0.3, 0.5)`, reflect fill, bilinear.
pub fn tutorial() -> AugmentSpec {
    AugmentSpec {
        flip: Flip::HorizontalAndVertical,
        rotate: 0.2,
        contrast: 1.0,
        zoom: (0.5, 0.2),
        translate: (0.3, 0.5),
        ..AugmentSpec::default()
    }
}

impl AugmentSpec {
    /// True when no layer changes anything.
    pub fn is_identity(&self) -> bool {
        self.flip == Flip::None
            && self.rotate == 0.0
            && self.contrast == 0.0
            && self.zoom == (0.0, 0.0)
            && self.translate == (0.0, 0.0)
            && self.brightness == 0.0
    }

    /// Checks every factor is finite and in the range Keras accepts.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            ("rotate", self.rotate, 1.0),
            ("contrast", self.contrast, f32::MAX),
            ("zoom height", self.zoom.0, 1.0),
            ("zoom width", self.zoom.1, 1.0),
            ("translate height", self.translate.0, 1.0),
            ("translate width", self.translate.1, 1.0),
            ("brightness", self.brightness, 1.0),
        ];
        for (name, value, max) in checks {
            if !value.is_finite() || value < 0.0 || value > max {
                return Err(format!("{name} factor {value} must be between 0 and {max}"));
            }
        }
        if self.zoom.0 >= 1.0 || self.zoom.1 >= 1.0 {
            return Err(
                "zoom factors must be below 1 (a zoom of 1 + u with u = -1 is empty)".into(),
            );
        }
        Ok(())
    }

    /// Applies the pipeline to `image`, drawing from the generator for `seed`.
    pub fn apply(&self, image: &FloatImage, seed: u64) -> FloatImage {
        let rng = |layer: Layer| ChaCha8Rng::seed_from_u64(mix(seed, layer as u64));
        let (h, w) = (image.height, image.width);
        let mut out = image.clone();

        if self.flip != Flip::None {
            let mut rng = rng(Layer::Flip);
            let horizontal = matches!(self.flip, Flip::Horizontal | Flip::HorizontalAndVertical)
                && rng.random_bool(0.5);
            let vertical = matches!(self.flip, Flip::Vertical | Flip::HorizontalAndVertical)
                && rng.random_bool(0.5);
            out = flip(&out, horizontal, vertical);
        }
        if self.rotate > 0.0 {
            let angle = symmetric(&mut rng(Layer::Rotate), self.rotate) * 2.0 * PI;
            out = self.warp(&out, &rotation(angle, h, w));
        }
        if self.contrast > 0.0 {
            let lower = (1.0 - self.contrast).max(0.0);
            let factor = rng(Layer::Contrast).random_range(lower..=1.0 + self.contrast);
            out = adjust_contrast(&out, factor);
        }
        if self.zoom != (0.0, 0.0) {
            let mut rng = rng(Layer::Zoom);
            let zy = 1.0 + symmetric(&mut rng, self.zoom.0);
            let zx = 1.0 + symmetric(&mut rng, self.zoom.1);
            let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
            out = self.warp(&out, &[zx, 0.0, cx * (1.0 - zx), 0.0, zy, cy * (1.0 - zy)]);
        }
        if self.translate != (0.0, 0.0) {
            let mut rng = rng(Layer::Translate);
            let dy = symmetric(&mut rng, self.translate.0) * h as f32;
            let dx = symmetric(&mut rng, self.translate.1) * w as f32;
            out = self.warp(&out, &[1.0, 0.0, -dx, 0.0, 1.0, -dy]);
        }
        if self.brightness > 0.0 {
            let delta = symmetric(&mut rng(Layer::Brightness), self.brightness) * 255.0;
            out.data
                .iter_mut()
                .for_each(|v| *v = (*v + delta).clamp(0.0, 255.0));
        }
        out
    }

    fn warp(&self, image: &FloatImage, map: &Affine) -> FloatImage {
        warp(
            image,
            map,
            image.height,
            image.width,
            self.fill,
            self.fill_value,
            self.interpolation,
        )
    }
}

/// Output→input map of a rotation by `angle` about the image centre ((w−1)/2, (h−1)/2), as
/// Keras' `RandomRotation` builds it.
fn rotation(angle: f32, h: usize, w: usize) -> Affine {
    let (sin, cos) = angle.sin_cos();
    let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
    [
        cos,
        -sin,
        cx - cos * cx + sin * cy,
        sin,
        cos,
        cy - sin * cx - cos * cy,
    ]
}

/// A draw from `[-factor, factor]`.
fn symmetric(rng: &mut ChaCha8Rng, factor: f32) -> f32 {
    if factor == 0.0 {
        0.0
    } else {
        rng.random_range(-factor..=factor)
    }
}

/// Mirrors the image; exact (no resampling).
pub fn flip(image: &FloatImage, horizontal: bool, vertical: bool) -> FloatImage {
    let (h, w) = (image.height, image.width);
    let mut out = FloatImage::zeros_like(h, w, image.channels);
    for y in 0..h {
        let sy = if vertical { h - 1 - y } else { y };
        for x in 0..w {
            let sx = if horizontal { w - 1 - x } else { x };
            for c in 0..image.channels {
                out.set(y, x, c, image.at(sy, sx, c));
            }
        }
    }
    out
}

/// `tf.image.adjust_contrast` followed by Keras' clip to the value range.
pub fn adjust_contrast(image: &FloatImage, factor: f32) -> FloatImage {
    let means = image.channel_means();
    let mut out = image.clone();
    let channels = out.channels;
    for pixel in out.data.chunks_exact_mut(channels) {
        for (c, value) in pixel.iter_mut().enumerate() {
            *value = ((*value - means[c]) * factor + means[c]).clamp(0.0, 255.0);
        }
    }
    out
}

/// SplitMix64 finaliser: decorrelates nearby integers into generator seeds.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator seed of one stored variant: a function of the run's seed, the image's
/// identity (its path as written in the manifest) and the variant number only.
pub fn variant_seed(seed: u64, image_key: &str, variant: u32) -> u64 {
    // FNV-1a: stable across Rust releases, unlike std's DefaultHasher.
    let key = image_key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    mix(mix(seed, key), u64::from(variant))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 5×4 image whose red channel numbers the pixels, with one bright marker.
    fn pattern() -> FloatImage {
        let mut img = FloatImage::zeros(4, 5);
        for y in 0..4 {
            for x in 0..5 {
                img.set(y, x, 0, (y * 5 + x) as f32);
                img.set(y, x, 1, 100.0);
            }
        }
        img
    }

    #[test]
    fn flips_are_exact_mirrors() {
        let img = pattern();
        let h = flip(&img, true, false);
        assert_eq!(h.at(0, 0, 0), 4.0);
        assert_eq!(h.at(3, 4, 0), 15.0);
        let v = flip(&img, false, true);
        assert_eq!(v.at(0, 0, 0), 15.0);
        assert_eq!(flip(&flip(&img, true, true), true, true), img);
    }

    #[test]
    fn random_flip_over_many_seeds_gives_all_four_and_only_them() {
        let img = pattern();
        let spec = AugmentSpec {
            flip: Flip::HorizontalAndVertical,
            ..Default::default()
        };
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let out = spec.apply(&img, seed);
            let corner = out.at(0, 0, 0) as u32;
            assert!(
                [0, 4, 15, 19].contains(&corner),
                "corner {corner} is not a flip"
            );
            seen.insert(corner);
        }
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn quarter_turn_rotation_is_exact_on_a_square() {
        // A rotation factor of exactly 0.25 cannot be forced through the random draw, so
        // check the map the layer builds at ±90°: every pixel must land on a pixel centre.
        let mut img = FloatImage::zeros(3, 3);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = (i / 3) as f32;
        }
        let map = rotation(PI / 2.0, 3, 3);
        let spec = AugmentSpec::default();
        let out = spec.warp(&img, &map);
        // Output (y=0, x=0) reads input x = -0 + 2 = 2, y = 0: pixel index 2.
        assert!((out.at(0, 0, 0) - 2.0).abs() < 1e-4, "{}", out.at(0, 0, 0));
        // Output (y=0, x=2) reads input (x=2, y=2): index 8.
        assert!((out.at(0, 2, 0) - 8.0).abs() < 1e-4);
    }

    #[test]
    fn translation_moves_a_marker_by_the_drawn_shift() {
        let mut img = FloatImage::zeros(20, 20);
        img.set(10, 10, 0, 255.0);
        let spec = AugmentSpec {
            translate: (0.25, 0.25),
            fill: FillMode::Constant,
            ..Default::default()
        };
        for seed in 0..8 {
            let out = spec.apply(&img, seed);
            let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, Layer::Translate as u64));
            let dy = symmetric(&mut rng, 0.25) * 20.0;
            let dx = symmetric(&mut rng, 0.25) * 20.0;
            let (y, x) = brightest(&out);
            assert!(
                (y as f32 - (10.0 + dy)).abs() <= 1.0,
                "seed {seed}: y {y} vs {dy}"
            );
            assert!(
                (x as f32 - (10.0 + dx)).abs() <= 1.0,
                "seed {seed}: x {x} vs {dx}"
            );
        }
    }

    #[test]
    fn zoom_moves_an_off_centre_marker_towards_the_centre_when_zooming_out() {
        let mut img = FloatImage::zeros(21, 21);
        img.set(10, 14, 0, 255.0); // 4 px right of centre: stays in frame at zoom 0.5
        let spec = AugmentSpec {
            zoom: (0.0, 0.5),
            fill: FillMode::Constant,
            ..Default::default()
        };
        for seed in 0..8 {
            let out = spec.apply(&img, seed);
            let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, Layer::Zoom as u64));
            let _zy = symmetric(&mut rng, 0.0);
            let zx = 1.0 + symmetric(&mut rng, 0.5);
            let (y, x) = brightest(&out);
            assert_eq!(y, 10);
            let expected = 10.0 + 4.0 / zx;
            assert!(
                (x as f32 - expected).abs() <= 1.0,
                "seed {seed}: x {x}, expected {expected}"
            );
        }
    }

    #[test]
    fn contrast_keeps_channel_means_when_nothing_clips() {
        let img = pattern();
        let out = adjust_contrast(&img, 0.5);
        let (before, after) = (img.channel_means(), out.channel_means());
        for c in 0..3 {
            assert!((before[c] - after[c]).abs() < 1e-3);
        }
        // Distances from the mean scale by the factor.
        assert!((out.at(3, 4, 0) - (9.5 + 9.5 * 0.5)).abs() < 1e-4);
    }

    /// Grey images keep one channel through every layer; the result is exactly that of
    /// their RGB copy, for every layer and fill mode.
    #[test]
    fn grey_augments_exactly_as_its_rgb_copy() {
        let grey = FloatImage {
            height: 17,
            width: 23,
            channels: 1,
            data: (0..17 * 23).map(|i| ((i * 37) % 256) as f32).collect(),
        };
        let rgb = FloatImage {
            channels: 3,
            data: grey.data.iter().flat_map(|&v| [v; 3]).collect(),
            ..grey.clone()
        };
        let mut specs = vec![tutorial()];
        for fill in [FillMode::Constant, FillMode::Nearest, FillMode::Wrap] {
            specs.push(AugmentSpec {
                fill,
                fill_value: 40.0,
                interpolation: Interpolation::Nearest,
                brightness: 0.2,
                ..tutorial()
            });
        }
        for spec in &specs {
            for seed in 0..20 {
                let (one, three) = (spec.apply(&grey, seed), spec.apply(&rgb, seed));
                assert_eq!(one.channels, 1);
                assert_eq!(one.to_u8(), three.to_u8(), "{spec:?} seed {seed}");
            }
        }
    }

    #[test]
    fn results_depend_only_on_seed() {
        let img = pattern();
        let spec = tutorial();
        assert_eq!(spec.apply(&img, 7), spec.apply(&img, 7));
        assert_ne!(spec.apply(&img, 7), spec.apply(&img, 8));
        assert_ne!(variant_seed(12, "a.png", 1), variant_seed(12, "a.png", 2));
        assert_ne!(variant_seed(12, "a.png", 1), variant_seed(12, "b.png", 1));
        assert_eq!(variant_seed(12, "a.png", 1), variant_seed(12, "a.png", 1));
    }

    #[test]
    fn validation_rejects_out_of_range_factors() {
        assert!(tutorial().validate().is_ok());
        let bad = AugmentSpec {
            zoom: (1.0, 0.0),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = AugmentSpec {
            rotate: f32::NAN,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }

    fn brightest(img: &FloatImage) -> (usize, usize) {
        let mut best = (0, 0, f32::MIN);
        for y in 0..img.height {
            for x in 0..img.width {
                if img.at(y, x, 0) > best.2 {
                    best = (y, x, img.at(y, x, 0));
                }
            }
        }
        (best.0, best.1)
    }
}
