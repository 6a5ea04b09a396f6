//! ortl-report: predictions (and training history) to metrics, plots and a report. The
//! command line and the work live in the library: this parses, resolves, runs and prints.

use anyhow::Result;
use ortl_report::Settings;
use ortl_report::args::Args;

fn main() -> std::process::ExitCode {
    ortl_cli::main_with("ortl-report", |args: Args| -> Result<()> {
        let settings = Settings::resolve(&args)?;
        let done = ortl_report::run(&settings, std::io::stdout())?;
        if let Some(evaluated) = done.evaluated {
            eprintln!("ortl-report: evaluated {evaluated}");
        }
        eprintln!("ortl-report: wrote {}", done.page.display());
        Ok(())
    })
}
