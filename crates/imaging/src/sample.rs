//! Resampling through an affine map with TensorFlow's `ImageProjectiveTransformV3`
//! semantics, which every Keras geometric augmentation layer (rotation, zoom, translation)
//! uses: each output pixel `(x, y)` reads the input at `(a·x + b·y + c, d·x + e·y + f)`,
//! the coordinate is first folded into the image by the fill mode, then interpolated.

use serde::{Deserialize, Serialize};

use crate::FloatImage;

/// What lies outside the input image (Keras `fill_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FillMode {
    /// `d c b a | a b c d | d c b a`: mirrored about the edge of the last pixel (Keras default).
    #[default]
    Reflect,
    /// `k k k k | a b c d | k k k k` with k = the fill value.
    Constant,
    /// `a a a a | a b c d | d d d d`.
    Nearest,
    /// `a b c d | a b c d | a b c d`.
    Wrap,
}

/// How samples between pixel centres are read (Keras `interpolation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    #[default]
    Bilinear,
    Nearest,
}

/// Output→input coordinate map: `x_in = m[0]x + m[1]y + m[2]`, `y_in = m[3]x + m[4]y + m[5]`.
pub type Affine = [f32; 6];

/// Composition `outer ∘ inner`: apply `inner` to output coordinates, then `outer`.
pub fn compose(outer: &Affine, inner: &Affine) -> Affine {
    let [a, b, c, d, e, f] = *outer;
    let [p, q, r, s, t, u] = *inner;
    [
        a * p + b * s,
        a * q + b * t,
        a * r + b * u + c,
        d * p + e * s,
        d * q + e * t,
        d * r + e * u + f,
    ]
}

/// Folds a coordinate into `0..len` as TensorFlow's `map_coord` does for each fill mode.
#[inline]
fn map_coord(coord: f32, len: usize, fill: FillMode) -> f32 {
    let len_f = len as f32;
    match fill {
        FillMode::Reflect => {
            if len <= 1 {
                return 0.0;
            }
            let size2 = 2.0 * len_f;
            let mut c = coord;
            if c < 0.0 {
                c += size2 * (-c / size2).trunc();
                c = if c < -len_f { c + size2 } else { -c - 1.0 };
            } else if c > len_f - 1.0 {
                c -= size2 * (c / size2).trunc();
                if c >= len_f {
                    c = size2 - c - 1.0;
                }
            }
            c.clamp(0.0, len_f - 1.0)
        }
        FillMode::Wrap => {
            if len <= 1 {
                return 0.0;
            }
            let c = coord.rem_euclid(len_f);
            c.clamp(0.0, len_f - 1.0)
        }
        FillMode::Nearest => coord.clamp(0.0, len_f - 1.0),
        FillMode::Constant => coord,
    }
}

/// Samples `input` through `map` into a new image of the given size.
pub fn warp(
    input: &FloatImage,
    map: &Affine,
    out_height: usize,
    out_width: usize,
    fill: FillMode,
    fill_value: f32,
    interpolation: Interpolation,
) -> FloatImage {
    let channels = input.channels;
    let mut out = FloatImage::zeros_like(out_height, out_width, channels);
    let (h, w) = (input.height, input.width);
    let (h_max, w_max) = ((h - 1) as f32, (w - 1) as f32);
    let read = |y: f32, x: f32, c: usize| -> f32 {
        if y < 0.0 || x < 0.0 || y > (h - 1) as f32 || x > (w - 1) as f32 {
            fill_value
        } else {
            input.at(y as usize, x as usize, c)
        }
    };
    for oy in 0..out_height {
        for ox in 0..out_width {
            let (xf, yf) = (ox as f32, oy as f32);
            let x = map_coord(map[0] * xf + map[1] * yf + map[2], w, fill);
            let y = map_coord(map[3] * xf + map[4] * yf + map[5], h, fill);
            // Coordinates are rounded once per pixel, not once per channel.
            match interpolation {
                Interpolation::Nearest => {
                    let (y, x) = (y.round(), x.round());
                    for c in 0..channels {
                        out.set(oy, ox, c, read(y, x, c));
                    }
                }
                Interpolation::Bilinear => {
                    let (y0, x0) = (floor(y), floor(x));
                    let (y1, x1) = (y0 + 1.0, x0 + 1.0);
                    // Which corners lie inside (the others read the fill value), decided
                    // once for every channel.
                    let (top, bottom) = (!(y0 < 0.0 || y0 > h_max), !(y1 < 0.0 || y1 > h_max));
                    let (left, right) = (!(x0 < 0.0 || x0 > w_max), !(x1 < 0.0 || x1 > w_max));
                    let (row0, row1) = (y0 as usize * w, y1 as usize * w);
                    let (col0, col1) = (x0 as usize, x1 as usize);
                    let data = &input.data;
                    let at = |inside: bool, row: usize, col: usize, c: usize| {
                        if inside {
                            data[(row + col) * channels + c]
                        } else {
                            fill_value
                        }
                    };
                    for c in 0..channels {
                        let a = at(top && left, row0, col0, c);
                        let b = at(top && right, row0, col1, c);
                        let d = at(bottom && left, row1, col0, c);
                        let e = at(bottom && right, row1, col1, c);
                        let upper = (x1 - x) * a + (x - x0) * b;
                        let lower = (x1 - x) * d + (x - x0) * e;
                        out.set(oy, ox, c, (y1 - y) * upper + (y - y0) * lower);
                    }
                }
            }
        }
    }
    out
}

