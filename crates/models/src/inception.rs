//! Inception-v3 (Szegedy et al. 2016) in torchvision's layout and names
//! (`Conv2d_1a_3x3.conv.weight`, `Mixed_6b.branch7x7_2.bn.running_var`, …) without the
//! auxiliary classifier: every convolution is a BasicConv2d (conv without bias, BN with
//! eps 0.001, ReLU), and the modules A–E concatenate their branches.

use crate::Backbone;
use crate::layers::{ConvSpec, Net};

/// Inception-v3 features (2048 channels at full width); `width` divides every channel
/// count (1: the published network).
pub fn inception_v3(name: &str, width: usize, seed: u64) -> Backbone {
    let mut m = Module {
        net: Net::new(name, seed, 1e-3),
        width,
    };
    let input = m.net.input.clone();
    let x = m.basic(
        &input,
        "Conv2d_1a_3x3",
        3,
        32,
        ConvSpec::new((3, 3), 2, NONE),
    );
    let x = m.basic(
        &x,
        "Conv2d_2a_3x3",
        m.scaled(32),
        32,
        ConvSpec::new((3, 3), 1, NONE),
    );
    let x = m.basic(
        &x,
        "Conv2d_2b_3x3",
        m.scaled(32),
        64,
        ConvSpec::new((3, 3), 1, ONE),
    );
    let x = m.net.max_pool(&x, 3, 2, 0);
    let x = m.basic(
        &x,
        "Conv2d_3b_1x1",
        m.scaled(64),
        80,
        ConvSpec::new(ONE, 1, NONE),
    );
    let x = m.basic(
        &x,
        "Conv2d_4a_3x3",
        m.scaled(80),
        192,
        ConvSpec::new((3, 3), 1, NONE),
    );
    let x = m.net.max_pool(&x, 3, 2, 0);
    let (x, c) = m.inception_a(&x, "Mixed_5b", m.scaled(192), 32);
    let (x, c) = m.inception_a(&x, "Mixed_5c", c, 64);
    let (x, c) = m.inception_a(&x, "Mixed_5d", c, 64);
    let (x, c) = m.inception_b(&x, "Mixed_6a", c);
    let (x, c) = m.inception_c(&x, "Mixed_6b", c, 128);
    let (x, c) = m.inception_c(&x, "Mixed_6c", c, 160);
    let (x, c) = m.inception_c(&x, "Mixed_6d", c, 160);
    let (x, c) = m.inception_c(&x, "Mixed_6e", c, 192);
    let (x, c) = m.inception_d(&x, "Mixed_7a", c);
    let (x, c) = m.inception_e(&x, "Mixed_7b", c);
    let (x, c) = m.inception_e(&x, "Mixed_7c", c);
    m.net.finish(name, x, c)
}

const ONE: (usize, usize) = (1, 1);
const NONE: (usize, usize) = (0, 0);

struct Module {
    net: Net,
    width: usize,
}

impl Module {
    /// BasicConv2d: `cin` is the actual input width, `cout` the published one (scaled).
    fn basic(&mut self, x: &str, name: &str, cin: usize, cout: usize, spec: ConvSpec) -> String {
        let cout = self.scaled(cout);
        self.net.basic_conv(x, name, cin, cout, spec)
    }

    fn scaled(&self, c: usize) -> usize {
        c / self.width
    }

    fn inception_a(&mut self, x: &str, n: &str, cin: usize, pool: usize) -> (String, usize) {
        let b1 = self.basic(
            x,
            &format!("{n}.branch1x1"),
            cin,
            64,
            ConvSpec::new(ONE, 1, NONE),
        );
        let b5 = self.basic(
            x,
            &format!("{n}.branch5x5_1"),
            cin,
            48,
            ConvSpec::new(ONE, 1, NONE),
        );
        let b5 = self.basic(
            &b5,
            &format!("{n}.branch5x5_2"),
            self.scaled(48),
            64,
            ConvSpec::new((5, 5), 1, (2, 2)),
        );
        let b3 = self.basic(
            x,
            &format!("{n}.branch3x3dbl_1"),
            cin,
            64,
            ConvSpec::new(ONE, 1, NONE),
        );
        let b3 = self.basic(
            &b3,
            &format!("{n}.branch3x3dbl_2"),
            self.scaled(64),
            96,
            ConvSpec::new((3, 3), 1, ONE),
        );
        let b3 = self.basic(
            &b3,
            &format!("{n}.branch3x3dbl_3"),
            self.scaled(96),
            96,
            ConvSpec::new((3, 3), 1, ONE),
        );
        let bp = self.net.avg_pool_3x3_same(x, true);
        let bp = self.basic(
            &bp,
            &format!("{n}.branch_pool"),
            cin,
            pool,
            ConvSpec::new(ONE, 1, NONE),
        );
        let out = self.scaled(64) * 2 + self.scaled(96) + self.scaled(pool);
        (self.net.concat(&[b1, b5, b3, bp]), out)
    }

    fn inception_b(&mut self, x: &str, n: &str, cin: usize) -> (String, usize) {
        let b3 = self.basic(
            x,
            &format!("{n}.branch3x3"),
            cin,
            384,
            ConvSpec::new((3, 3), 2, NONE),
        );
        let bd = self.basic(
            x,
            &format!("{n}.branch3x3dbl_1"),
            cin,
            64,
            ConvSpec::new(ONE, 1, NONE),
        );
        let bd = self.basic(
            &bd,
            &format!("{n}.branch3x3dbl_2"),
            self.scaled(64),
            96,
            ConvSpec::new((3, 3), 1, ONE),
        );
        let bd = self.basic(
            &bd,
            &format!("{n}.branch3x3dbl_3"),
            self.scaled(96),
            96,
            ConvSpec::new((3, 3), 2, NONE),
        );
        let bp = self.net.max_pool(x, 3, 2, 0);
        let out = self.scaled(384) + self.scaled(96) + cin;
        (self.net.concat(&[b3, bd, bp]), out)
    }

