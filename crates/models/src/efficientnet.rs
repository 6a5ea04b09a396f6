//! EfficientNet-B0 (Tan & Le 2019) in torchvision's layout and names
//! (`features.0.0.weight`, `features.2.0.block.2.fc1.bias`, …): MBConv blocks of 1×1
//! expansion, depthwise k×k convolution, squeeze-and-excitation and a linear 1×1
//! projection, SiLU activations. Stochastic depth only acts in training, so the inference
//! graph has plain residual additions.

use crate::Backbone;
use crate::layers::{ConvSpec, Net};

/// (expansion, kernel, first stride, input channels, output channels, blocks) of B0.
const B0: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
];

/// EfficientNet-B0; `width` divides every channel count (1: the published network).
pub fn efficientnet_b0(name: &str, width: usize, seed: u64) -> Backbone {
    // torchvision's B0 uses BatchNorm2d's default epsilon (1e-3 is B5–B7's), as timm's
    // does: scripts/record-imagenet-names.py checks both give the same feature map.
    let mut net = Net::new(name, seed, 1e-5);
    let input = net.input.clone();
    let stem = 32 / width;
    let mut x = net.conv_bn(
        &input,
        ("features.0.0", "features.0.1"),
        3,
        stem,
        ConvSpec::square(3, 2),
    );
    x = net.silu(&x);
    let mut channels = stem;
    for (stage, (expansion, kernel, stride, _, out, blocks)) in B0.into_iter().enumerate() {
        let out = out / width;
        for block in 0..blocks {
            let name = format!("features.{}.{block}.block", stage + 1);
            let s = if block == 0 { stride } else { 1 };
            x = mbconv(&mut net, &x, &name, (channels, out), (kernel, s), expansion);
            channels = out;
        }
    }
    let last = 1280 / width;
    let y = net.conv_bn(
        &x,
        ("features.8.0", "features.8.1"),
        channels,
        last,
        ConvSpec::square(1, 1),
    );
    let features = net.silu(&y);
    net.finish(name, features, last)
}

/// One MBConv block: (input, output) channels, (kernel, stride) of its depthwise
/// convolution, expansion factor.
fn mbconv(
    net: &mut Net,
    x: &str,
    name: &str,
    (cin, cout): (usize, usize),
    (kernel, stride): (usize, usize),
    expansion: usize,
) -> String {
    let hidden = cin * expansion;
    let mut y = x.to_string();
    let mut layer = 0;
    if expansion != 1 {
        y = net.conv_bn(
            &y,
            (&format!("{name}.0.0"), &format!("{name}.0.1")),
            cin,
            hidden,
            ConvSpec::square(1, 1),
        );
        y = net.silu(&y);
        layer = 1;
    }
    y = net.conv_bn(
        &y,
        (&format!("{name}.{layer}.0"), &format!("{name}.{layer}.1")),
        hidden,
        hidden,
        ConvSpec::square(kernel, stride).groups(hidden),
    );
    y = net.silu(&y);
    // Squeeze-and-excitation on a quarter of the block's input width.
    let squeeze = (cin / 4).max(1);
    let se = format!("{name}.{}", layer + 1);
    let pooled = net.b.global_average_pool(&y);
    let mut s = net.conv(
        &pooled,
        &format!("{se}.fc1"),
        hidden,
        squeeze,
        ConvSpec::square(1, 1).bias(),
    );
    s = net.silu(&s);
    s = net.conv(
        &s,
        &format!("{se}.fc2"),
        squeeze,
        hidden,
        ConvSpec::square(1, 1).bias(),
    );
    let gate = net.b.sigmoid(&s);
    y = net.b.mul(&y, &gate);
    net.inverted_residual_tail(
        x,
        &y,
        (
            &format!("{name}.{}.0", layer + 2),
            &format!("{name}.{}.1", layer + 2),
        ),
        (cin, hidden, cout),
        stride,
    )
}
