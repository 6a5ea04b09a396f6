//! `ortl-infer --cam` on a vision transformer: the tiny exported ViT
//! ([`ortl_models::exports::vit`]) with an ortl head gets a heatmap from its patch tokens,
//! not the uniform map of its pooled embedding.

use ndarray::Array2;
use ndarray_npy::ReadNpyExt;
use ortl_fixtures::Workdir;
use ortl_fixtures::workdir::run;
use ortl_models::exports::{self, TokenHead};
use ortl_models::{ClassifierSpec, Head, classifier, import::cut};
use std::fs;

const BIN: &str = env!("CARGO_BIN_EXE_ortl-infer");
const SIZE: usize = exports::VIT_SIZE as usize;

#[test]
fn a_vit_classifier_is_explained_by_its_patch_tokens() {
    let wd = Workdir::new();
    let export = exports::vit(TokenHead::ClassToken, 5, 3);
    let export = ortl_onnx::io::from_bytes(&ortl_onnx::io::to_bytes(&export), None).unwrap();
    let spec = ClassifierSpec {
        task: ortl_manifest::Task::SingleLabel,
        classes: vec!["normal".into(), "tuberculosis".into()],
        height: SIZE,
        width: SIZE,
        head: Head::Linear { dropout: 0.0 },
        seed: 3,
    };
    let (model, _) = classifier(&cut(export, "vit", None).unwrap(), &spec);
    ortl_onnx::io::save(&model, &wd.join("model.onnx")).unwrap();
    let image = image::RgbImage::from_fn(48, 40, |x, y| {
        let v = ((x * 37 + y * 11) % 200) as u8 + if x > 24 { 50 } else { 0 };
        image::Rgb([v, v / 2, 255 - v])
    });
    image.save(wd.join("a.png")).unwrap();
    // Grad-CAM, and the class token's attention (whose map is the same for every class:
    // a labelled image the model gets wrong gets no second one).
    for method in ["gradcam", "attention"] {
        let (code, _, stderr) = run(wd.command(BIN).args([
            "--model",
            "model.onnx",
            "a.png",
            "--cam",
            "cams",
            "--cam-method",
            method,
            "--force",
        ]));
        assert_eq!(code, 0, "{method}: {stderr}");
        let heat = Array2::<f32>::read_npy(fs::File::open(wd.join("cams/a.npy")).unwrap()).unwrap();
        assert_eq!(
            heat.shape(),
            [SIZE, SIZE],
            "{method}: raw map at the model's input size"
        );
        let (low, high) = heat
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        assert!(high > low, "{method}: a uniform map: {heat:?}");
    }
}