    fn inception_c(&mut self, x: &str, n: &str, cin: usize, c7: usize) -> (String, usize) {
        let s7 = self.scaled(c7);
        let (row, col) = (
            ConvSpec::new((1, 7), 1, (0, 3)),
            ConvSpec::new((7, 1), 1, (3, 0)),
        );
        let b1 = self.basic(
            x,
            &format!("{n}.branch1x1"),
            cin,
            192,
            ConvSpec::new(ONE, 1, NONE),
        );
        let b7 = self.basic(
            x,
            &format!("{n}.branch7x7_1"),
            cin,
            c7,
            ConvSpec::new(ONE, 1, NONE),
        );
        let b7 = self.basic(&b7, &format!("{n}.branch7x7_2"), s7, c7, row);
        let b7 = self.basic(&b7, &format!("{n}.branch7x7_3"), s7, 192, col);
        let bd = self.basic(
            x,
            &format!("{n}.branch7x7dbl_1"),
            cin,
            c7,
            ConvSpec::new(ONE, 1, NONE),
        );
        let bd = self.basic(&bd, &format!("{n}.branch7x7dbl_2"), s7, c7, col);
        let bd = self.basic(&bd, &format!("{n}.branch7x7dbl_3"), s7, c7, row);
        let bd = self.basic(&bd, &format!("{n}.branch7x7dbl_4"), s7, c7, col);
        let bd = self.basic(&bd, &format!("{n}.branch7x7dbl_5"), s7, 192, row);
        let bp = self.net.avg_pool_3x3_same(x, true);
        let bp = self.basic(
            &bp,
            &format!("{n}.branch_pool"),
            cin,
            192,
            ConvSpec::new(ONE, 1, NONE),
        );
        (self.net.concat(&[b1, b7, bd, bp]), 4 * self.scaled(192))
    }

    fn inception_d(&mut self, x: &str, n: &str, cin: usize) -> (String, usize) {
        let s192 = self.scaled(192);
        let b3 = self.basic(
            x,
            &format!("{n}.branch3x3_1"),
            cin,
            192,
            ConvSpec::new(ONE, 1, NONE),
        );
        let b3 = self.basic(
            &b3,
            &format!("{n}.branch3x3_2"),
            s192,
            320,
            ConvSpec::new((3, 3), 2, NONE),
        );
        let b7 = self.basic(
            x,
            &format!("{n}.branch7x7x3_1"),
            cin,
            192,
            ConvSpec::new(ONE, 1, NONE),
        );
        let b7 = self.basic(
            &b7,
            &format!("{n}.branch7x7x3_2"),
            s192,
            192,
            ConvSpec::new((1, 7), 1, (0, 3)),
        );
        let b7 = self.basic(
            &b7,
            &format!("{n}.branch7x7x3_3"),
            s192,
            192,
            ConvSpec::new((7, 1), 1, (3, 0)),
        );
        let b7 = self.basic(
            &b7,
            &format!("{n}.branch7x7x3_4"),
            s192,
            192,
            ConvSpec::new((3, 3), 2, NONE),
        );
        let bp = self.net.max_pool(x, 3, 2, 0);
        let out = self.scaled(320) + s192 + cin;
        (self.net.concat(&[b3, b7, bp]), out)
    }

    fn inception_e(&mut self, x: &str, n: &str, cin: usize) -> (String, usize) {
        let s384 = self.scaled(384);
        let (row, col) = (
            ConvSpec::new((1, 3), 1, (0, 1)),
            ConvSpec::new((3, 1), 1, (1, 0)),
        );
        let b1 = self.basic(
            x,
            &format!("{n}.branch1x1"),
            cin,
            320,
            ConvSpec::new(ONE, 1, NONE),
        );
        let b3 = self.basic(
            x,
            &format!("{n}.branch3x3_1"),
            cin,
            384,
            ConvSpec::new(ONE, 1, NONE),
        );
        let b3a = self.basic(&b3, &format!("{n}.branch3x3_2a"), s384, 384, row);
        let b3b = self.basic(&b3, &format!("{n}.branch3x3_2b"), s384, 384, col);
        let b3 = self.net.concat(&[b3a, b3b]);
        let bd = self.basic(
            x,
            &format!("{n}.branch3x3dbl_1"),
            cin,
            448,
            ConvSpec::new(ONE, 1, NONE),
        );
        let bd = self.basic(
            &bd,
            &format!("{n}.branch3x3dbl_2"),
            self.scaled(448),
            384,
            ConvSpec::new((3, 3), 1, ONE),
        );
        let bda = self.basic(&bd, &format!("{n}.branch3x3dbl_3a"), s384, 384, row);
        let bdb = self.basic(&bd, &format!("{n}.branch3x3dbl_3b"), s384, 384, col);
        let bd = self.net.concat(&[bda, bdb]);
        let bp = self.net.avg_pool_3x3_same(x, true);
        let bp = self.basic(
            &bp,
            &format!("{n}.branch_pool"),
            cin,
            192,
            ConvSpec::new(ONE, 1, NONE),
        );
        let out = self.scaled(320) + 4 * s384 + self.scaled(192);
        (self.net.concat(&[b1, b3, bd, bp]), out)
    }
}
