//! `ortl-infer --cam`: heatmaps of a hand-built classifier whose "bright" class is decided
//! by image brightness, on images that are dark except for a bright patch in one corner.

use ortl_onnx::{builder::Conv, builder::Gemm};
use std::fs;

use ndarray::Array2;
use ndarray_npy::ReadNpyExt;
use ortl_fixtures::Workdir;
use ortl_fixtures::workdir::run;
use ortl_models::classifier::keys;
use ortl_onnx::{DataType, Dim, GraphBuilder, Model, Tensor};

const BIN: &str = env!("CARGO_BIN_EXE_ortl-infer");
const SIZE: i64 = 16;

/// image → brightness (a 3×3 mean filter) = features → GAP → Gemm → softmax over
/// [dark, bright]: the bright score grows with the mean brightness.
fn brightness_model() -> Model {
    let mut b = GraphBuilder::new("brightness");
    let n = Dim::Symbolic("N".into());
    let image = b.input(
        "image",
        DataType::Uint8,
        vec![n.clone(), Dim::Fixed(SIZE), Dim::Fixed(SIZE), Dim::Fixed(3)],
    );
    let x = b.cast(&image, DataType::Float);
    let x = b.transpose(&x, &[0, 3, 1, 2]);
    let w = b.param(
        "conv.weight",
        Tensor::f32(&[1, 3, 3, 3], vec![1.0 / (27.0 * 255.0); 27]),
    );
    let padded = Conv {
        pads: Some(vec![1; 4]),
        ..Conv::default()
    };
    let features = b.conv(&x, &w, None, &padded);
    let pooled = b.global_average_pool(&features);
    let flat = b.flatten(&pooled, 1);
    let fc = b.param("fc.weight", Tensor::f32(&[2, 1], vec![-10.0, 10.0]));
    let bias = b.param("fc.bias", Tensor::f32(&[2], vec![1.0, 0.0]));
    let logits = b.gemm(&flat, &fc, Some(&bias), &Gemm::B_TRANSPOSED);
    let p = b.softmax(&logits, -1);
    b.output(&p, DataType::Float, vec![n, Dim::Fixed(2)]);
    let mut model = Model::new(b.finish());
    model
        .metadata
        .insert(keys::CLASSES.into(), r#"["dark","bright"]"#.into());
    model
}

/// A 64×48 dark image with a bright 16×12 patch in the top-right corner.
fn corner_image(path: &std::path::Path) {
    let image = image::RgbImage::from_fn(64, 48, |x, y| {
        if x >= 48 && y < 12 {
            image::Rgb([250, 250, 250])
        } else {
            image::Rgb([20, 20, 20])
        }
    });
    image.save(path).unwrap();
}

fn setup() -> Workdir {
    let wd = Workdir::new();
    ortl_onnx::io::save(&brightness_model(), &wd.join("model.onnx")).unwrap();
    fs::create_dir_all(wd.join("data/bright")).unwrap();
    corner_image(&wd.join("data/bright/a.png"));
    corner_image(&wd.join("b.png"));
    wd
}

#[test]
fn heatmap_peaks_at_the_bright_corner_with_overlays_at_the_image_size() {
    let wd = setup();
    for method in ["gradcam", "gradcam++"] {
        let (code, stdout, stderr) = run(wd
            .command(BIN)
            .args(["--model", "model.onnx", "data", "b.png", "--cam", "cams"])
            .args(["--cam-class", "bright", "--cam-method", method, "--force"]));
        assert_eq!(code, 0, "{stderr}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert!(
            lines[0].ends_with(",cam_path,cam_true_path,split,model,model_epoch"),
            "{}",
            lines[0]
        );
        assert_eq!(lines.len(), 3);
        for line in &lines[1..] {
            // Back from the end, past split,model,model_epoch.
            let mut last = line.rsplit(',').skip(3);
            assert_eq!(last.next(), Some(""), "a named class: no true-class map");
            let cam_path = last.next().unwrap();
            assert!(
                cam_path.starts_with("cams/") && cam_path.ends_with(".png"),
                "{line}"
            );
            let overlay = image::open(wd.join(cam_path)).unwrap();
            assert_eq!(
                (overlay.width(), overlay.height()),
                ortl_draw::overlay::Layout::of(64, 48).canvas(),
                "the image at its size, with the caption band above and the colour bar beside"
            );
            let npy = wd.join(&cam_path.replace(".png", ".npy"));
            let heat = Array2::<f32>::read_npy(fs::File::open(npy).unwrap()).unwrap();
            assert_eq!(heat.shape(), [16, 16], "raw map at the model's input size");
            let (argmax, _) = heat
                .indexed_iter()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap();
            assert!(
                argmax.0 < 4 && argmax.1 >= 12,
                "{method}: maximum at {argmax:?}, expected the top-right corner"
            );
        }
    }
    // Names keep the class folder, so same-named images elsewhere do not collide.
    let mut names: Vec<String> = fs::read_dir(wd.join("cams"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["b.npy", "b.png", "bright__a.npy", "bright__a.png"]);
}

#[test]
fn cam_class_true_skips_unlabelled_images_and_bad_options_are_usage_errors() {
    let wd = setup();
    let (code, stdout, stderr) = run(wd
        .command(BIN)
        .args(["--model", "model.onnx", "data", "b.png", "--cam", "cams"])
        .args(["--cam-class", "true", "--format", "jsonl"]));
    assert_eq!(code, 0, "{stderr}");
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows[0]["cam_path"], "cams/bright__a.png");
    assert!(rows[1]["cam_path"].is_null(), "b.png has no label");
    assert!(
        stderr.contains("1 images without a true label got no heatmap"),
        "{stderr}"
    );

    let (code, _, stderr) =
        run(wd
            .command(BIN)
            .args(["--model", "model.onnx", "b.png", "--cam", "cams"]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("cams already exists; pass --force"),
        "{stderr}"
    );
    let (code, _, stderr) = run(wd.command(BIN).args([
        "--model",
        "model.onnx",
        "b.png",
        "--cam",
        "new",
        "--cam-class",
        "grey",
    ]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--cam-class 'grey' is not one of the model's classes (dark, bright)"),
        "{stderr}"
    );
    let (code, _, stderr) = run(wd.command(BIN).args([
        "--model",
        "model.onnx",
        "b.png",
        "--cam",
        "new",
        "--cam-layer",
        "nope",
    ]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--cam-layer: layer 'nope' is not a rank-4 feature map"),
        "{stderr}"
    );
    assert!(!wd.join("new").exists(), "nothing written on a usage error");
}

/// `--cam-scale global`: every overlay on the largest value over all maps, so the image
/// holding that maximum looks as on its own scale and a dimmer one looks dimmer.
#[test]
fn a_global_scale_keeps_the_hottest_image_and_dims_the_others() {
    let wd = setup();
    // The same corner at a fifth of the brightness: a weaker map.
    let dim = image::RgbImage::from_fn(64, 48, |x, y| {
        if x >= 48 && y < 12 {
            image::Rgb([70, 70, 70])
        } else {
            image::Rgb([20, 20, 20])
        }
    });
    dim.save(wd.join("dim.png")).unwrap();
    for scale in ["image", "global"] {
        let (code, _, stderr) = run(wd.command(BIN).args([
            "--model",
            "model.onnx",
            "b.png",
            "dim.png",
            "--cam",
            scale,
            "--cam-class",
            "bright",
            "--cam-scale",
            scale,
        ]));
        assert_eq!(code, 0, "{stderr}");
    }
    let max = |file: &str| -> f32 {
        let heat = Array2::<f32>::read_npy(fs::File::open(wd.join(file)).unwrap()).unwrap();
        heat.iter().copied().fold(f32::MIN, f32::max)
    };
    assert!(
        max("image/dim.npy") < max("image/b.npy"),
        "the dim image's map is weaker"
    );
    let png = |file: &str| image::open(wd.join(file)).unwrap().to_rgb8();
    assert_eq!(
        png("image/b.png"),
        png("global/b.png"),
        "the hottest image is unchanged"
    );
    assert_ne!(
        png("image/dim.png"),
        png("global/dim.png"),
        "a weaker map is drawn dimmer"
    );
}

/// Explaining predictions, a labelled image the model gets wrong also gets the map of its
/// true class (NAME.true.png, the cam_true_path column): what the model saw of the finding
/// it missed.
#[test]
fn a_misclassified_image_also_gets_the_map_of_its_true_class() {
    let wd = setup();
    // Labelled bright (its folder) but black all over: predicted dark.
    image::RgbImage::from_pixel(64, 48, image::Rgb([0, 0, 0]))
        .save(wd.join("data/bright/c.png"))
        .unwrap();
    let (code, stdout, stderr) =
        run(wd
            .command(BIN)
            .args(["--model", "model.onnx", "data", "--cam", "cams"]));
    assert_eq!(code, 0, "{stderr}");
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let c = rows.iter().find(|r| r[0].ends_with("c.png")).unwrap();
    assert_eq!((c[2], c[4]), ("bright", "dark"), "misclassified: {c:?}");
    assert!(
        c[7].ends_with("bright__c.png") && c[8].ends_with("bright__c.true.png"),
        "{c:?}"
    );
    assert!(wd.join(c[8]).is_file() && wd.join(&c[8].replace(".png", ".npy")).is_file());
    let a = rows.iter().find(|r| r[0].ends_with("a.png")).unwrap();
    assert_eq!(
        (a[4], a[8]),
        ("bright", ""),
        "a correct prediction has no true-class map"
    );
}
