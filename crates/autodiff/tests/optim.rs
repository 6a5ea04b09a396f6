//! One to three optimizer steps run as graph ops through ORT, against the same formulas
//! computed directly in Rust (PyTorch's definitions; see `ortl_autodiff::optim`), and the
//! host-side update (`Optimizer::apply`) against the graph's, bit for bit.

use ndarray::{ArrayD, IxDyn};
use ortl_autodiff::optim::{
    BIAS_CORRECTION1, BIAS_CORRECTION2, LR, Optimizer, OptimizerKind, StepScalars,
};
use ortl_onnx::{DataType, Dim, GraphBuilder, Model, io};
use ortl_runtime::{Feed, SessionOptions};
use rand::{Rng, SeedableRng};

const P: [f32; 3] = [0.5, -1.0, 2.0];
const GRADS: [[f32; 3]; 3] = [[0.1, -0.2, 0.3], [0.05, 0.4, -0.1], [-0.3, 0.1, 0.2]];
const LR_VALUE: f32 = 0.1;

/// Runs `steps` updates through ORT; returns the parameter after each.
fn through_ort(opt: &Optimizer, steps: usize) -> Vec<Vec<f32>> {
    let grads: Vec<Vec<f32>> = GRADS.iter().take(steps).map(|g| g.to_vec()).collect();
    graph_steps(opt, &P, &grads).0
}

/// The same `steps` updates by `Optimizer::apply`.
fn on_host(opt: &Optimizer, steps: usize) -> Vec<Vec<f32>> {
    let grads: Vec<Vec<f32>> = GRADS.iter().take(steps).map(|g| g.to_vec()).collect();
    host_steps(opt, &P, &grads).0
}

/// One update per gradient by `Optimizer::apply`, the parameter split into `piece`-long
/// pieces as the trainer splits it between threads; the parameter after each, and the
/// final state.
fn host_steps_in_pieces(
    opt: &Optimizer,
    start: &[f32],
    grads: &[Vec<f32>],
    piece: usize,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut param = start.to_vec();
    let mut state = vec![vec![0.0f32; start.len()]; opt.states("p").len()];
    let mut history = Vec::new();
    for (t, grad) in grads.iter().enumerate() {
        let (bias_correction1, bias_correction2) = opt.bias_corrections(t as u64 + 1);
        let scalars = StepScalars {
            lr: LR_VALUE,
            bias_correction1,
            bias_correction2,
        };
        for (k, (p, g)) in param.chunks_mut(piece).zip(grad.chunks(piece)).enumerate() {
            let mut pieces: Vec<&mut [f32]> = state
                .iter_mut()
                .map(|s| &mut s[k * piece..(k * piece + p.len())])
                .collect();
            opt.apply(p, g, &mut pieces, scalars);
        }
        history.push(param.clone());
    }
    (history, state)
}

fn host_steps(
    opt: &Optimizer,
    start: &[f32],
    grads: &[Vec<f32>],
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    host_steps_in_pieces(opt, start, grads, start.len())
}

/// One update per gradient through ORT; the parameter after each, and the final state.
fn graph_steps(
    opt: &Optimizer,
    start: &[f32],
    grads: &[Vec<f32>],
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let len = start.len();
    let mut b = GraphBuilder::new("opt");
    // Shaped as a 1×1 convolution's weights: trailing 1s are what the scalars' rank is for.
    let dims = vec![
        Dim::Fixed(len as i64),
        Dim::Fixed(1),
        Dim::Fixed(1),
        Dim::Fixed(1),
    ];
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
    let new_p = b.identity(&new_p);
    b.output(&new_p, DataType::Float, dims.clone());
    let outs: Vec<String> = new_states.iter().map(|s| b.identity(s)).collect();
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
    let vec3 = |v: &[f32]| ArrayD::from_shape_vec(IxDyn(&[len, 1, 1, 1]), v.to_vec()).unwrap();
    let scalar = |v: f32| ArrayD::from_elem(IxDyn(&[]), v);
    let mut param = start.to_vec();
    let mut state: Vec<Vec<f32>> = vec![vec![0.0; len]; states.len()];
    let mut history = Vec::new();
    for (t, grad) in grads.iter().enumerate() {
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
    (history, state)
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
        close(&on_host(&opt, 3), &expected);
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
    close(&on_host(&opt, 3), &expected);
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
    close(&through_ort(&opt, 1), std::slice::from_ref(&expected));
    close(&on_host(&opt, 1), &[expected]);

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
    close(&on_host(&opt, 3), &expected);
}

/// The host update is the graph's, operation for operation: every optimizer, with and without
/// weight decay, gives the same parameters and state bits over three steps on random values
/// spanning six orders of magnitude, however the parameter is split between threads.
#[test]
fn the_host_update_equals_the_graph_update_bit_for_bit() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut values = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| rng.random_range(-1.0f32..1.0) * 10f32.powi(rng.random_range(-4..3)))
            .collect()
    };
    let len = 1000;
    let start = values(len);
    let grads: Vec<Vec<f32>> = (0..3).map(|_| values(len)).collect();
    let mut optimizers = Vec::new();
    for weight_decay in [0.0, 0.01] {
        for kind in [
            OptimizerKind::Adam,
            OptimizerKind::Adamw,
            OptimizerKind::Sgd,
            OptimizerKind::Nesterov,
            OptimizerKind::Rmsprop,
        ] {
            optimizers.push(Optimizer::keras(kind, weight_decay, 0.9));
        }
    }
    optimizers.push(Optimizer::keras(OptimizerKind::Sgd, 0.0, 0.0));
    for opt in &optimizers {
        let graph = graph_steps(opt, &start, &grads);
        let host = host_steps(opt, &start, &grads);
        let split = host_steps_in_pieces(opt, &start, &grads, 77);
        let bits = |(params, states): &(Vec<Vec<f32>>, Vec<Vec<f32>>)| {
            params
                .iter()
                .chain(states)
                .flatten()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&host), bits(&graph), "{opt:?}: host vs graph");
        assert_eq!(bits(&split), bits(&graph), "{opt:?}: split vs graph");
        assert_ne!(graph.0[2], start, "{opt:?} moved the parameter");
    }
}
