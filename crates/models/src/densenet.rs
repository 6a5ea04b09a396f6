//! DenseNet (Huang et al. 2017) in torchvision's layout and names
//! (`features.denseblock1.denselayer1.norm1.weight`, `features.transition1.conv.weight`,
//! …): pre-activation BN-ReLU-conv layers whose outputs are concatenated, 1×1 transitions
//! halving channels with 2×2 average pooling, and a final BN + ReLU.

use crate::Backbone;
use crate::layers::{ConvSpec, Net};

/// Growth rate, layers per block and stem width of a DenseNet.
#[derive(Clone, Copy, Debug)]
pub struct DenseNetConfig {
    pub growth: usize,
    pub blocks: [usize; 4],
    pub stem: usize,
}

impl DenseNetConfig {
    pub const DENSENET121: Self = Self {
        growth: 32,
        blocks: [6, 12, 24, 16],
        stem: 64,
    };
    pub const DENSENET201: Self = Self {
        growth: 32,
        blocks: [6, 12, 48, 32],
        stem: 64,
    };
}

/// Bottleneck width factor: each layer's 1×1 convolution outputs `4 · growth` channels.
const BN_SIZE: usize = 4;

pub fn densenet(name: &str, config: DenseNetConfig, seed: u64) -> Backbone {
    let mut net = Net::new(name, seed, 1e-5);
    let input = net.input.clone();
    let mut x = net.conv_bn(
        &input,
        ("features.conv0", "features.norm0"),
        3,
        config.stem,
        ConvSpec::square(7, 2),
    );
    x = net.relu(&x);
    x = net.max_pool(&x, 3, 2, 1);
    let mut channels = config.stem;
    for (i, &layers) in config.blocks.iter().enumerate() {
        let block = format!("features.denseblock{}", i + 1);
        let mut parts = vec![x.clone()];
        for l in 0..layers {
            let name = format!("{block}.denselayer{}", l + 1);
            let concat = if parts.len() == 1 {
                parts[0].clone()
            } else {
                net.concat(&parts)
            };
            let mut y = net.bn(&concat, &format!("{name}.norm1"), channels);
            y = net.relu(&y);
            let wide = BN_SIZE * config.growth;
            y = net.conv(
                &y,
                &format!("{name}.conv1"),
                channels,
                wide,
                ConvSpec::square(1, 1),
            );
            y = net.bn(&y, &format!("{name}.norm2"), wide);
            y = net.relu(&y);
            y = net.conv(
                &y,
                &format!("{name}.conv2"),
                wide,
                config.growth,
                ConvSpec::square(3, 1),
            );
            parts.push(y);
            channels += config.growth;
        }
        x = net.concat(&parts);
        if i + 1 < config.blocks.len() {
            let name = format!("features.transition{}", i + 1);
            let mut y = net.bn(&x, &format!("{name}.norm"), channels);
            y = net.relu(&y);
            y = net.conv(
                &y,
                &format!("{name}.conv"),
                channels,
                channels / 2,
                ConvSpec::square(1, 1),
            );
            x = net.avg_pool(&y, 2, 2);
            channels /= 2;
        }
    }
    let y = net.bn(&x, "features.norm5", channels);
    let features = net.relu(&y);
    net.finish(name, features, channels)
}
