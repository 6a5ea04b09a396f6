//! The built-in backbones by name: the tutorial's ResNet50 and its comparison set, each in
//! torchvision's layout and parameter names, plus `-mini` members of each family (narrow
//! and shallow) for quick CPU runs such as `make compare` on the fixtures.

use crate::Backbone;
use crate::densenet::{DenseNetConfig, densenet};
use crate::efficientnet::efficientnet_b0;
use crate::inception::inception_v3;
use crate::inception_resnet::inception_resnet_v2;
use crate::mobilenet::mobilenet_v2;
use crate::resnet::{ResNetConfig, resnet};
use crate::vgg::vgg19;

/// Every name [`builtin`] knows, published networks first.
pub const NAMES: [&str; 19] = [
    "resnet50",
    "resnet101",
    "resnet26",
    "mobilenet_v2",
    "vgg19",
    "vgg19_bn",
    "densenet121",
    "densenet201",
    "efficientnet_b0",
    "inception_v3",
    "inception_resnet_v2",
    "resnet-mini",
    "mobilenet-mini",
    "vgg-mini",
    "densenet-mini",
    "efficientnet-mini",
    "inception-mini",
    "inception-resnet-mini",
    "resnet-tiny",
];

/// The built-in name `name` stands for, ignoring case and treating `-` and `_` alike
/// (`ResNet50`, `mobilenet-v2`, `Inception_Mini`).
pub fn canonical(name: &str) -> Option<&'static str> {
    let wanted = comparable(name);
    NAMES.iter().copied().find(|n| comparable(n) == wanted)
}

/// The built-in name nearest a misspelt one (at most 3 edits, case and `-`/`_` aside).
pub fn closest(name: &str) -> Option<&'static str> {
    let wanted = comparable(name);
    NAMES
        .iter()
        .copied()
        .map(|n| (strsim::levenshtein(&comparable(n), &wanted), n))
        .filter(|&(distance, _)| distance <= 3)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, n)| n)
}

fn comparable(name: &str) -> String {
    name.to_ascii_lowercase().replace('-', "_")
}

