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

/// Folds a coordinate into `0..len` by reflection about the edges (TensorFlow's `map_coord`
/// for `reflect`).
#[inline]
fn reflect(coord: f32, len: usize) -> f32 {
    let len_f = len as f32;
    if len <= 1 {
        return 0.0;
    }
    // Inside the image (most pixels of a warp) nothing folds.
    if (0.0..=len_f - 1.0).contains(&coord) {
        return coord;
    }
    let size2 = 2.0 * len_f;
    let mut c = coord;
    if c < 0.0 {
        c += size2 * trunc(-c / size2);
        c = if c < -len_f { c + size2 } else { -c - 1.0 };
    } else if c > len_f - 1.0 {
        c -= size2 * trunc(c / size2);
        if c >= len_f {
            c = size2 - c - 1.0;
        }
    }
    c.clamp(0.0, len_f - 1.0)
}

/// Folds coordinates into `0..len` as TensorFlow's `map_coord` does for each fill mode.
fn fold(coords: &mut [f32], len: usize, fill: FillMode) {
    let last = (len - 1) as f32;
    match fill {
        FillMode::Reflect => coords.iter_mut().for_each(|c| *c = reflect(*c, len)),
        FillMode::Wrap if len <= 1 => coords.fill(0.0),
        FillMode::Wrap => coords
            .iter_mut()
            .for_each(|c| *c = c.rem_euclid(len as f32).clamp(0.0, last)),
        FillMode::Nearest => coords.iter_mut().for_each(|c| *c = c.clamp(0.0, last)),
        FillMode::Constant => {}
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
    let mut out = FloatImage::zeros_like(out_height, out_width, input.channels);
    let sampler = Sampler::new(input, fill, fill_value);
    // One monomorphised loop per channel count and kernel: the per-pixel work is a few
    // multiplies, so a dynamic channel loop and a kernel match per pixel would dominate it.
    let bilinear = interpolation == Interpolation::Bilinear;
    match (input.channels, bilinear) {
        (1, true) => sampler.bilinear::<1>(map, &mut out),
        (1, false) => sampler.nearest::<1>(map, &mut out),
        (3, true) => sampler.bilinear::<3>(map, &mut out),
        (3, false) => sampler.nearest::<3>(map, &mut out),
        (channels, _) => unreachable!("a FloatImage has 1 or 3 channels, not {channels}"),
    }
    out
}

/// The input behind a first row and a first column of the fill value: every sample outside
/// the image reads from that frame, so no pixel asks which of its corners lie inside.
struct Sampler {
    height: usize,
    width: usize,
    fill: FillMode,
    /// `(height + 1) × (width + 1)` pixels; input pixel (y, x) is framed pixel (y+1, x+1).
    framed: Vec<f32>,
}

/// Where one axis of a bilinear sample reads: the framed indices of the pixels at
/// `floor(coord)` and one past it (0, the frame, where outside) and their weights.
#[derive(Clone, Copy, Default)]
struct Taps {
    low: usize,
    high: usize,
    low_weight: f32,
    high_weight: f32,
}

impl Sampler {
    fn new(input: &FloatImage, fill: FillMode, fill_value: f32) -> Self {
        let (h, w, c) = (input.height, input.width, input.channels);
        let framed_row = (w + 1) * c;
        let mut framed = vec![fill_value; (h + 1) * framed_row];
        for (src, dst) in input
            .data
            .chunks_exact(w * c)
            .zip(framed.chunks_exact_mut(framed_row).skip(1))
        {
            dst[c..].copy_from_slice(src);
        }
        Self {
            height: h,
            width: w,
            fill,
            framed,
        }
    }

    /// The input coordinate of every output pixel of row `oy`, folded by the fill mode.
    fn coordinates(&self, map: &Affine, oy: usize, xs: &mut [f32], ys: &mut [f32]) {
        for (ox, (x, y)) in xs.iter_mut().zip(ys.iter_mut()).enumerate() {
            (*x, *y) = source(map, ox, oy);
        }
        fold(xs, self.width, self.fill);
        fold(ys, self.height, self.fill);
    }

    #[inline]
    fn pixel<const C: usize>(&self, row: usize, col: usize) -> [f32; C] {
        let at = (row * (self.width + 1) + col) * C;
        self.framed[at..at + C].try_into().expect("C values")
    }

    fn nearest<const C: usize>(&self, map: &Affine, out: &mut FloatImage) {
        let (last_row, last_col) = ((self.height - 1) as u32, (self.width - 1) as u32);
        let (mut xs, mut ys) = (vec![0f32; out.width], vec![0f32; out.width]);
        for (oy, row) in out.data.chunks_exact_mut(out.width * C).enumerate() {
            self.coordinates(map, oy, &mut xs, &mut ys);
            for ((pixel, &x), &y) in row.chunks_exact_mut(C).zip(&xs).zip(&ys) {
                let row = framed_index(round(y) as i32, last_row);
                let col = framed_index(round(x) as i32, last_col);
                pixel.copy_from_slice(&self.pixel::<C>(row, col));
            }
        }
    }

    fn bilinear<const C: usize>(&self, map: &Affine, out: &mut FloatImage) {
        let (last_row, last_col) = ((self.height - 1) as u32, (self.width - 1) as u32);
        // A map without shear or rotation (zoom, translation) reads the same columns in every
        // row and the same rows in every column: `map[1]·y` is then one signed zero for all
        // y ≥ 0, so the per-row coordinates equal the per-pixel ones bit for bit.
        if map[1] == 0.0 && map[3] == 0.0 {
            let mut column_xs: Vec<f32> = (0..out.width).map(|ox| source(map, ox, 0).0).collect();
            fold(&mut column_xs, self.width, self.fill);
            let columns: Vec<Taps> = column_xs.iter().map(|&x| taps(x, last_col)).collect();
            let mut row_ys: Vec<f32> = (0..out.height).map(|oy| source(map, 0, oy).1).collect();
            fold(&mut row_ys, self.height, self.fill);
            for (row, &y) in out.data.chunks_exact_mut(out.width * C).zip(&row_ys) {
                let ty = taps(y, last_row);
                for (pixel, tx) in row.chunks_exact_mut(C).zip(&columns) {
                    self.blend::<C>(tx, &ty, pixel);
                }
            }
            return;
        }
        let (mut xs, mut ys) = (vec![0f32; out.width], vec![0f32; out.width]);
        let (mut x_taps, mut y_taps) = (
            vec![Taps::default(); out.width],
            vec![Taps::default(); out.width],
        );
        for (oy, row) in out.data.chunks_exact_mut(out.width * C).enumerate() {
            self.coordinates(map, oy, &mut xs, &mut ys);
            xs.iter()
                .zip(&mut x_taps)
                .for_each(|(&x, t)| *t = taps(x, last_col));
            ys.iter()
                .zip(&mut y_taps)
                .for_each(|(&y, t)| *t = taps(y, last_row));
            for ((pixel, tx), ty) in row.chunks_exact_mut(C).zip(&x_taps).zip(&y_taps) {
                self.blend::<C>(tx, ty, pixel);
            }
        }
    }

    /// One bilinear sample, in TensorFlow's order of operations.
    #[inline]
    fn blend<const C: usize>(&self, tx: &Taps, ty: &Taps, pixel: &mut [f32]) {
        let a = self.pixel::<C>(ty.low, tx.low);
        let b = self.pixel::<C>(ty.low, tx.high);
        let d = self.pixel::<C>(ty.high, tx.low);
        let e = self.pixel::<C>(ty.high, tx.high);
        for c in 0..C {
            let upper = tx.low_weight * a[c] + tx.high_weight * b[c];
            let lower = tx.low_weight * d[c] + tx.high_weight * e[c];
            pixel[c] = ty.low_weight * upper + ty.high_weight * lower;
        }
    }
}

/// Where output pixel (ox, oy) reads from: `map` applied to it.
#[inline]
fn source(map: &Affine, ox: usize, oy: usize) -> (f32, f32) {
    let (xf, yf) = (ox as f32, oy as f32);
    (
        map[0] * xf + map[1] * yf + map[2],
        map[3] * xf + map[4] * yf + map[5],
    )
}

/// The framed index of pixel `k` on an axis whose last pixel is `last`: `k + 1` inside, 0
/// (the frame of fill values) outside.
#[inline]
fn framed_index(k: i32, last: u32) -> usize {
    // A negative k wraps to beyond any image.
    if k as u32 <= last { k as usize + 1 } else { 0 }
}

/// The taps of `coord` on an axis whose last pixel is `last`.
#[inline]
fn taps(coord: f32, last: u32) -> Taps {
    // floor(coord) in integers and as a float, exact for |coord| < 2^31 (the conversion
    // saturates beyond, where every pixel is outside).
    let whole = coord as i32;
    let below = whole as f32 > coord;
    let low_index = whole.saturating_sub(i32::from(below));
    let low = if below {
        whole as f32 - 1.0
    } else {
        whole as f32
    };
    let high = low + 1.0;
    Taps {
        low: framed_index(low_index, last),
        high: framed_index(low_index.saturating_add(1), last),
        low_weight: high - coord,
        high_weight: coord - low,
    }
}

/// `f32::trunc` without the libm call, exact for every finite value: from 2^23 up every
/// `f32` is whole already.
#[inline]
fn trunc(x: f32) -> f32 {
    if x.abs() < 8_388_608.0 {
        (x as i32 as f32).copysign(x)
    } else {
        x
    }
}

/// `f32::round` (half away from zero) without the libm call, exact for |x| < 2^31.
#[inline]
fn round(x: f32) -> f32 {
    let whole = trunc(x);
    if (x - whole).abs() >= 0.5 {
        whole + x.signum()
    } else {
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold_one(coord: f32, len: usize, fill: FillMode) -> f32 {
        let mut coords = [coord];
        fold(&mut coords, len, fill);
        coords[0]
    }

    #[test]
    fn taps_read_floor_and_the_next_pixel_with_the_library_floor() {
        let mut x = -300.0f32;
        while x < 300.0 {
            let t = taps(x, 99);
            let low = x.floor();
            let index = |k: f32| {
                if (0.0..=99.0).contains(&k) {
                    k as usize + 1
                } else {
                    0
                }
            };
            assert_eq!((t.low, t.high), (index(low), index(low + 1.0)), "{x}");
            assert_eq!(t.low_weight.to_bits(), (low + 1.0 - x).to_bits(), "{x}");
            assert_eq!(t.high_weight.to_bits(), (x - low).to_bits(), "{x}");
            x += 0.0137;
        }
        for x in [1e6 + 0.5, -1e6 - 0.5] {
            assert_eq!(taps(x, 99).high_weight, 0.5, "{x}");
        }
        // Beyond i32 the weights are no longer exact, but both taps read the frame.
        for x in [
            1e6 + 0.5,
            -1e6 - 0.5,
            3e9,
            -3e9,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ] {
            let t = taps(x, 99);
            assert_eq!((t.low, t.high), (0, 0), "{x}");
        }
    }

    #[test]
    fn reflect_matches_tensorflow_folding() {
        // len 4: ... 1 0 | 0 1 2 3 | 3 2 ...
        let f = |c| fold_one(c, 4, FillMode::Reflect);
        assert_eq!(
            [f(-1.0), f(-2.0), f(-4.0), f(4.0), f(5.0), f(8.0)],
            [0.0, 1.0, 3.0, 3.0, 2.0, 0.0]
        );
        assert_eq!(f(1.5), 1.5);
    }

    #[test]
    fn wrap_and_nearest_fold_as_documented() {
        assert_eq!(fold_one(-1.0, 4, FillMode::Wrap), 3.0);
        assert_eq!(fold_one(5.0, 4, FillMode::Wrap), 1.0);
        assert_eq!(fold_one(-3.0, 4, FillMode::Nearest), 0.0);
        assert_eq!(fold_one(9.0, 4, FillMode::Nearest), 3.0);
        assert_eq!(fold_one(-3.0, 4, FillMode::Constant), -3.0);
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

    /// TensorFlow's per-pixel formula written out directly, with the library's rounding.
    fn reference_warp(
        input: &FloatImage,
        map: &Affine,
        fill: FillMode,
        fill_value: f32,
        interpolation: Interpolation,
    ) -> FloatImage {
        let (h, w) = (input.height, input.width);
        let fold = |coord: f32, len: usize| -> f32 {
            let len_f = len as f32;
            match fill {
                FillMode::Reflect if len > 1 => {
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
                FillMode::Wrap if len > 1 => coord.rem_euclid(len_f).clamp(0.0, len_f - 1.0),
                FillMode::Reflect | FillMode::Wrap => 0.0,
                FillMode::Nearest => coord.clamp(0.0, len_f - 1.0),
                FillMode::Constant => coord,
            }
        };
        let read = |y: f32, x: f32, c: usize| {
            if y < 0.0 || x < 0.0 || y > (h - 1) as f32 || x > (w - 1) as f32 {
                fill_value
            } else {
                input.at(y as usize, x as usize, c)
            }
        };
        let mut out = FloatImage::zeros_like(h, w, input.channels);
        for oy in 0..h {
            for ox in 0..w {
                let (xf, yf) = (ox as f32, oy as f32);
                let x = fold(map[0] * xf + map[1] * yf + map[2], w);
                let y = fold(map[3] * xf + map[4] * yf + map[5], h);
                for c in 0..input.channels {
                    let value = match interpolation {
                        Interpolation::Nearest => read(y.round(), x.round(), c),
                        Interpolation::Bilinear => {
                            let (y0, x0) = (y.floor(), x.floor());
                            let (y1, x1) = (y0 + 1.0, x0 + 1.0);
                            let upper = (x1 - x) * read(y0, x0, c) + (x - x0) * read(y0, x1, c);
                            let lower = (x1 - x) * read(y1, x0, c) + (x - x0) * read(y1, x1, c);
                            (y1 - y) * upper + (y - y0) * lower
                        }
                    };
                    out.set(oy, ox, c, value);
                }
            }
        }
        out
    }

    #[test]
    fn warp_equals_the_direct_formula_bit_for_bit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for case in 0..200 {
            let channels = if case % 2 == 0 { 1 } else { 3 };
            let (h, w) = (rng.random_range(1..12), rng.random_range(1..12));
            let mut input = FloatImage::zeros_like(h, w, channels);
            input
                .data
                .iter_mut()
                .for_each(|v| *v = rng.random_range(0.0..255.0));
            // Rotations, zooms in and out and shifts up to three image sizes away.
            let angle: f32 = rng.random_range(-4.0..4.0);
            let zoom: f32 = rng.random_range(0.3..3.0);
            // Every third map has no rotation, with the signed zeros a rotation by 0 gives.
            let (sin, cos) = if case % 3 == 0 {
                (0.0, 1.0)
            } else {
                angle.sin_cos()
            };
            let map = [
                zoom * cos,
                -zoom * sin,
                rng.random_range(-3.0..3.0) * w as f32,
                zoom * sin,
                zoom * cos,
                rng.random_range(-3.0..3.0) * h as f32,
            ];
            let fill = [
                FillMode::Reflect,
                FillMode::Constant,
                FillMode::Nearest,
                FillMode::Wrap,
            ][case % 4];
            for interpolation in [Interpolation::Bilinear, Interpolation::Nearest] {
                let fast = warp(&input, &map, h, w, fill, 17.0, interpolation);
                let direct = reference_warp(&input, &map, fill, 17.0, interpolation);
                let bits =
                    |img: &FloatImage| img.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&fast),
                    bits(&direct),
                    "case {case}: {fill:?} {interpolation:?} {map:?}"
                );
            }
        }
    }

    #[test]
    fn trunc_and_round_equal_the_library_ones() {
        let mut x = -300.0f32;
        while x < 300.0 {
            assert_eq!(trunc(x).to_bits(), x.trunc().to_bits(), "{x}");
            assert_eq!(round(x).to_bits(), x.round().to_bits(), "{x}");
            x += 0.0625 / 3.0;
        }
        for x in [
            -0.5f32,
            0.5,
            -2.5,
            2.5,
            -0.0,
            1e7 + 1.0,
            -3e9,
            f32::MAX,
            f32::NAN,
        ] {
            assert_eq!(trunc(x).to_bits(), x.trunc().to_bits(), "{x}");
            if x.abs() < 2e9 || x.is_nan() {
                assert_eq!(round(x).to_bits(), x.round().to_bits(), "{x}");
            }
        }
    }

    #[test]
    fn compose_applies_inner_first() {
        let shift: Affine = [1., 0., 2., 0., 1., 0.];
        let scale: Affine = [3., 0., 0., 0., 3., 0.];
        // scale then shift: x -> 3x + 2
        assert_eq!(compose(&shift, &scale), [3., 0., 2., 0., 3., 0.]);
    }
}
