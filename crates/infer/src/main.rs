//! ortl-infer: classify images with a model from ortl-train, one row per image on stdout.

use std::io::{self, BufWriter};

use ortl_infer::{Args, Settings, Sink};

fn main() -> std::process::ExitCode {
    ortl_cli::main_with("ortl-infer", |args: Args| {
        let settings = Settings::resolve(&args)?;
        ortl_infer::run(
            settings,
            Sink {
                stdout: &mut BufWriter::new(io::stdout()),
                say: &mut |line| eprintln!("ortl-infer: {line}"),
            },
        )
    })
}
