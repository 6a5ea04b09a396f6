//! Central finite differences against ortl's gradients, through ONNX Runtime's CPU EP:
//! the check the rule tests (`gradients.rs`) and the block tests (`blocks.rs`) share.
#![allow(dead_code)] // each test binary uses part of it

use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};
use ortl_autodiff::{batch_norm, gradients};
use ortl_onnx::{DataType, Dim, GraphBuilder, Model, Tensor};
use ortl_runtime::Feed;
use ortl_runtime::Session;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One input of a case: name, dims, whether it is differentiated, and its value range.
pub struct Input {
    pub name: &'static str,
    pub dims: Vec<usize>,
    pub grad: bool,
    pub range: (f32, f32),
}

pub fn input(name: &'static str, dims: &[usize]) -> Input {
    Input {
        name,
        dims: dims.to_vec(),
        grad: true,
        range: (-1.0, 1.0),
    }
}

pub fn positive(name: &'static str, dims: &[usize]) -> Input {
    Input {
        name,
        dims: dims.to_vec(),
        grad: true,
        range: (0.5, 2.0),
    }
}

/// Values far apart, so a ±ε step never changes which element a max picks.
pub fn spread(name: &'static str, dims: &[usize]) -> Input {
    Input {
        name,
        dims: dims.to_vec(),
        grad: true,
        range: (-50.0, 50.0),
    }
}

pub fn fixed(name: &'static str, dims: &[usize]) -> Input {
    Input {
        name,
        dims: dims.to_vec(),
        grad: false,
        range: (0.5, 1.5),
    }
}

/// A differentiated input drawn from `range` (a LayerNorm scale near 1, say).
pub fn ranged(name: &'static str, dims: &[usize], range: (f32, f32)) -> Input {
    Input {
        name,
        dims: dims.to_vec(),
        grad: true,
        range,
    }
}

/// How far the analytic gradients lay from the numeric ones, over the coordinates sampled,
/// and the graph that computed them (forward and backward).
pub struct Checked {
    pub max_abs: f32,
    /// |analytic − numeric| / |numeric| where |numeric| ≥ 0.01.
    pub max_rel: f32,
    pub coordinates: usize,
    pub backward: Model,
}

fn run(
    s: &mut Session,
    values: &HashMap<&str, ArrayD<f32>>,
) -> std::collections::BTreeMap<String, ArrayD<f32>> {
    let feeds = values
        .iter()
        .map(|(k, v)| (*k, Feed::F32(v.clone())))
        .collect();
    ortl_runtime::run(s, feeds).unwrap()
}

/// Builds, differentiates and checks one case.
pub fn check(
    case: &str,
    inputs: Vec<Input>,
    forward: impl Fn(&mut GraphBuilder, &[String]) -> String,
) -> Checked {
    let mut rng = ChaCha8Rng::seed_from_u64(case.bytes().map(u64::from).sum());
    let mut b = GraphBuilder::new(case);
    let names: Vec<String> = inputs
        .iter()
        .map(|i| {
            b.input(
                i.name,
                DataType::Float,
                i.dims.iter().map(|&d| Dim::Fixed(d as i64)).collect(),
            )
        })
        .collect();
    let y = forward(&mut b, &names);
    let y_shape: Vec<i64> = ortl_autodiff::rules::registry().infer(b.graph()).unwrap()[&y]
        .shape
        .iter()
        .map(|d| d.unwrap())
        .collect();
    let n: usize = y_shape.iter().product::<i64>() as usize;
    let r = b.constant(Tensor::f32(
        &y_shape,
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect(),
    ));
    let weighted = b.mul(&y, &r);
    let loss = b.reduce_sum(&weighted, None, false);
    b.output(&loss, DataType::Float, vec![]);
    // ortl's own operators (BatchNormTraining) run lowered to standard ones.
    let mut forward_graph = b.graph().clone();
    batch_norm::lower(&mut forward_graph).unwrap();
    let forward_model = Model::new(forward_graph);

    let shapes = ortl_autodiff::rules::registry().infer(b.graph()).unwrap();
    let wrt: Vec<String> = inputs
        .iter()
        .filter(|i| i.grad)
        .map(|i| i.name.to_string())
        .collect();
    let grads = gradients(&mut b, &loss, &wrt, &shapes).unwrap_or_else(|e| panic!("{case}: {e}"));
    // Gradients may share a value (Add passes G to both operands): name each via Identity.
    let named: Vec<(String, String)> = grads
        .of
        .iter()
        .map(|(param, grad)| (param.clone(), b.identity(grad)))
        .collect();
    let mut graph = b.finish();
    for (param, value) in named {
        let renamed = format!("grad_{param}");
        ortl_onnx::passes::rename_value(&mut graph, &value, &renamed);
        graph.outputs.push(ortl_onnx::ValueInfo {
            name: renamed,
            dtype: DataType::Float,
            shape: None,
        });
    }
    batch_norm::lower(&mut graph).unwrap();
    let backward_model = Model::new(graph);
    let mut checked = Checked {
        max_abs: 0.0,
        max_rel: 0.0,
        coordinates: 0,
        backward: backward_model.clone(),
    };

    let values: HashMap<&str, ArrayD<f32>> = inputs
        .iter()
        .map(|i| {
            let v =
                ArrayD::from_shape_fn(IxDyn(&i.dims), |_| rng.random_range(i.range.0..i.range.1));
            (i.name, v)
        })
        .collect();
    let analytic = run(
        &mut ortl_runtime::testing::session(&backward_model),
        &values,
    );
    let mut forward_session = ortl_runtime::testing::session(&forward_model);
    let eps = 1e-2f32;
    for i in inputs.iter().filter(|i| i.grad) {
        let grad = &analytic[&format!("grad_{}", i.name)];
        assert_eq!(
            grad.shape(),
            i.dims.as_slice(),
            "{case}: shape of d/d{}",
            i.name
        );
        let total = grad.len();
        for k in 0..total.min(16) {
            let flat = if total <= 16 {
                k
            } else {
                (k * 7919 + 13) % total
            };
            let mut at = |delta: f32| {
                let mut moved = values.clone();
                let v = moved.get_mut(i.name).unwrap();
                *v.as_slice_mut().unwrap().get_mut(flat).unwrap() += delta;
                run(&mut forward_session, &moved)[&loss]
                    .iter()
                    .next()
                    .copied()
                    .unwrap()
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            let got = grad.as_slice().unwrap()[flat];
            let error = (numeric - got).abs();
            checked.max_abs = checked.max_abs.max(error);
            if numeric.abs() >= 1e-2 {
                checked.max_rel = checked.max_rel.max(error / numeric.abs());
            }
            checked.coordinates += 1;
            assert!(
                (numeric - got).abs() <= 3e-3 + 3e-2 * got.abs(),
                "{case}: d/d{}[{flat}] analytic {got} vs numeric {numeric}",
                i.name
            );
        }
    }
    checked
}
