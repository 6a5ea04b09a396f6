//! The baseline of ortl-infer's throughput benchmark (bench/infer.sh): the bare ONNX Runtime
//! session on pre-decoded uint8 batches, no file I/O.
//!
//! Usage: bare_session MODEL BATCH BATCHES [THREADS]

use ndarray::{ArrayD, IxDyn};
use ortl_infer::ModelInfo;
use ortl_runtime::{Feed, SessionOptions};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() >= 4,
        "usage: bare_session MODEL BATCH BATCHES [THREADS]"
    );
    let (info, model) = ModelInfo::read(std::path::Path::new(&args[1]), None, None)?;
    let (batch, batches): (usize, usize) = (args[2].parse()?, args[3].parse()?);
    let threads = args.get(4).map(|t| t.parse()).transpose()?;
    let runtime = ortl_runtime::init(None)?;
    let options = SessionOptions {
        threads,
        ..Default::default()
    };
    let mut session = runtime.load(&options, &ortl_onnx::io::to_bytes(&model))?;
    let pixels = ArrayD::from_shape_fn(IxDyn(&[batch, info.height, info.width, 3]), |i| {
        ((i[1] * 7 + i[2] * 13 + i[3]) % 251) as u8
    });
    ortl_runtime::run(
        &mut session,
        vec![(info.input.as_str(), Feed::U8(pixels.clone()))],
    )?;
    let start = std::time::Instant::now();
    for _ in 0..batches {
        ortl_runtime::run(
            &mut session,
            vec![(info.input.as_str(), Feed::U8(pixels.clone()))],
        )?;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!("{:.1}", (batch * batches) as f64 / seconds);
    Ok(())
}
