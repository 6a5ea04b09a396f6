//! Explanations of ortl classifiers: Grad-CAM and Grad-CAM++ heatmaps computed by a graph
//! that `ortl-autodiff` derives from the classifier itself ([`cam`]), and their rendering
//! as overlays a reader can check at a glance ([`overlay`]).

pub mod cam;
pub mod font;
pub mod overlay;

pub use cam::{Method, Target, cam_model, expose_features, locate, one_hot};
