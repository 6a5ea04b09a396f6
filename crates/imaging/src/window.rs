//! How stored sample values become 8-bit intensities: the window. Radiographs are stored
//! with 10 to 16 bits; models from ortl take 8. The window says which stored values map to
//! black and white, the way a radiologist's viewer does.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The intensity window applied while decoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Window {
    /// As the file says: 8-bit images unchanged; 16-bit PNG/TIFF scaled from the full
    /// 16-bit range (as Keras does); DICOM through its modality LUT and its first VOI LUT
    /// or window (stretched from its lowest to highest value when it has none).
    #[default]
    Auto,
    /// Each image stretched from its lowest to its highest value (after DICOM's modality
    /// LUT), whatever its bit depth.
    MinMax,
    /// A fixed window in stored units (after DICOM's modality LUT: Hounsfield units for
    /// CT), DICOM's linear function: `center - width/2` is black, `center + width/2` white.
    Fixed { center: f32, width: f32 },
}

impl Window {
    /// What `--help` lists.
    pub const HELP: &'static str = "auto, min-max, or CENTER,WIDTH (e.g. 2048,4096)";

    /// Maps one stored value to 0..=255 as f32 (before rounding) under a fixed window
    /// (DICOM PS3.3 C.11.2.1.2.1, LINEAR).
    pub fn linear(value: f32, center: f32, width: f32) -> f32 {
        let (c, w) = (center - 0.5, (width - 1.0).max(f32::MIN_POSITIVE));
        if value <= c - w / 2.0 {
            0.0
        } else if value > c + w / 2.0 {
            255.0
        } else {
            ((value - c) / w + 0.5) * 255.0
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Auto => f.write_str("auto"),
            Window::MinMax => f.write_str("min-max"),
            Window::Fixed { center, width } => write!(f, "{center},{width}"),
        }
    }
}

impl FromStr for Window {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("unknown window '{s}' (use {})", Self::HELP);
        match s {
            "auto" => Ok(Window::Auto),
            "min-max" => Ok(Window::MinMax),
            _ => {
                let (center, width) = s.split_once(',').ok_or_else(bad)?;
                let number = |v: &str| v.trim().parse::<f32>().ok().filter(|x| x.is_finite());
                let (center, width) = (
                    number(center).ok_or_else(bad)?,
                    number(width).ok_or_else(bad)?,
                );
                if width < 1.0 {
                    return Err(format!("window width {width} must be at least 1"));
                }
                Ok(Window::Fixed { center, width })
            }
        }
    }
}

impl From<Window> for String {
    fn from(window: Window) -> String {
        window.to_string()
    }
}

impl TryFrom<String> for Window {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// Maps `values` to 8 bits with a min-max stretch or a fixed window (not `Auto`, which
/// depends on the format), returning the lowest and highest value seen.
pub(crate) fn to_u8(values: &[f32], window: Window) -> (Vec<u8>, f32, f32) {
    let (low, high) = values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let map: Box<dyn Fn(f32) -> f32> = match window {
        Window::Fixed { center, width } => Box::new(move |v| Window::linear(v, center, width)),
        _ => Box::new(move |v| stretch(v, low, high)),
    };
    let out = values
        .iter()
        .map(|&v| map(v).round().clamp(0.0, 255.0) as u8)
        .collect();
    (out, low, high)
}

/// Maps `value` linearly from `low..=high` to 0..=255 as f32 (before rounding); a constant
/// image (`high <= low`) goes black.
pub(crate) fn stretch(value: f32, low: f32, high: f32) -> f32 {
    if high > low {
        (value - low) / (high - low) * 255.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_ones_say_what_is_accepted() {
        for window in [
            Window::Auto,
            Window::MinMax,
            Window::Fixed {
                center: 40.0,
                width: 400.0,
            },
        ] {
            assert_eq!(window.to_string().parse::<Window>().unwrap(), window);
        }
        assert_eq!(
            "-600, 1500".parse::<Window>().unwrap(),
            Window::Fixed {
                center: -600.0,
                width: 1500.0
            }
        );
        assert!(
            "wide"
                .parse::<Window>()
                .unwrap_err()
                .contains("CENTER,WIDTH")
        );
        assert!("40,0".parse::<Window>().unwrap_err().contains("at least 1"));
    }

    #[test]
    fn fixed_window_follows_dicom_linear() {
        // DICOM's example: center 2048, width 4096 maps 0 to black and 4095 to white.
        assert_eq!(Window::linear(0.0, 2048.0, 4096.0), 0.0);
        assert_eq!(Window::linear(4096.0, 2048.0, 4096.0), 255.0);
        let mid = Window::linear(2047.5, 2048.0, 4096.0);
        assert!((mid - 127.5).abs() < 1e-3, "{mid}");
        // Width 1 is a threshold at the center.
        assert_eq!(Window::linear(9.0, 10.0, 1.0), 0.0);
        assert_eq!(Window::linear(10.0, 10.0, 1.0), 255.0);
        assert_eq!(Window::linear(10.0, 10.5, 1.0), 0.0);
        assert_eq!(Window::linear(11.0, 10.5, 1.0), 255.0);
    }

    #[test]
    fn min_max_stretches_and_constant_images_go_black() {
        let (out, low, high) = to_u8(&[100.0, 1100.0, 600.0], Window::MinMax);
        assert_eq!((out, low, high), (vec![0, 255, 128], 100.0, 1100.0));
        assert_eq!(to_u8(&[7.0, 7.0], Window::MinMax).0, vec![0, 0]);
    }
}
