//! Progress on stderr, never stdout, and only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A counting bar labelled `label`; hidden when stderr is not a terminal.
pub fn bar(total: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} eta {eta}",
        )
        .expect("progress template is valid"),
    );
    bar.set_prefix(label.to_string());
    bar
}
