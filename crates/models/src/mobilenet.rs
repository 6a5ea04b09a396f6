//! MobileNetV2 (Sandler et al. 2018) in torchvision's layout and names
//! (`features.0.0.weight`, `features.3.conv.1.1.running_var`, …): inverted residual blocks
//! of 1×1 expansion, 3×3 depthwise convolution and 1×1 linear projection, ReLU6.

use crate::Backbone;
use crate::layers::{ConvSpec, Net};

/// (expansion t, output channels c, blocks n, first stride s), torchvision's table.
const SETTINGS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// MobileNetV2 with `width` scaling the channel counts (1.0: the published network; the
/// last layer stays 1280 wide as in torchvision for widths ≤ 1).
pub fn mobilenet_v2(name: &str, width: f64, seed: u64) -> Backbone {
    let scale = |c: usize| make_divisible(c as f64 * width, 8);
    let mut net = Net::new(name, seed, 1e-5);
    let input = net.input.clone();
    let mut channels = scale(32);
    let mut x = conv_bn_relu6(
        &mut net,
        &input,
        "features.0",
        3,
        channels,
        ConvSpec::square(3, 2),
    );
    let mut index = 1;
    for (t, c, n, s) in SETTINGS {
        let out = scale(c);
        for block in 0..n {
            let stride = if block == 0 { s } else { 1 };
            x = inverted_residual(
                &mut net,
                &x,
                &format!("features.{index}"),
                channels,
                out,
                stride,
                t,
            );
            channels = out;
            index += 1;
        }
    }
    let last = make_divisible(1280.0 * width.max(1.0), 8);
    let features = conv_bn_relu6(
        &mut net,
        &x,
        &format!("features.{index}"),
        channels,
        last,
        ConvSpec::square(1, 1),
    );
    net.finish(name, features, last)
}

/// Rounds channels to a multiple of `divisor`, never below 90 % of the request
/// (torchvision's `_make_divisible`).
fn make_divisible(value: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let rounded = ((value + d / 2.0) / d).floor() * d;
    let rounded = rounded.max(d);
    (if rounded < 0.9 * value {
        rounded + d
    } else {
        rounded
    }) as usize
}

fn conv_bn_relu6(
    net: &mut Net,
    x: &str,
    name: &str,
    cin: usize,
    cout: usize,
    spec: ConvSpec,
) -> String {
    let y = net.conv_bn(
        x,
        (&format!("{name}.0"), &format!("{name}.1")),
        cin,
        cout,
        spec,
    );
    net.relu6(&y)
}

fn inverted_residual(
    net: &mut Net,
    x: &str,
    name: &str,
    cin: usize,
    cout: usize,
    stride: usize,
    expansion: usize,
) -> String {
    let hidden = cin * expansion;
    let mut y = x.to_string();
    let mut layer = 0;
    if expansion != 1 {
        y = conv_bn_relu6(
            net,
            &y,
            &format!("{name}.conv.0"),
            cin,
            hidden,
            ConvSpec::square(1, 1),
        );
        layer = 1;
    }
    y = conv_bn_relu6(
        net,
        &y,
        &format!("{name}.conv.{layer}"),
        hidden,
        hidden,
        ConvSpec::square(3, stride).groups(hidden),
    );
    net.inverted_residual_tail(
        x,
        &y,
        (
            &format!("{name}.conv.{}", layer + 1),
            &format!("{name}.conv.{}", layer + 2),
        ),
        (cin, hidden, cout),
        stride,
    )
}
