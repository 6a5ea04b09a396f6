//! ortl-split: class folders, or a label table, to manifest.csv.

use std::io::{self, BufWriter};

use ortl_split::{Args, Settings, Sink};

fn main() -> std::process::ExitCode {
    ortl_cli::main_with("ortl-split", |args: Args| {
        let settings = Settings::resolve(&args)?;
        ortl_split::run(
            settings,
            Sink {
                stdout: &mut BufWriter::new(io::stdout()),
                say: &mut |line| eprintln!("ortl-split: {line}"),
            },
        )
    })
}
