//! Inception-ResNet-v2 (Szegedy et al. 2017) in timm's layout and names
//! (`conv2d_1a.conv.weight`, `repeat.3.branch2.1.bn.running_var`, `block8.conv2d.bias`,
//! …), the layout its PyTorch ports of the Keras weights use: a stem, Mixed_5b, 10
//! Block35 (residual scale 0.17), Mixed_6a, 20 Block17 (0.10), Mixed_7a, 9 Block8 (0.20),
//! a last Block8 without ReLU, and a 1×1 convolution to 1536 channels.

use ortl_onnx::Tensor;

use crate::Backbone;
use crate::layers::{ConvSpec, Net};

/// Inception-ResNet-v2 features (1536 channels); `width` divides every channel count and
/// `depth` the number of repeated blocks (1, 1: the published network).
pub fn inception_resnet_v2(name: &str, width: usize, depth: usize, seed: u64) -> Backbone {
    let mut m = Module {
        net: Net::new(name, seed, 1e-3),
        width,
    };
    let input = m.net.input.clone();
    let x = m.basic(&input, "conv2d_1a", 3, 32, ConvSpec::new((3, 3), 2, (0, 0)));
    let x = m.basic(
        &x,
        "conv2d_2a",
        m.s(32),
        32,
        ConvSpec::new((3, 3), 1, (0, 0)),
    );
    let x = m.basic(
        &x,
        "conv2d_2b",
        m.s(32),
        64,
        ConvSpec::new((3, 3), 1, (1, 1)),
    );
    let x = m.net.max_pool(&x, 3, 2, 0);
    let x = m.basic(
        &x,
        "conv2d_3b",
        m.s(64),
        80,
        ConvSpec::new((1, 1), 1, (0, 0)),
    );
    let x = m.basic(
        &x,
        "conv2d_4a",
        m.s(80),
        192,
        ConvSpec::new((3, 3), 1, (0, 0)),
    );
    let x = m.net.max_pool(&x, 3, 2, 0);
    let mut x = m.mixed_5b(&x);
    for i in 0..(10 / depth).max(1) {
        x = m.block35(&x, &format!("repeat.{i}"));
    }
    let mut x = m.mixed_6a(&x);
    for i in 0..(20 / depth).max(1) {
        x = m.block17(&x, &format!("repeat_1.{i}"));
    }
    let mut x = m.mixed_7a(&x);
    for i in 0..(9 / depth).max(1) {
        x = m.block8(&x, &format!("repeat_2.{i}"), true);
    }
    let x = m.block8(&x, "block8", false);
    let features = m.basic(
        &x,
        "conv2d_7b",
        m.c7a(),
        1536,
        ConvSpec::new((1, 1), 1, (0, 0)),
    );
    let channels = m.s(1536);
    m.net.finish(name, features, channels)
}

const K1: ConvSpec = ConvSpec {
    kernel: (1, 1),
    stride: 1,
    pad: (0, 0),
    groups: 1,
    bias: false,
};

struct Module {
    net: Net,
    width: usize,
}

impl Module {
    fn s(&self, c: usize) -> usize {
        c / self.width
    }

    /// Output widths of Mixed_5b, Mixed_6a and Mixed_7a (320, 1088, 2080 at full width).
    fn c5b(&self) -> usize {
        self.s(96) + self.s(64) + self.s(96) + self.s(64)
    }

    fn c6a(&self) -> usize {
        self.s(384) * 2 + self.c5b()
    }

    fn c7a(&self) -> usize {
        self.s(384) + self.s(288) + self.s(320) + self.c6a()
    }

    /// BasicConv2d (conv without bias, BN eps 0.001, ReLU) to `cout` published channels.
    fn basic(&mut self, x: &str, name: &str, cin: usize, cout: usize, spec: ConvSpec) -> String {
        let cout = self.s(cout);
        self.net.basic_conv(x, name, cin, cout, spec)
    }

    /// A chain of BasicConv2d named `<name>.0`, `<name>.1`, …: (published width, spec).
    fn chain(&mut self, x: &str, name: &str, cin: usize, layers: &[(usize, ConvSpec)]) -> String {
        let (mut y, mut c) = (x.to_string(), cin);
        for (i, &(cout, spec)) in layers.iter().enumerate() {
            y = self.basic(&y, &format!("{name}.{i}"), c, cout, spec);
            c = self.s(cout);
        }
        y
    }

