//! ortl-weights: fetch pretrained weights ahead of a run, and list the model cache.

use std::io::Write;

use anyhow::Result;
use clap::{Parser, Subcommand};
use ortl_cli::usage;
use ortl_hub::spec::{source_file, source_pin};
use ortl_hub::{Hub, HubFile, Pin, cache};
use ortl_models::pretrained::{self, IMAGENET};

/// Pretrained weights from a model hub (Hugging Face's protocol and cache), for machines
/// that train without network: fetch what a run will need where there is network, copy
/// the cache folder, and `ortl-train --weights imagenet` finds it there.
///
/// The cache is HF_HOME/hub (default ~/.cache/huggingface/hub, shared with Python's
/// huggingface_hub) or HF_HUB_CACHE; HF_ENDPOINT names a mirror; HF_HUB_OFFLINE=1 forbids
/// the network; HF_TOKEN opens gated repositories.
///
/// Examples:
///     ortl-weights fetch resnet50 densenet121     # their ImageNet weights
///     ortl-weights fetch --all                    # every built-in family's
///     ortl-weights fetch hf:timm/resnet50.tv2_in1k hf:org/repo@v1.0:model.onnx
///     ortl-weights list                           # what is cached, and its hashes
///     ortl-weights sources                        # where each family's weights come from
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Download into the cache (verified) what `--weights imagenet` for these built-in
    /// backbones, or these hub files, will need; print one line each: name, repository,
    /// commit, file, bytes, sha256, pin, path.
    Fetch {
        /// Built-in backbone names (their ImageNet weights) or hf:ORG/REPO[@REVISION][:FILE].
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
        /// Every built-in family's ImageNet weights.
        #[arg(long, conflicts_with = "names")]
        all: bool,
    },
    /// The model files in the cache: repository, commit, file, bytes, sha256 and, for
    /// ortl's ImageNet sources, which backbone and whether the file is the one ortl pinned.
    List,
    /// ortl's ImageNet sources: for each built-in family, the repository, revision, file,
    /// SHA-256 where ortl pins it, input normalisation and rename map.
    Sources,
}

fn main() -> std::process::ExitCode {
    ortl_cli::main_with("ortl-weights", run)
}

fn run(args: Args) -> Result<()> {
    let hub = Hub::from_env("ortl-weights");
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.command {
        Command::Fetch { names, all } => {
            let names: Vec<String> = if all {
                IMAGENET.iter().map(|s| s.backbone.clone()).collect()
            } else {
                names
            };
            // Every name is checked before the first download starts.
            let wanted = names
                .iter()
                .map(|name| wanted(name))
                .collect::<Result<Vec<_>>>()?;
            writeln!(out, "name\trepo\tcommit\tfile\tbytes\tsha256\tpin\tpath")?;
            // One failure does not stop the others; the exit status says there was one.
            let mut failed = 0;
            for (name, file, pin) in wanted {
                match hub.fetch(&file, pin, &name) {
                    Ok(fetched) => writeln!(
                        out,
                        "{name}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        file.repo,
                        fetched.commit,
                        file.file,
                        fetched.size,
                        fetched.sha256,
                        if fetched.pinned {
                            "pinned by ortl"
                        } else {
                            "not pinned by ortl"
                        },
                        fetched.path.display()
                    )?,
                    Err(e) => {
                        eprintln!("ortl-weights: {e}");
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} of {} not fetched (above)", names.len());
            }
        }
        Command::List => {
            writeln!(out, "backbone\trepo\tcommit\tfile\tbytes\tsha256\tpin")?;
            for cached in cache::list(hub.cache_dir())? {
                let source = IMAGENET
                    .iter()
                    .find(|s| s.repo == cached.repo && s.file == cached.file);
                let pin = match source.and_then(|s| s.sha256.as_deref()) {
                    Some(pinned) if pinned == cached.sha256 => "pinned by ortl",
                    Some(_) => "differs from ortl's pin",
                    None => "not pinned by ortl",
                };
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{}\t{pin}",
                    source.map_or("-", |s| s.backbone.as_str()),
                    cached.repo,
                    cached.commit,
                    cached.file,
                    cached.size,
                    cached.sha256,
                )?;
            }
        }
        Command::Sources => {
            writeln!(
                out,
                "backbone\trepo\trevision\tfile\tsha256\tnormalization\trename\tweights"
            )?;
            for s in IMAGENET.iter() {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    s.backbone,
                    s.repo,
                    s.revision.as_deref().unwrap_or("main"),
                    s.file,
                    s.sha256
                        .as_deref()
                        .unwrap_or("not pinned: checked against the hub's hash"),
                    s.normalization,
                    s.rename_map.as_deref().unwrap_or("-"),
                    s.weights
                )?;
            }
        }
    }
    Ok(())
}

/// A name on the command line as what to fetch and what it must be.
fn wanted(name: &str) -> Result<(String, HubFile, Pin<'static>)> {
    if name.starts_with("hf:") {
        let file = HubFile::parse(name, Some("model.safetensors")).map_err(usage)?;
        return Ok((name.to_string(), file, Pin::default()));
    }
    let canonical = ortl_models::zoo::canonical(name).unwrap_or(name);
    let source = pretrained::imagenet(canonical).ok_or_else(|| {
        usage(format!(
            "'{name}' is neither a built-in backbone with ImageNet weights ({}) nor hf:ORG/REPO[@REVISION][:FILE]",
            pretrained::imagenet_backbones()
        ))
    })?;
    Ok((
        canonical.to_string(),
        source_file(source),
        source_pin(source),
    ))
}
