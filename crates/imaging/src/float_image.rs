//! A float image in height × width × channel order: the working form between resizing and
//! the final rounding to `uint8`, as Keras keeps images in float32 between layers. A grey
//! image keeps one channel throughout: every step treats channels alike, so its three RGB
//! channels would be equal, and it becomes three only when rounded to `uint8`.

use image::RgbImage;

#[derive(Clone, Debug, PartialEq)]
pub struct FloatImage {
    pub height: usize,
    pub width: usize,
    /// 3 (RGB) or 1 (grey, standing for three equal channels).
    pub channels: usize,
    /// `height * width * channels` values in 0..=255, row-major, channels last.
    pub data: Vec<f32>,
}

impl FloatImage {
    /// An RGB image of zeros.
    pub fn zeros(height: usize, width: usize) -> Self {
        Self::zeros_like(height, width, 3)
    }

    pub fn zeros_like(height: usize, width: usize, channels: usize) -> Self {
        Self {
            height,
            width,
            channels,
            data: vec![0.0; height * width * channels],
        }
    }

    pub fn from_rgb(image: &RgbImage) -> Self {
        Self {
            height: image.height() as usize,
            width: image.width() as usize,
            channels: 3,
            data: image.as_raw().iter().map(|&v| f32::from(v)).collect(),
        }
    }

    /// Channel `c` of pixel (y, x); any `c` below 3 reads the one channel of a grey image.
    #[inline]
    pub fn at(&self, y: usize, x: usize, c: usize) -> f32 {
        self.data[(y * self.width + x) * self.channels + c.min(self.channels - 1)]
    }

    #[inline]
    pub fn set(&mut self, y: usize, x: usize, c: usize, value: f32) {
        self.data[(y * self.width + x) * self.channels + c] = value;
    }

    /// Rounds to the nearest integer and clamps to 0..=255, into `out` (`height*width*3`,
    /// RGB: a grey image's channel is written three times).
    pub fn write_u8(&self, out: &mut [u8]) {
        assert_eq!(
            out.len(),
            self.height * self.width * 3,
            "destination size must match the image"
        );
        if self.channels == 3 {
            for (dst, &v) in out.iter_mut().zip(&self.data) {
                *dst = round_u8(v);
            }
        } else {
            for (dst, &v) in out.chunks_exact_mut(3).zip(&self.data) {
                dst.fill(round_u8(v));
            }
        }
    }

    pub fn to_u8(&self) -> Vec<u8> {
        let mut out = vec![0; self.height * self.width * 3];
        self.write_u8(&mut out);
        out
    }

    /// Per-channel mean over all pixels (a grey image's three are its one).
    pub fn channel_means(&self) -> [f32; 3] {
        let mut sums = [0f64; 3];
        for pixel in self.data.chunks_exact(self.channels) {
            for (c, sum) in sums.iter_mut().enumerate().take(self.channels) {
                *sum += f64::from(pixel[c]);
            }
        }
        let n = (self.height * self.width).max(1) as f64;
        let means = sums.map(|s| (s / n) as f32);
        if self.channels == 1 {
            [means[0]; 3]
        } else {
            means
        }
    }
}

/// `v.round().clamp(0.0, 255.0) as u8` (half away from zero) without the libm call `round`
/// compiles to on baseline x86-64: truncation and the exact fraction `v - trunc(v)`.
#[inline]
pub fn round_u8(v: f32) -> u8 {
    if v <= 0.0 {
        0
    } else if v >= 255.0 {
        255
    } else {
        let whole = v as u32;
        (whole + u32::from(v - whole as f32 >= 0.5)) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_u8_equals_round_then_clamp() {
        let reference = |v: f32| v.round().clamp(0.0, 255.0) as u8;
        for v in [
            f32::NAN,
            -1.0,
            -0.5,
            -0.0,
            0.49999997,
            0.5,
            1.5,
            2.5,
            254.5,
            254.49998,
            255.0,
            300.0,
        ] {
            assert_eq!(round_u8(v), reference(v), "{v}");
        }
        let mut v = -2.0f32;
        while v < 258.0 {
            assert_eq!(round_u8(v), reference(v), "{v}");
            v += 0.000_731;
        }
    }
}
