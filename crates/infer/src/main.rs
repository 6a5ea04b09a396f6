//! ortl-infer: classify images with a model from ortl-train, one row per image on stdout.

use ortl_infer::{Args, Settings};

fn main() -> std::process::ExitCode {
    ortl_cli::main_with("ortl-infer", |args: Args| {
        let settings = Settings::resolve(&args)?;
        ortl_cli::with_stdio("ortl-infer", |sink| ortl_infer::run(settings, sink))
    })
}