/// `f32::floor` without the libm call it compiles to on baseline x86-64 (no SSE4.1), exact
/// for every coordinate an image can have (|x| < 2^31).
#[inline]
fn floor(x: f32) -> f32 {
    let truncated = x as i32 as f32;
    if truncated > x {
        truncated - 1.0
    } else {
        truncated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_equals_the_library_floor() {
        for x in [
            -3.5f32,
            -1.0,
            -0.25,
            -0.0,
            0.0,
            0.75,
            1.0,
            99.999,
            1e6 + 0.5,
            -1e6 - 0.5,
        ] {
            assert_eq!(floor(x), x.floor(), "{x}");
        }
        let mut x = -300.0f32;
        while x < 300.0 {
            assert_eq!(floor(x), x.floor(), "{x}");
            x += 0.0137;
        }
    }

    #[test]
    fn reflect_matches_tensorflow_folding() {
        // len 4: ... 1 0 | 0 1 2 3 | 3 2 ...
        let f = |c| map_coord(c, 4, FillMode::Reflect);
        assert_eq!(
            [f(-1.0), f(-2.0), f(-4.0), f(4.0), f(5.0), f(8.0)],
            [0.0, 1.0, 3.0, 3.0, 2.0, 0.0]
        );
        assert_eq!(f(1.5), 1.5);
    }

    #[test]
    fn wrap_and_nearest_fold_as_documented() {
        assert_eq!(map_coord(-1.0, 4, FillMode::Wrap), 3.0);
        assert_eq!(map_coord(5.0, 4, FillMode::Wrap), 1.0);
        assert_eq!(map_coord(-3.0, 4, FillMode::Nearest), 0.0);
        assert_eq!(map_coord(9.0, 4, FillMode::Nearest), 3.0);
        assert_eq!(map_coord(-3.0, 4, FillMode::Constant), -3.0);
    }

    #[test]
    fn identity_warp_is_exact_and_half_shift_averages() {
        let mut img = FloatImage::zeros(2, 2);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = i as f32;
        }
        let same = warp(
            &img,
            &[1., 0., 0., 0., 1., 0.],
            2,
            2,
            FillMode::Reflect,
            0.,
            Interpolation::Bilinear,
        );
        assert_eq!(same, img);
        let half = warp(
            &img,
            &[1., 0., 0.5, 0., 1., 0.],
            2,
            2,
            FillMode::Nearest,
            0.,
            Interpolation::Bilinear,
        );
        // Pixel (0,0) reads halfway between (0,0) and (0,1): channel 0 values 0 and 3.
        assert!((half.at(0, 0, 0) - 1.5).abs() < 1e-6);
    }

    #[test]
    fn compose_applies_inner_first() {
        let shift: Affine = [1., 0., 2., 0., 1., 0.];
        let scale: Affine = [3., 0., 0., 0., 3., 0.];
        // scale then shift: x -> 3x + 2
        assert_eq!(compose(&shift, &scale), [3., 0., 2., 0., 3., 0.]);
    }
}