/// The backbone called `name`, with He-normal weights from `seed`.
pub fn builtin(name: &str, seed: u64) -> Option<Backbone> {
    if let Some(config) = ResNetConfig::named(name) {
        return Some(resnet(&config, seed));
    }
    Some(match name {
        "resnet-tiny" => resnet(&ResNetConfig::tiny(), seed),
        "mobilenet_v2" => mobilenet_v2(name, 1.0, seed),
        "mobilenet-mini" => mobilenet_v2(name, 0.25, seed),
        "vgg19" => vgg19(name, false, 1, seed),
        "vgg19_bn" => vgg19(name, true, 1, seed),
        "vgg-mini" => vgg19(name, true, 8, seed),
        "densenet121" => densenet(name, DenseNetConfig::DENSENET121, seed),
        "densenet201" => densenet(name, DenseNetConfig::DENSENET201, seed),
        "densenet-mini" => densenet(
            name,
            DenseNetConfig {
                growth: 8,
                blocks: [2, 2, 2, 2],
                stem: 16,
            },
            seed,
        ),
        "efficientnet_b0" => efficientnet_b0(name, 1, seed),
        "efficientnet-mini" => efficientnet_b0(name, 4, seed),
        "inception_v3" => inception_v3(name, 1, seed),
        "inception-mini" => inception_v3(name, 8, seed),
        "inception_resnet_v2" => inception_resnet_v2(name, 1, 1, seed),
        "inception-resnet-mini" => inception_resnet_v2(name, 8, 10, seed),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parameters of the feature extractor: torchvision's `sum(p.numel() for p in
    /// model.parameters())` for the full model, less its final classifier (the Linear
    /// layers after pooling), as listed with each case.
    #[test]
    fn parameter_counts_match_torchvision() {
        let mut wrong = Vec::new();
        for (name, total, classifier) in [
            // resnet50: 25,557,032 total; fc 2048·1000 + 1000.
            ("resnet50", 25_557_032, 2_049_000),
            // mobilenet_v2: 3,504,872 total; classifier.1 Linear(1280, 1000).
            ("mobilenet_v2", 3_504_872, 1_281_000),
            // vgg19: 143,667,240; classifier Linear(25088,4096), (4096,4096), (4096,1000).
            ("vgg19", 143_667_240, 102_764_544 + 16_781_312 + 4_097_000),
            // vgg19_bn: 143,678,248, same classifier.
            (
                "vgg19_bn",
                143_678_248,
                102_764_544 + 16_781_312 + 4_097_000,
            ),
            // densenet121: 7,978,856; classifier Linear(1024, 1000).
            ("densenet121", 7_978_856, 1_025_000),
            // densenet201: 20,013,928; classifier Linear(1920, 1000).
            ("densenet201", 20_013_928, 1_921_000),
            // efficientnet_b0: 5,288,548; classifier.1 Linear(1280, 1000).
            ("efficientnet_b0", 5_288_548, 1_281_000),
            // inception_v3: 27,161,264 with the auxiliary classifier (not built here):
            // AuxLogits conv0 768·128 + BN 256, conv1 128·768·25 + BN 1536, fc 768·1000 +
            // 1000 = 3,326,696; fc Linear(2048, 1000) = 2,049,000.
            ("inception_v3", 27_161_264, 3_326_696 + 2_049_000),
            // timm inception_resnet_v2: 55,843,464; classif Linear(1536, 1000).
            ("inception_resnet_v2", 55_843_464, 1_537_000),
        ] {
            let backbone = builtin(name, 0).unwrap();
            let features = backbone.parameter_count();
            if features + classifier != total {
                wrong.push(format!("{name}: {features} + {classifier} != {total}"));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn feature_maps_at_100_and_224_pixels() {
        // (name, channels, side at 100, side at 224): stride 32 everywhere.
        for (name, channels, at100, at224) in [
            ("mobilenet_v2", 1280, 4, 7),
            ("vgg19", 512, 3, 7),
            ("densenet201", 1920, 3, 7),
            ("efficientnet_b0", 1280, 4, 7),
            ("inception_v3", 2048, 1, 5),
            ("inception_resnet_v2", 1536, 1, 5),
        ] {
            let backbone = builtin(name, 0).unwrap();
            assert_eq!(backbone.channels, channels, "{name}");
            for (size, side) in [(100, at100), (224, at224)] {
                assert_eq!(
                    backbone.feature_shape_at(size).unwrap(),
                    vec![None, Some(channels as i64), Some(side), Some(side)],
                    "{name} at {size}"
                );
            }
        }
    }

    #[test]
    fn names_ignore_case_and_dashes_and_misspellings_find_the_nearest() {
        assert_eq!(canonical("ResNet50"), Some("resnet50"));
        assert_eq!(canonical("mobilenet-v2"), Some("mobilenet_v2"));
        assert_eq!(canonical("Inception_Mini"), Some("inception-mini"));
        assert_eq!(canonical("resnet5"), None);
        assert_eq!(closest("resnt50"), Some("resnet50"));
        assert_eq!(closest("efficientnet-b0"), Some("efficientnet_b0"));
        assert_eq!(closest("densnet121"), Some("densenet121"));
        assert_eq!(closest("transformer"), None);
    }

    #[test]
    fn minimum_input_sizes_come_from_the_graph() {
        // torchvision documents 75×75 as Inception-v3's smallest input; VGG's five unpadded
        // 2×2 max-pools need 32 (2⁵); ResNet pads every window and accepts any size.
        for (name, minimum) in [("inception_v3", 75), ("vgg19", 32), ("resnet50", 1)] {
            let backbone = builtin(name, 0).unwrap();
            assert_eq!(backbone.minimum_size(), Some(minimum), "{name}");
        }
        let mini = builtin("inception-mini", 0).unwrap();
        let minimum = mini.minimum_size().unwrap();
        assert!(mini.feature_shape_at(minimum as i64).is_ok());
        assert!(mini.feature_shape_at(minimum as i64 - 1).is_err());
    }

    #[test]
    fn every_name_builds_a_valid_graph_with_torchvision_names() {
        for name in NAMES {
            let backbone = builtin(name, 1).unwrap();
            ortl_onnx::passes::validate(&backbone.graph).unwrap();
            assert_eq!(backbone.name, name);
        }
        let init = builtin("densenet201", 0).unwrap().graph.initializers;
        for key in [
            "features.conv0.weight",
            "features.denseblock3.denselayer48.conv2.weight",
            "features.transition2.norm.running_var",
            "features.norm5.bias",
        ] {
            assert!(init.contains_key(key), "{key}");
        }
        let init = builtin("efficientnet_b0", 0).unwrap().graph.initializers;
        assert_eq!(init["features.2.0.block.2.fc1.weight"].dims, [4, 96, 1, 1]);
        let init = builtin("mobilenet_v2", 0).unwrap().graph.initializers;
        assert_eq!(init["features.18.0.weight"].dims, [1280, 320, 1, 1]);
        assert_eq!(init["features.2.conv.1.0.weight"].dims, [96, 1, 3, 3]);
        let init = builtin("vgg19_bn", 0).unwrap().graph.initializers;
        assert_eq!(init["features.49.weight"].dims, [512, 512, 3, 3]);
        assert!(builtin("alexnet", 0).is_none());
    }
}
