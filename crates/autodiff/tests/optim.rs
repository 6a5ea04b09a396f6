//! One to three optimizer steps run as graph ops through ORT, against the same formulas
//! computed directly in Rust (PyTorch's definitions; see `ortl_autodiff::optim`).

use ndarray::{ArrayD, IxDyn};
use ortl_autodiff::optim::{BIAS_CORRECTION1, BIAS_CORRECTION2, LR, Optimizer, OptimizerKind};
use ortl_onnx::{DataType, Dim, GraphBuilder, Model, io};
use ortl_runtime::{Feed, SessionOptions};

const P: [f32; 3] = [0.5, -1.0, 2.0];
const GRADS: [[f32; 3]; 3] = [[0.1, -0.2, 0.3], [0.05, 0.4, -0.1], [-0.3, 0.1, 0.2]];
const LR_VALUE: f32 = 0.1;

/// Runs `steps` updates through ORT; returns the parameter after each.
fn through_ort(opt: &Optimizer, steps: usize) -> Vec<Vec<f32>> {
    let mut b = GraphBuilder::new("opt");
    // Shaped as a 1×1 convolution's weights: trailing 1s are what the scalars' rank is for.
    let dims = vec![Dim::Fixed(3), Dim::Fixed(1), Dim::Fixed(1), Dim::Fixed(1)];
    let p = b.input("p", DataType::Float, dims.clone());
    let g = b.input("g", DataType::Float, dims.clone());
    b.input(LR, DataType::Float, vec![]);
    b.input(BIAS_CORRECTION1, DataType::Float, vec![]);
    b.input(BIAS_CORRECTION2, DataType::Float, vec![]);
    let states = opt.states("p");
    for s in &states {
        b.input(s, DataType::Float, dims.clone());
    }
    let (new_p, new_states) = opt.update(&mut b, &p, &g, &states, 4);
    let new_p = b.op("Identity", &[&new_p], vec![]);
    b.output(&new_p, DataType::Float, dims.clone());
    let outs: Vec<String> = new_states
        .iter()
        .map(|s| b.op("Identity", &[s], vec![]))
        .collect();
    for o in &outs {
        b.output(o, DataType::Float, dims.clone());
    }
    let runtime = ortl_runtime::testing::runtime();
    let mut session = runtime
        .load(
            &SessionOptions::default(),
            &io::to_bytes(&Model::new(b.finish())),
        )
        .unwrap();
    let vec3 = |v: &[f32]| ArrayD::from_shape_vec(IxDyn(&[3, 1, 1, 1]), v.to_vec()).unwrap();
    let scalar = |v: f32| ArrayD::from_elem(IxDyn(&[]), v);
    let mut param = P.to_vec();
    let mut state: Vec<Vec<f32>> = vec![vec![0.0; 3]; states.len()];
    let mut history = Vec::new();
    for (t, grad) in GRADS.iter().enumerate().take(steps) {
        let (bc1, bc2) = opt.bias_corrections(t as u64 + 1);
        let mut feeds = vec![
            ("p", Feed::F32(vec3(&param))),
            ("g", Feed::F32(vec3(grad))),
            (LR, Feed::F32(scalar(LR_VALUE))),
            (BIAS_CORRECTION1, Feed::F32(scalar(bc1))),
            (BIAS_CORRECTION2, Feed::F32(scalar(bc2))),
        ];
        for (name, value) in states.iter().zip(&state) {
            feeds.push((name.as_str(), Feed::F32(vec3(value))));
        }
        let out = ortl_runtime::run(&mut session, feeds).unwrap();
        param = out[&new_p].iter().copied().collect();
        state = outs
            .iter()
            .map(|o| out[o].iter().copied().collect())
            .collect();
        history.push(param.clone());
    }
    history
}

fn close(a: &[Vec<f32>], b: &[Vec<f32>]) {
    let shape = |v: &[Vec<f32>]| v.iter().map(Vec::len).collect::<Vec<_>>();
    assert_eq!(shape(a), shape(b), "{a:?} vs {b:?}");
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!((x - y).abs() < 1e-6, "{a:?} vs {b:?}");
    }
}

#[test]
fn sgd_momentum_and_nesterov() {
    for nesterov in [false, true] {
        let (mu, wd) = (0.9f32, 0.01f32);
        let opt = Optimizer::Sgd {
            momentum: mu,
            nesterov,
            weight_decay: wd,
        };
        let mut p = P.to_vec();
        let mut v = [0.0f32; 3];
        let mut expected = Vec::new();
        for g in GRADS {
            for i in 0..3 {
                let gi = g[i] + wd * p[i];
                v[i] = mu * v[i] + gi;
                let d = if nesterov { gi + mu * v[i] } else { v[i] };
                p[i] -= LR_VALUE * d;
            }
            expected.push(p.clone());
        }
        close(&through_ort(&opt, 3), &expected);
    }
}

#[test]
fn adam_first_steps_equal_the_textbook_formula_with_bias_correction() {
    let opt = Optimizer::keras(OptimizerKind::Adam, 0.0, 0.0);
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-7f64);
    let mut p: Vec<f64> = P.iter().map(|&x| f64::from(x)).collect();
    let (mut m, mut v) = ([0.0f64; 3], [0.0f64; 3]);
    let mut expected = Vec::new();
    for (t, g) in GRADS.iter().enumerate() {
        let t = t as i32 + 1;
        for i in 0..3 {
            let gi = f64::from(g[i]);
            m[i] = b1 * m[i] + (1.0 - b1) * gi;
            v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
            let m_hat = m[i] / (1.0 - b1.powi(t));
            let v_hat = v[i] / (1.0 - b2.powi(t));
            p[i] -= f64::from(LR_VALUE) * m_hat / (v_hat.sqrt() + eps);
        }
        expected.push(p.iter().map(|&x| x as f32).collect());
    }
    // Step 1 of Adam moves every coordinate by lr·sign(g) (m̂/√v̂ = g/|g|).
    let ort = through_ort(&opt, 3);
    for i in 0..3 {
        assert!((ort[0][i] - (P[i] - LR_VALUE * GRADS[0][i].signum())).abs() < 1e-5);
    }
    close(&ort, &expected);
}

#[test]
fn adamw_decouples_weight_decay_and_rmsprop() {
    let wd = 0.05f32;
    let opt = Optimizer::AdamW {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-7,
        weight_decay: wd,
    };
    let g = GRADS[0];
    let expected: Vec<f32> = (0..3)
        .map(|i| P[i] * (1.0 - LR_VALUE * wd) - LR_VALUE * g[i] / (g[i].abs() + 1e-7))
        .collect();
    close(&through_ort(&opt, 1), &[expected]);

    let opt = Optimizer::keras(OptimizerKind::Rmsprop, 0.0, 0.0);
    let mut p = P.to_vec();
    let mut v = [0.0f32; 3];
    let mut expected = Vec::new();
    for g in GRADS {
        for i in 0..3 {
            v[i] = 0.9 * v[i] + 0.1 * g[i] * g[i];
            p[i] -= LR_VALUE * g[i] / (v[i].sqrt() + 1e-7);
        }
        expected.push(p.clone());
    }
    close(&through_ort(&opt, 3), &expected);
}
