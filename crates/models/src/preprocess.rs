//! Preprocessing inside the model: `uint8 [N,H,W,3]` RGB in, the backbone's float tensor
//! out. Carrying it in the graph means a model file classifies raw pixels by itself, and the
//! classic mistake — feeding a backbone the wrong `preprocess_input` — cannot happen.

use clap::ValueEnum;
use std::fmt;

use ortl_onnx::{DataType, GraphBuilder, Tensor};
use serde::{Deserialize, Serialize};

use crate::Layout;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Normalization {
    /// torchvision / ONNX model zoo: x/255, minus mean (0.485, 0.456, 0.406), divided by
    /// std (0.229, 0.224, 0.225), RGB.
    #[value(name = "imagenet")]
    ImageNet,
    /// Keras `resnet50.preprocess_input` ("caffe"): RGB→BGR, minus (103.939, 116.779,
    /// 123.68), no scaling.
    Caffe,
    /// x/255, in [0, 1].
    Unit,
    /// Keras "tf" mode (Inception, MobileNet): x/127.5 − 1, in [−1, 1].
    Symmetric,
}

impl Normalization {
    /// Channel order, and per-channel (offset, divisor) applied to 0..255 values as
    /// `(x − offset) / divisor`, in that channel order.
    fn affine(self) -> (bool, [f32; 3], [f32; 3]) {
        match self {
            Normalization::ImageNet => (
                false,
                [0.485 * 255.0, 0.456 * 255.0, 0.406 * 255.0],
                [0.229 * 255.0, 0.224 * 255.0, 0.225 * 255.0],
            ),
            Normalization::Caffe => (true, [103.939, 116.779, 123.68], [1.0; 3]),
            Normalization::Unit => (false, [0.0; 3], [255.0; 3]),
            Normalization::Symmetric => (false, [127.5; 3], [127.5; 3]),
        }
    }

    /// The reference: what the graph computes, for one RGB pixel, in output channel order.
    pub fn apply(self, rgb: [u8; 3]) -> [f32; 3] {
        let (bgr, offset, divisor) = self.affine();
        let ordered = if bgr { [rgb[2], rgb[1], rgb[0]] } else { rgb };
        std::array::from_fn(|c| (f32::from(ordered[c]) - offset[c]) / divisor[c])
    }
}

impl fmt::Display for Normalization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            self.to_possible_value()
                .expect("every variant has a name")
                .get_name(),
        )
    }
}

/// Adds the preprocessing of `image` (`uint8 [N,H,W,3]`) and returns the float tensor in
/// `layout`.
pub fn preprocess(
    b: &mut GraphBuilder,
    image: &str,
    normalization: Normalization,
    layout: Layout,
) -> String {
    let (bgr, offset, divisor) = normalization.affine();
    b.scoped("preprocess", |b| {
        let mut x = b.cast(image, DataType::Float);
        if bgr {
            let order = b.constant(Tensor::i64s(&[2, 1, 0]));
            x = b.gather(&x, &order, 3);
        }
        let offset = b.constant(Tensor::f32(&[1, 1, 1, 3], offset.to_vec()));
        let divisor = b.constant(Tensor::f32(&[1, 1, 1, 3], divisor.to_vec()));
        x = b.sub(&x, &offset);
        x = b.div(&x, &divisor);
        if layout == Layout::Nchw {
            x = b.transpose(&x, &[0, 3, 1, 2]);
        }
        x
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values() {
        let [r, g, b] = Normalization::ImageNet.apply([255, 0, 128]);
        assert!((r - (1.0 - 0.485) / 0.229).abs() < 1e-5);
        assert!((g - (-0.456 / 0.224)).abs() < 1e-5);
        assert!((b - (128.0 / 255.0 - 0.406) / 0.225).abs() < 1e-5);
        // Caffe: BGR order, mean subtracted.
        assert_eq!(
            Normalization::Caffe.apply([10, 20, 30]),
            [30.0 - 103.939, 20.0 - 116.779, 10.0 - 123.68]
        );
        assert_eq!(Normalization::Symmetric.apply([0, 255, 0])[1], 1.0);
        // The flag spelling, the metadata spelling and serde's are one.
        for &normalization in Normalization::value_variants() {
            let name = normalization.to_string();
            assert_eq!(Normalization::from_str(&name, false), Ok(normalization));
            assert_eq!(
                serde_json::to_string(&normalization).unwrap(),
                format!("\"{name}\"")
            );
        }
    }
}
