//! Pixels for people: the font every figure uses ([`font`]) and Grad-CAM heatmap overlays
//! ([`overlay`]). Kept apart from the CAM graphs (`ortl-explain`) so the report can draw
//! without linking the graph and gradient crates.

pub mod font;
pub mod overlay;
