//! The models ortl trains, as ONNX graphs: a [`Backbone`] (built-in ResNet, MobileNetV2,
//! VGG19, DenseNet, EfficientNet-B0, Inception-v3, Inception-ResNet-v2 — see [`zoo`] — or
//! an imported pretrained file cut at its pooled features), a [`Head`], and the
//! preprocessing that turns
//! `uint8 [N,H,W,3]` images into what the backbone expects, assembled by [`classifier`] into
//! one self-contained model file.

pub mod backbone;
pub mod classifier;
pub mod densenet;
pub mod efficientnet;
pub mod exports;
pub mod heads;
pub mod import;
pub mod inception;
pub mod inception_resnet;
pub mod init;
pub mod layers;
pub mod mobilenet;
pub mod preprocess;
pub mod pretrained;
pub mod resnet;
pub mod vgg;
pub mod weights;
pub mod zoo;

pub use backbone::{Backbone, Layout, Weights};
pub use classifier::{ClassifierSpec, classifier};
pub use heads::{Activation, Head};
pub use import::{ImportError, TokenPool, import};
pub use preprocess::Normalization;
pub use resnet::ResNetConfig;
