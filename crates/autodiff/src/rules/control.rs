//! Control flow (If, Loop, Scan): ortl refuses it in imported graphs (`ortl_onnx::opset`)
//! and has no gradient for it.

use super::Gradient::{self, Missing};

/// Every operator of the family (`ortl_onnx::ops::control` lists them too) and its gradient.
pub(super) const GRADIENTS: &[(&str, Gradient)] =
    &[("If", Missing), ("Loop", Missing), ("Scan", Missing)];
