//! ortl-split: class folders, or a label table, to manifest.csv.

use ortl_split::{Args, Settings};

fn main() -> std::process::ExitCode {
    ortl_cli::main_with("ortl-split", |args: Args| {
        let settings = Settings::resolve(&args)?;
        ortl_cli::with_stdio("ortl-split", |sink| ortl_split::run(settings, sink))
    })
}
