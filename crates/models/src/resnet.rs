//! ResNet in torchvision's layout (v1.5: the stride sits in each bottleneck's 3×3
//! convolution), with torchvision's parameter names (`conv1.weight`,
//! `layer1.0.bn2.running_var`, `layer2.0.downsample.0.weight`, …) so that an exported
//! torchvision state maps onto it by name. Smaller members of the family (fewer blocks,
//! narrower) keep the same structure for fast tests.

use crate::Backbone;
use crate::layers::{ConvSpec, Net};

/// Bottleneck expansion: the last 1×1 convolution of a block widens by this factor.
pub const EXPANSION: usize = 4;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResNetConfig {
    pub name: String,
    /// Bottleneck blocks in each of the four stages.
    pub blocks: [usize; 4],
    /// Width of the first stage (64 in ResNet50); later stages double it.
    pub width: usize,
}

impl ResNetConfig {
    pub fn resnet50() -> Self {
        Self {
            name: "resnet50".into(),
            blocks: [3, 4, 6, 3],
            width: 64,
        }
    }

    pub fn resnet101() -> Self {
        Self {
            name: "resnet101".into(),
            blocks: [3, 4, 23, 3],
            width: 64,
        }
    }

    /// The named members: `resnet50`, `resnet101`, `resnet26` (two blocks per stage) and
    /// `resnet-mini` (one block per stage, width 16: quick CPU runs on small data).
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "resnet50" => Some(Self::resnet50()),
            "resnet101" => Some(Self::resnet101()),
            "resnet26" => Some(Self {
                name: name.into(),
                blocks: [2, 2, 2, 2],
                width: 64,
            }),
            "resnet-mini" => Some(Self {
                name: name.into(),
                blocks: [1, 1, 1, 1],
                width: 16,
            }),
            _ => None,
        }
    }

    /// A member small enough for tests: one block per stage, width 8 (feature width 256).
    pub fn tiny() -> Self {
        Self {
            name: "resnet-tiny".into(),
            blocks: [1, 1, 1, 1],
            width: 8,
        }
    }

    /// Channels of the final feature map.
    pub fn feature_channels(&self) -> usize {
        self.width * 8 * EXPANSION
    }
}

/// Builds the backbone with He-normal weights drawn from `seed`. Its input is a float
/// `[N, 3, H, W]` tensor normalised with ImageNet mean/std (torchvision's convention).
pub fn resnet(config: &ResNetConfig, seed: u64) -> Backbone {
    let mut net = Net::new(&config.name, seed, 1e-5);
    let input = net.input.clone();
    let mut x = net.conv_bn(
        &input,
        ("conv1", "bn1"),
        3,
        config.width,
        ConvSpec::square(7, 2),
    );
    x = net.relu(&x);
    x = net.max_pool(&x, 3, 2, 1);

    let mut channels = config.width;
    for (stage, &blocks) in config.blocks.iter().enumerate() {
        let width = config.width << stage;
        for block in 0..blocks {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let name = format!("layer{}.{block}", stage + 1);
            x = bottleneck(&mut net, &x, &name, channels, width, stride);
            channels = width * EXPANSION;
        }
    }
    net.finish(&config.name, x, channels)
}

fn bottleneck(
    net: &mut Net,
    x: &str,
    name: &str,
    cin: usize,
    width: usize,
    stride: usize,
) -> String {
    let cout = width * EXPANSION;
    let unit = |i: usize| (format!("{name}.conv{i}"), format!("{name}.bn{i}"));
    let (c1, b1) = unit(1);
    let mut y = net.conv_bn(x, (&c1, &b1), cin, width, ConvSpec::square(1, 1));
    y = net.relu(&y);
    let (c2, b2) = unit(2);
    y = net.conv_bn(&y, (&c2, &b2), width, width, ConvSpec::square(3, stride));
    y = net.relu(&y);
    let (c3, b3) = unit(3);
    y = net.conv_bn(&y, (&c3, &b3), width, cout, ConvSpec::square(1, 1));
    let shortcut = if stride != 1 || cin != cout {
        net.conv_bn(
            x,
            (
                &format!("{name}.downsample.0"),
                &format!("{name}.downsample.1"),
            ),
            cin,
            cout,
            ConvSpec::square(1, stride),
        )
    } else {
        x.to_string()
    };
    let sum = net.b.add(&y, &shortcut);
    net.relu(&sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet50_has_torchvisions_parameter_count_and_names() {
        let backbone = resnet(&ResNetConfig::resnet50(), 0);
        // torchvision.models.resnet50(): sum(p.numel() for p in m.parameters()) = 25,557,032,
        // of which the 1000-class fc is 2048·1000 + 1000 = 2,049,000 (torchvision docs list
        // 25.6M parameters for ResNet50; the exact figure is the sum above).
        assert_eq!(backbone.parameter_count() + 2048 * 1000 + 1000, 25_557_032);
        assert_eq!(backbone.channels, 2048);
        let init = &backbone.graph.initializers;
        for name in [
            "conv1.weight",
            "layer1.0.bn2.running_var",
            "layer2.0.downsample.0.weight",
            "layer4.2.conv3.weight",
        ] {
            assert!(init.contains_key(name), "{name}");
        }
        assert_eq!(init["layer3.5.conv2.weight"].dims, [256, 256, 3, 3]);
        ortl_onnx::passes::validate(&backbone.graph).unwrap();
    }

    #[test]
    fn inferred_shapes_match_the_architecture_at_100_and_224() {
        // ORT's own run of the same graph is checked in tests/ort.rs.
        let backbone = resnet(&ResNetConfig::resnet50(), 0);
        for (size, side) in [(100, 4), (224, 7)] {
            assert_eq!(
                backbone.feature_shape_at(size).unwrap(),
                vec![None, Some(2048), Some(side), Some(side)]
            );
        }
    }

    #[test]
    fn he_init_has_the_fan_out_standard_deviation() {
        let backbone = resnet(&ResNetConfig::resnet50(), 7);
        let w = backbone.graph.initializers["layer4.0.conv2.weight"]
            .as_f32()
            .unwrap();
        let n = w.len() as f64;
        let mean = w.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let std = (w
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        let expected = (2.0f64 / (512.0 * 9.0)).sqrt();
        assert!(
            (std / expected - 1.0).abs() < 0.01,
            "std {std} vs {expected}"
        );
        assert!(mean.abs() < expected * 0.01);
    }
}
