//! VGG (Simonyan & Zisserman 2014) convolutional features in torchvision's layout:
//! `features.<i>` numbers every layer (conv, [BN,] ReLU, pool) in order, as torchvision's
//! `nn.Sequential` does, so `features.0.weight` is the first convolution.

use crate::Backbone;
use crate::layers::{ConvSpec, Net};

/// Configuration "E" (VGG19): channels of each 3×3 convolution, 0 for a 2×2 max pool.
const VGG19: [usize; 21] = [
    64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0,
];

/// VGG19 features (`batch_norm`: the `vgg19_bn` variant); `width` divides the channels
/// (1: the published network). The output is the map after the last pool, 512 wide.
pub fn vgg19(name: &str, batch_norm: bool, width: usize, seed: u64) -> Backbone {
    let mut net = Net::new(name, seed, 1e-5);
    let mut x = net.input.clone();
    let (mut channels, mut index) = (3, 0);
    for c in VGG19 {
        if c == 0 {
            x = net.max_pool(&x, 2, 2, 0);
            index += 1;
            continue;
        }
        let c = c / width;
        x = net.conv(
            &x,
            &format!("features.{index}"),
            channels,
            c,
            ConvSpec::square(3, 1).bias(),
        );
        index += 1;
        if batch_norm {
            x = net.bn(&x, &format!("features.{index}"), c);
            index += 1;
        }
        x = net.relu(&x);
        index += 1;
        channels = c;
    }
    net.finish(name, x, channels)
}
