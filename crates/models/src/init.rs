//! Weight initialisers with the conventions of the frameworks whose layers they stand for.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use ortl_onnx::Tensor;

/// torchvision's ResNet convolution init: `kaiming_normal_(mode="fan_out",
/// nonlinearity="relu")`, std = sqrt(2 / (out_channels · kh · kw)).
pub fn he_normal_fan_out(dims: &[i64], rng: &mut ChaCha8Rng) -> Tensor {
    let fan_out = dims[0] * dims[2..].iter().product::<i64>();
    let normal = Normal::new(0.0, (2.0 / fan_out as f64).sqrt() as f32).expect("positive std");
    let n = dims.iter().product::<i64>() as usize;
    Tensor::f32(dims, (0..n).map(|_| normal.sample(rng)).collect())
}

/// Keras' `glorot_uniform` for a Dense kernel stored as `[out, in]`: U(±sqrt(6/(in+out))).
pub fn glorot_uniform(out_features: usize, in_features: usize, rng: &mut ChaCha8Rng) -> Tensor {
    let limit = (6.0 / (in_features + out_features) as f32).sqrt();
    let values = (0..out_features * in_features)
        .map(|_| rng.random_range(-limit..=limit))
        .collect();
    Tensor::f32(&[out_features as i64, in_features as i64], values)
}

/// PyTorch's `nn.Linear` default: weights and bias U(±1/sqrt(in)).
pub fn torch_linear(
    out_features: usize,
    in_features: usize,
    rng: &mut ChaCha8Rng,
) -> (Tensor, Tensor) {
    let bound = 1.0 / (in_features as f32).sqrt();
    let mut draw = |n: usize| {
        (0..n)
            .map(|_| rng.random_range(-bound..=bound))
            .collect::<Vec<f32>>()
    };
    let weight = Tensor::f32(
        &[out_features as i64, in_features as i64],
        draw(out_features * in_features),
    );
    let bias = Tensor::f32(&[out_features as i64], draw(out_features));
    (weight, bias)
}

pub fn filled(dims: &[i64], value: f32) -> Tensor {
    let n = dims.iter().product::<i64>() as usize;
    Tensor::f32(dims, vec![value; n])
}