    fn mixed_5b(&mut self, x: &str) -> String {
        let cin = self.s(192);
        let b0 = self.basic(x, "mixed_5b.branch0", cin, 96, K1);
        let b1 = self.chain(
            x,
            "mixed_5b.branch1",
            cin,
            &[(48, K1), (64, ConvSpec::new((5, 5), 1, (2, 2)))],
        );
        let b2 = self.chain(
            x,
            "mixed_5b.branch2",
            cin,
            &[
                (64, K1),
                (96, ConvSpec::new((3, 3), 1, (1, 1))),
                (96, ConvSpec::new((3, 3), 1, (1, 1))),
            ],
        );
        // AvgPool2d(3, stride=1, padding=1, count_include_pad=False).
        let pooled = self.net.avg_pool_3x3_same(x, false);
        let b3 = self.basic(&pooled, "mixed_5b.branch3.1", cin, 64, K1);
        self.net.concat(&[b0, b1, b2, b3])
    }

    /// `relu?(x + scale · conv2d(concat(branches)))`, the residual unit of every block.
    fn residual(
        &mut self,
        x: &str,
        name: &str,
        branches: String,
        (cin, cout): (usize, usize),
        scale: f32,
        relu: bool,
    ) -> String {
        let up = self
            .net
            .conv(&branches, &format!("{name}.conv2d"), cin, cout, K1.bias());
        let factor = self.net.b.constant(Tensor::scalar(scale));
        let scaled = self.net.b.mul(&up, &factor);
        let sum = self.net.b.add(x, &scaled);
        if relu { self.net.relu(&sum) } else { sum }
    }

    fn block35(&mut self, x: &str, name: &str) -> String {
        let cin = self.c5b();
        let p1 = ConvSpec::new((3, 3), 1, (1, 1));
        let b0 = self.basic(x, &format!("{name}.branch0"), cin, 32, K1);
        let b1 = self.chain(x, &format!("{name}.branch1"), cin, &[(32, K1), (32, p1)]);
        let b2 = self.chain(
            x,
            &format!("{name}.branch2"),
            cin,
            &[(32, K1), (48, p1), (64, p1)],
        );
        let cat = self.net.concat(&[b0, b1, b2]);
        let mid = self.s(32) * 2 + self.s(64);
        self.residual(x, name, cat, (mid, cin), 0.17, true)
    }

    fn mixed_6a(&mut self, x: &str) -> String {
        let cin = self.c5b();
        let b0 = self.basic(
            x,
            "mixed_6a.branch0",
            cin,
            384,
            ConvSpec::new((3, 3), 2, (0, 0)),
        );
        let b1 = self.chain(
            x,
            "mixed_6a.branch1",
            cin,
            &[
                (256, K1),
                (256, ConvSpec::new((3, 3), 1, (1, 1))),
                (384, ConvSpec::new((3, 3), 2, (0, 0))),
            ],
        );
        let b2 = self.net.max_pool(x, 3, 2, 0);
        self.net.concat(&[b0, b1, b2])
    }

    fn block17(&mut self, x: &str, name: &str) -> String {
        let cin = self.c6a();
        let b0 = self.basic(x, &format!("{name}.branch0"), cin, 192, K1);
        let b1 = self.chain(
            x,
            &format!("{name}.branch1"),
            cin,
            &[
                (128, K1),
                (160, ConvSpec::new((1, 7), 1, (0, 3))),
                (192, ConvSpec::new((7, 1), 1, (3, 0))),
            ],
        );
        let cat = self.net.concat(&[b0, b1]);
        self.residual(x, name, cat, (2 * self.s(192), cin), 0.10, true)
    }

    fn mixed_7a(&mut self, x: &str) -> String {
        let cin = self.c6a();
        let s2 = ConvSpec::new((3, 3), 2, (0, 0));
        let b0 = self.chain(x, "mixed_7a.branch0", cin, &[(256, K1), (384, s2)]);
        let b1 = self.chain(x, "mixed_7a.branch1", cin, &[(256, K1), (288, s2)]);
        let b2 = self.chain(
            x,
            "mixed_7a.branch2",
            cin,
            &[
                (256, K1),
                (288, ConvSpec::new((3, 3), 1, (1, 1))),
                (320, s2),
            ],
        );
        let b3 = self.net.max_pool(x, 3, 2, 0);
        self.net.concat(&[b0, b1, b2, b3])
    }

    fn block8(&mut self, x: &str, name: &str, relu: bool) -> String {
        let cin = self.c7a();
        let b0 = self.basic(x, &format!("{name}.branch0"), cin, 192, K1);
        let b1 = self.chain(
            x,
            &format!("{name}.branch1"),
            cin,
            &[
                (192, K1),
                (224, ConvSpec::new((1, 3), 1, (0, 1))),
                (256, ConvSpec::new((3, 1), 1, (1, 0))),
            ],
        );
        let cat = self.net.concat(&[b0, b1]);
        let mid = self.s(192) + self.s(256);
        self.residual(x, name, cat, (mid, cin), 0.20, relu)
    }
}
