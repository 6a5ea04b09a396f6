//! `ortl_infer::run` called as the binary calls it, with a sink that keeps what it printed:
//! the rows streamed to `-`, batch by batch, and every line meant for stderr.

use std::io::{self, Write};

use clap::Parser;
use ortl_cli::UsageError;
use ortl_fixtures::Workdir;
use ortl_infer::{Args, Settings, Sink};
use ortl_models::classifier::keys;
use ortl_models::{ClassifierSpec, Head, ResNetConfig, classifier};

/// A data set of `per_class` images per class and an untrained 32×32 classifier for it.
fn setup(per_class: u32) -> Workdir {
    let wd = Workdir::new();
    wd.dataset("data", per_class);
    let backbone = ortl_models::resnet::resnet(&ResNetConfig::tiny(), 1);
    let spec = ClassifierSpec {
        task: ortl_manifest::Task::SingleLabel,
        classes: vec!["normal".into(), "tuberculosis".into()],
        height: 32,
        width: 32,
        head: Head::Linear { dropout: 0.0 },
        seed: 1,
    };
    let (mut model, _) = classifier(&backbone, &spec);
    model
        .metadata
        .insert(keys::RESIZE.into(), "bilinear".into());
    ortl_onnx::io::save(&model, &wd.join("model.onnx")).unwrap();
    wd
}

/// What reached stdout, with the number of lines on it at each flush.
#[derive(Default)]
struct Stdout {
    bytes: Vec<u8>,
    lines_at_flush: Vec<usize>,
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        let lines = self.bytes.iter().filter(|&&b| b == b'\n').count();
        self.lines_at_flush.push(lines);
        Ok(())
    }
}

/// Resolves `args` (after `--model MODEL --threads 1`) and runs them; the outcome, stdout
/// and the lines said.
fn infer(wd: &Workdir, args: &[&str]) -> (anyhow::Result<()>, Stdout, Vec<String>) {
    let model = wd.join("model.onnx");
    let mut argv = vec!["ortl-infer", "--model", model.to_str().unwrap()];
    argv.extend(["--threads", "1"]);
    argv.extend(args);
    let mut stdout = Stdout::default();
    let mut said = Vec::new();
    let outcome = Settings::resolve(&Args::try_parse_from(argv).unwrap()).and_then(|settings| {
        ortl_infer::run(
            settings,
            Sink {
                stdout: &mut stdout,
                say: &mut |line| said.push(line.to_string()),
            },
        )
    });
    (outcome, stdout, said)
}

#[test]
fn rows_stream_to_the_sink_batch_by_batch_and_the_summary_is_said() {
    let wd = setup(3);
    let data = wd.join("data");
    let (outcome, stdout, said) = infer(&wd, &[data.to_str().unwrap(), "--batch", "2"]);
    outcome.unwrap();
    let text = String::from_utf8(stdout.bytes).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "path,label,class,predicted,predicted_class,p_normal,p_tuberculosis,split,model,model_epoch"
    );
    assert_eq!(lines.len(), 1 + 6);
    let first = data.join("normal/normal-000.png");
    assert!(
        lines[1].starts_with(&format!("{},0,normal,", first.display())),
        "{}",
        lines[1]
    );
    // Each batch is flushed as it is classified: the header and two rows, then two more…
    assert_eq!(stdout.lines_at_flush[..3], [3, 5, 7]);
    assert_eq!(said, ["6 images classified, 0 skipped"]);
}

#[test]
fn an_output_file_takes_the_rows_and_unreadable_images_are_said() {
    let wd = setup(2);
    std::fs::write(wd.join("data/normal/broken.png"), "not a png").unwrap();
    let out = wd.join("preds.tsv");
    let (outcome, stdout, said) = infer(
        &wd,
        &[
            wd.join("data").to_str().unwrap(),
            "--format",
            "tsv",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    outcome.unwrap();
    assert!(stdout.bytes.is_empty(), "rows went to the file");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().lines().count(),
        1 + 4
    );
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(
        said[0].starts_with("warning: skipped ") && said[0].contains("broken.png"),
        "{said:?}"
    );
    assert_eq!(said[1], "4 images classified, 1 skipped");

    let (outcome, _, _) = infer(&wd, &[wd.join("data").to_str().unwrap(), "--strict"]);
    let err = outcome.unwrap_err();
    assert!(
        !err.is::<UsageError>(),
        "an unreadable image is a runtime failure"
    );
    assert!(err.to_string().ends_with("(--strict)"), "{err}");
}

#[test]
fn mistakes_in_the_command_are_usage_errors_before_any_row() {
    let wd = setup(1);
    let missing = wd.join("nowhere.png");
    let (outcome, stdout, said) = infer(&wd, &[missing.to_str().unwrap()]);
    let err = outcome.unwrap_err();
    assert!(err.is::<UsageError>(), "{err}");
    assert_eq!(
        err.to_string(),
        format!("{}: no such file or folder", missing.display())
    );
    assert!(stdout.bytes.is_empty() && said.is_empty());

    let (outcome, _, _) = infer(&wd, &[]);
    assert_eq!(
        outcome.unwrap_err().to_string(),
        "no images given: pass files, folders, --manifest, or - for paths on stdin"
    );
    let data = wd.join("data");
    let (outcome, stdout, _) = infer(&wd, &[data.to_str().unwrap(), "--decode-threads", "0"]);
    let err = outcome.unwrap_err();
    assert!(err.is::<UsageError>(), "{err}");
    assert_eq!(err.to_string(), "--decode-threads must be at least 1");
    assert!(stdout.bytes.is_empty());
}
