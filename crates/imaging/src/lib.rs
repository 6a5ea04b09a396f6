//! Pixels in, pixels out: everything ortl does to an image before a model sees it. One crate
//! so that `ortl-augment` (training tensors) and `ortl-infer` (new images) decode and resize
//! identically, and a validation image gets the same probabilities in both.

pub mod augment;
pub mod decode;
pub mod dicom;
pub mod files;
pub mod float_image;
pub mod resize;
pub mod sample;
pub mod window;

pub use augment::{AugmentSpec, Flip, variant_seed};
pub use decode::{
    DecodeError, DecodeLimits, DecodeOptions, Decoded, Intensity, Pixels, decode, decode_rgb, probe,
};
pub use float_image::FloatImage;
pub use resize::{Filter, resize};
pub use sample::{FillMode, Interpolation};
pub use window::Window;

/// The `image` crate, re-exported so callers name the same types.
pub use image;
