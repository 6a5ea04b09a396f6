//! The font every figure uses, bundled (DejaVu Sans, Bitstream Vera licence) so PNGs render
//! text the same on machines without system fonts.

use std::sync::Once;

use plotters::style::FontStyle;

/// The family name figures ask for.
pub const FAMILY: &str = "sans-serif";

/// The bundled font file (DejaVu Sans), for renderers that load fonts themselves.
pub const BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

static REGISTERED: Once = Once::new();

/// Makes [`FAMILY`] resolve to the bundled font (once per process).
pub fn register() {
    REGISTERED.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            assert!(
                plotters::style::register_font(FAMILY, style, BYTES).is_ok(),
                "the bundled font parses"
            );
        }
    });
}
