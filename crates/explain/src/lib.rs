//! Explanations of ortl classifiers: Grad-CAM and Grad-CAM++ heatmaps computed by a graph
//! that `ortl-autodiff` derives from the classifier itself, and a vision transformer's
//! class-token attention ([`cam`]); `ortl-draw` renders them as overlays a reader can check
//! at a glance.

pub mod cam;

pub use cam::{
    Attention, CamError, Method, Target, TokenGrid, attention_target, cam_model, expose_features,
    locate, one_hot,
};
