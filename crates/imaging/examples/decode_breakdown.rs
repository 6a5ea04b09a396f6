//! Where a decoding-bound stage spends its time per image, on one thread: reading the file,
//! decoding it, the RGB expansion the old path paid for grey images, resizing, and the
//! tutorial's augmentation of the resized image (ortl-augment --preset tutorial).
//!
//! Usage: cargo run --release -p ortl-imaging --example decode_breakdown -- DIR [HxW] [N]
//! (bench/HISTORY.md has the figures for the benchmark's 512×512 grey PNGs).

use std::path::PathBuf;
use std::time::Instant;

use ortl_imaging::{DecodeOptions, Filter, decode, resize};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() >= 2, "usage: decode_breakdown DIR [HxW] [N]");
    let (height, width) = match args.get(2) {
        Some(size) => {
            let (h, w) = size
                .split_once('x')
                .ok_or_else(|| anyhow::anyhow!("size as HxW"))?;
            (h.parse()?, w.parse()?)
        }
        None => (100, 100),
    };
    let limit: usize = args.get(3).map(|n| n.parse()).transpose()?.unwrap_or(200);
    let mut files: Vec<PathBuf> = ortl_imaging::files::list_images(
        std::path::Path::new(&args[1]),
        &ortl_imaging::files::default_extensions(),
    )
    .map_err(|(dir, e)| anyhow::anyhow!("{}: {e}", dir.display()))?
    .files;
    files.truncate(limit);
    anyhow::ensure!(!files.is_empty(), "no images in {}", args[1]);
    let options = DecodeOptions::default();
    // Warm the page cache, then time each step over every file, twice; the second pass counts.
    for file in &files {
        std::fs::read(file)?;
    }
    let per_image = |step: &mut dyn FnMut(&PathBuf)| {
        let mut ms = 0.0;
        for _ in 0..2 {
            let start = Instant::now();
            files.iter().for_each(&mut *step);
            ms = start.elapsed().as_secs_f64() * 1e3 / files.len() as f64;
        }
        ms
    };
    let read = per_image(&mut |f| {
        std::hint::black_box(std::fs::read(f).unwrap());
    });
    let decoded = per_image(&mut |f| {
        std::hint::black_box(decode(f, options).unwrap());
    });
    let expanded = per_image(&mut |f| {
        let image = image::load_from_memory(&std::fs::read(f).unwrap()).unwrap();
        std::hint::black_box(image.to_rgb8());
    });
    let sample = decode(&files[0], options)?.pixels;
    let channels = sample.channels();
    let resized = per_image(&mut |_| {
        std::hint::black_box(resize(&sample, height, width, Filter::Bilinear).to_u8());
    });
    let rgb = sample.clone().into_rgb();
    let resized_rgb = per_image(&mut |_| {
        std::hint::black_box(resize(&rgb, height, width, Filter::Bilinear).to_u8());
    });
    let small = resize(&sample, height, width, Filter::Bilinear);
    let tutorial = ortl_imaging::augment::tutorial();
    let mut seed = 0;
    let augmented = per_image(&mut |_| {
        seed += 1;
        std::hint::black_box(tutorial.apply(&small, seed).to_u8());
    });
    println!(
        "{} images like {} ({}x{}, {channels} channel(s)), ms per image on one thread:",
        files.len(),
        files[0].display(),
        sample.width(),
        sample.height()
    );
    println!("  read the file                    {read:.3}");
    println!("  decode (ortl: grey kept grey)    {decoded:.3}");
    println!("  decode + to_rgb8 (the old path)  {expanded:.3}");
    println!("  resize to {height}x{width}, as decoded   {resized:.3}");
    println!("  resize to {height}x{width}, as RGB       {resized_rgb:.3}");
    println!("  augment (--preset tutorial)      {augmented:.3}");
    Ok(())
}
