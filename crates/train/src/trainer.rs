//! The step runner: owns the step session and the training state (parameters, optimizer
//! state, BatchNorm statistics), feeds one batch per step.
//!
//! The state lives on the session's device in ping-pong buffers bound with IoBinding
//! ([`ortl_runtime::PingPong`]): a step writes the next state where the following step reads
//! it, so weights never cross the host between steps. Only the batch goes in and the loss and
//! probabilities come out; the host reads the state back when it exports or checkpoints.
//!
//! On the CPU the optimizer runs on the host ([`crate::graph::UpdateOn::Host`]): the graph writes each
//! parameter's gradient into a buffer of its own and the host updates the parameter and its
//! optimizer state in place, in one pass on all threads, where the graph's element-wise ops
//! make a dozen (Adam). The same float operations, so the same parameters to the bit.

use ndarray::{Array1, Array2, ArrayD, IxDyn};
use ortl_autodiff::optim::{BIAS_CORRECTION1, BIAS_CORRECTION2, LR, Optimizer, StepScalars};
use ortl_models::heads::HeadOutput;
use ortl_onnx::{Model, Tensor, TensorData};
use ortl_runtime::{Feed, PingPong, Runtime, Session, SessionOptions, StateTensor, Update};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::fit::State;
use crate::graph::{
    LOSS, POSITIVE_WEIGHT, PROBABILITIES, SAMPLE_WEIGHT, StepGraph, TARGET, TARGET_MASK, TrainSpec,
    build_step, gradient, next,
};

/// Elements per piece of the host update: a piece is one thread's unit of work.
const UPDATE_PIECE: usize = 1 << 16;

/// What a step reads: images, or a frozen backbone's cached pooled features.
pub enum Input {
    /// `uint8 [N, H, W, 3]`.
    Images(ArrayD<u8>),
    /// `float [N, C]`.
    Features(ArrayD<f32>),
}

/// What a batch's images are labelled with.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a> {
    /// One class index per image; the target is its one-hot row, smoothed.
    Classes(&'a [usize]),
    /// Per image and finding: present, absent or unknown. An unknown label is left out of
    /// the loss; a finding's positive term is weighted by `positive_weights[finding]`
    /// (PyTorch's `pos_weight`).
    Findings {
        labels: &'a [&'a [Option<bool>]],
        positive_weights: &'a [f32],
    },
}

impl Targets<'_> {
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes(labels) => labels.len(),
            Targets::Findings { labels, .. } => labels.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The loss's target `[N, C]` with label smoothing ε (one-hot rows become
    /// (1 − ε)·one-hot + ε/C; a finding's 0/1 becomes t·(1 − ε) + ε/2, as Keras' binary
    /// cross-entropy smooths), binary cross-entropy's mask (0 for an unknown label) and the
    /// weight of each positive term, each `[N, C]`.
    pub fn matrices(&self, classes: usize, smoothing: f32) -> [Array2<f32>; 3] {
        let n = self.len();
        match self {
            Targets::Classes(labels) => [
                Array2::from_shape_fn((n, classes), |(i, j)| {
                    let hot = if labels[i] == j { 1.0 } else { 0.0 };
                    hot * (1.0 - smoothing) + smoothing / classes as f32
                }),
                Array2::ones((n, classes)),
                Array2::ones((n, classes)),
            ],
            Targets::Findings {
                labels,
                positive_weights,
            } => {
                [
                    Array2::from_shape_fn((n, classes), |(i, j)| {
                        let t = if labels[i][j] == Some(true) { 1.0 } else { 0.0 };
                        t * (1.0 - smoothing) + smoothing / 2.0
                    }),
                    Array2::from_shape_fn((n, classes), |(i, j)| {
                        if labels[i][j].is_some() { 1.0 } else { 0.0 }
                    }),
                    Array2::from_shape_fn((n, classes), |(_, j)| positive_weights[j]),
                ]
            }
        }
    }
}

/// One training batch.
pub struct Batch<'a> {
    pub input: Input,
    pub targets: Targets<'a>,
    /// Per-sample loss weights (class weights), `[N]`.
    pub weights: Vec<f32>,
}

/// What one step reports.
#[derive(Clone, Debug)]
pub struct StepResult {
    pub loss: f32,
    /// `[N, C]` probabilities of the forward pass (before the update).
    pub probabilities: Array2<f32>,
}

pub struct Trainer {
    pub step_graph: StepGraph,
    session: Session,
    /// Parameters, optimizer state (where the graph updates it) and BatchNorm statistics,
    /// on the session's device.
    state: PingPong,
    /// The optimizer state the host updates, where it applies the optimizer.
    host: Option<HostOptimizer>,
    /// Optimizer steps taken (Adam's t).
    pub steps_done: u64,
    classifier: Model,
    spec: TrainSpec,
    classes: usize,
    l2: Vec<(String, f32)>,
    /// Label smoothing ε (see [`Targets::matrices`]).
    pub label_smoothing: f32,
    /// What the blocked-convolution pass rewrote; `None`: the plain graph runs.
    pub blocked: Option<ortl_autodiff::blocked::Blocked>,
}

/// The optimizer state of a host-side update, with the threads it runs on.
struct HostOptimizer {
    /// Per parameter (in [`StepGraph::params`] order, as [`PingPong::host_updates`] returns
    /// them): its state tensors, named, in [`ortl_autodiff::optim::Optimizer::states`] order.
    states: Vec<Vec<(String, ArrayD<f32>)>>,
    threads: rayon::ThreadPool,
}

impl HostOptimizer {
    /// Applies `optimizer` to every parameter from the gradient the last run wrote for it.
    /// Each parameter goes in pieces, each with the matching pieces of its gradient and
    /// state: the update is element-wise, so any split gives the same bits. A gradient in
    /// `[O, kh, kw, C]` rows is split at whole rows and reordered per piece.
    fn update(
        &mut self,
        optimizer: &Optimizer,
        state: &mut PingPong,
        step_graph: &StepGraph,
        scalars: StepScalars,
    ) {
        let mut pieces = Vec::new();
        for (((param, grad), states), name) in state
            .host_updates()
            .into_iter()
            .zip(&mut self.states)
            .zip(&step_graph.params)
        {
            let rows = step_graph.ohwi_gradients.get(name).copied();
            let piece = match rows {
                Some([channels, taps]) => {
                    (UPDATE_PIECE / (channels * taps)).max(1) * channels * taps
                }
                None => UPDATE_PIECE,
            };
            let mut state_pieces: Vec<_> = states
                .iter_mut()
                .map(|(_, s)| {
                    s.as_slice_mut()
                        .expect("state is contiguous")
                        .chunks_mut(piece)
                })
                .collect();
            for (p, g) in param.chunks_mut(piece).zip(grad.chunks(piece)) {
                let s: Vec<&mut [f32]> = state_pieces
                    .iter_mut()
                    .map(|c| c.next().expect("state is shaped as its parameter"))
                    .collect();
                pieces.push((p, g, s, rows));
            }
        }
        // One reorder buffer per thread, reused across its pieces.
        self.threads.install(|| {
            pieces
                .into_par_iter()
                .for_each_init(Vec::new, |oihw, (p, g, mut s, rows)| match rows {
                    Some([channels, taps]) => {
                        oihw_from_rows(g, channels, taps, oihw);
                        optimizer.apply(p, oihw, &mut s, scalars)
                    }
                    None => optimizer.apply(p, g, &mut s, scalars),
                })
        });
    }

    fn get(&self, name: &str) -> Option<&ArrayD<f32>> {
        self.states
            .iter()
            .flatten()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut ArrayD<f32>> {
        self.states
            .iter_mut()
            .flatten()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
    #[error(transparent)]
    Runtime(#[from] ortl_runtime::RuntimeError),
    #[error("ONNX Runtime: {0}")]
    Ort(String),
}

impl Trainer {
    pub fn new(
        runtime: &Runtime,
        options: &SessionOptions,
        classifier: Model,
        head: &HeadOutput,
        spec: TrainSpec,
    ) -> Result<Self, TrainError> {
        Self::build(runtime, options, classifier, head, spec, None)
    }

    /// A head-only trainer whose steps read cached pooled features (`[N, width]`) instead
    /// of images: the frozen backbone runs once per stored image, not once per epoch.
    pub fn on_features(
        runtime: &Runtime,
        options: &SessionOptions,
        classifier: Model,
        head: &HeadOutput,
        spec: TrainSpec,
        width: usize,
    ) -> Result<Self, TrainError> {
        Self::build(runtime, options, classifier, head, spec, Some(width))
    }

    fn build(
        runtime: &Runtime,
        options: &SessionOptions,
        classifier: Model,
        head: &HeadOutput,
        spec: TrainSpec,
        features: Option<usize>,
    ) -> Result<Self, TrainError> {
        let mut spec = spec;
        spec.update_on = spec.update_on.resolve(options.device)?;
        let mut step_graph = build_step(&classifier, head, &spec)?;
        if let Some(width) = features {
            if spec.trainable != crate::graph::Trainable::Head {
                return Err(TrainError::Ort(
                    "cached features need a frozen backbone".into(),
                ));
            }
            step_graph = crate::graph::on_features(step_graph, &head.pooled, width);
        }
        let blocked = crate::graph::apply_conv_layout(
            &mut step_graph,
            spec.conv_layout,
            options.device,
            runtime.nchwc_block(),
        )?;
        let session = runtime.load_model(options, &step_graph.model)?;
        let initial = |name: &str| to_array(&classifier.graph.initializers[name]);
        let graph_updated = |name: &str, value| StateTensor {
            input: name.to_string(),
            output: next(name),
            value,
            update: Update::Next,
            output_shape: None,
        };
        // Each parameter with its optimizer state (zeros, shaped as the parameter): bound
        // with `next/` outputs where the graph updates them, else the parameter bound with
        // its gradient output and the state held by the host.
        let mut tensors = Vec::new();
        let mut host_states = Vec::new();
        for param in &step_graph.params {
            let value = initial(param);
            let dim = value.raw_dim();
            let states = spec.optimizer.states(param).into_iter();
            let states = states.map(move |name| (name, ArrayD::zeros(dim.clone())));
            if step_graph.host_update {
                host_states.push(states.collect());
                tensors.push(StateTensor {
                    input: param.clone(),
                    output: gradient(param),
                    value,
                    update: Update::Host,
                    output_shape: step_graph.gradient_shapes.get(param).cloned(),
                });
            } else {
                tensors.push(graph_updated(param, value));
                tensors.extend(states.map(|(name, zeros)| graph_updated(&name, zeros)));
            }
        }
        for stat in &step_graph.bn_stats {
            tensors.push(graph_updated(stat, initial(stat)));
        }
        let host = match step_graph.host_update {
            true => Some(HostOptimizer {
                states: host_states,
                threads: rayon::ThreadPoolBuilder::new()
                    .num_threads(options.threads.unwrap_or(0))
                    .build()
                    .map_err(|e| {
                        TrainError::Ort(format!("cannot start the update threads: {e}"))
                    })?,
            }),
            false => None,
        };
        let state = PingPong::new(&session, options.device, tensors)?;
        let classes = head_classes(&classifier);
        Ok(Self {
            step_graph,
            session,
            state,
            host,
            steps_done: 0,
            classifier,
            spec,
            classes,
            l2: head.l2.clone(),
            label_smoothing: 0.0,
            blocked,
        })
    }

    pub fn spec(&self) -> &TrainSpec {
        &self.spec
    }

    /// The L2-penalised parameters and their coefficients (trainable ones only).
    pub fn l2_terms(&self) -> Vec<(String, f32)> {
        self.l2
            .iter()
            .filter(|(name, _)| self.state.index(name).is_some())
            .cloned()
            .collect()
    }

    /// The state bound on the session's device: what it holds, what it has copied to and
    /// from the host, and what the last step moved.
    pub fn bound_state(&self) -> &PingPong {
        &self.state
    }

    /// A host copy of every state tensor, by name.
    pub fn state(&self) -> Result<State, TrainError> {
        let mut state = State::new();
        for (i, name) in self.state.names().iter().enumerate() {
            state.insert(name.clone(), self.state.read(i)?);
        }
        for (name, value) in self.host.iter().flat_map(|h| h.states.iter().flatten()) {
            state.insert(name.clone(), value.clone());
        }
        Ok(state)
    }

    /// A host copy of one state tensor.
    pub fn value(&self, name: &str) -> Result<ArrayD<f32>, TrainError> {
        if let Some(value) = self.host.as_ref().and_then(|h| h.get(name)) {
            return Ok(value.clone());
        }
        let index = self
            .state
            .index(name)
            .ok_or_else(|| TrainError::Ort(format!("no state tensor {name}")))?;
        Ok(self.state.read(index)?)
    }

    /// Overwrites the state tensors named in `state` (a checkpoint, a restored best epoch);
    /// names this trainer does not hold (another phase's optimizer state) are skipped.
    pub fn set_state(&mut self, state: &State) -> Result<(), TrainError> {
        for (name, value) in state {
            if let Some(index) = self.state.index(name) {
                self.state.write(index, value.view())?;
            } else if let Some(held) = self.host.as_mut().and_then(|h| h.get_mut(name)) {
                if held.shape() != value.shape() {
                    return Err(ortl_runtime::RuntimeError::Shape {
                        name: name.clone(),
                        expected: held.shape().to_vec(),
                        found: value.shape().to_vec(),
                    }
                    .into());
                }
                held.assign(value);
            }
        }
        Ok(())
    }

    /// One optimizer step at learning rate `lr`; dropout masks are drawn from `rng`.
    pub fn step(
        &mut self,
        batch: &Batch,
        lr: f32,
        rng: &mut ChaCha8Rng,
    ) -> Result<StepResult, TrainError> {
        let result = self.run(batch, lr, rng, true)?;
        self.steps_done += 1;
        Ok(result)
    }

    /// The forward pass of a step (loss and probabilities) without updating anything.
    pub fn peek(&mut self, batch: &Batch, rng: &mut ChaCha8Rng) -> Result<StepResult, TrainError> {
        self.run(batch, 0.0, rng, false)
    }

    fn run(
        &mut self,
        batch: &Batch,
        lr: f32,
        rng: &mut ChaCha8Rng,
        update: bool,
    ) -> Result<StepResult, TrainError> {
        let n = batch.targets.len();
        let [target, mask, positive] = batch.targets.matrices(self.classes, self.label_smoothing);
        let mut feeds: Vec<(&str, Feed)> = vec![
            (
                self.step_graph.input.as_str(),
                match &batch.input {
                    Input::Images(images) => Feed::U8(images.clone()),
                    Input::Features(features) => Feed::F32(features.clone()),
                },
            ),
            (TARGET, Feed::F32(target.into_dyn())),
            (
                SAMPLE_WEIGHT,
                Feed::F32(Array1::from(batch.weights.clone()).into_dyn()),
            ),
        ];
        if self.spec.loss.weighs_elements() {
            feeds.push((TARGET_MASK, Feed::F32(mask.into_dyn())));
            feeds.push((POSITIVE_WEIGHT, Feed::F32(positive.into_dyn())));
        }
        let t = self.steps_done + 1;
        if self.host.is_none() {
            feeds.push((LR, Feed::F32(scalar(lr))));
        }
        if self.host.is_none() && self.spec.optimizer.uses_bias_correction() {
            let (bc1, bc2) = self.spec.optimizer.bias_corrections(t);
            feeds.push((BIAS_CORRECTION1, Feed::F32(scalar(bc1))));
            feeds.push((BIAS_CORRECTION2, Feed::F32(scalar(bc2))));
        }
        for (mask, width, rate) in &self.step_graph.masks {
            let keep = 1.0 - rate;
            let values = Array2::from_shape_fn((n, *width), |_| {
                if rng.random::<f32>() < keep {
                    1.0 / keep
                } else {
                    0.0
                }
            });
            feeds.push((mask.as_str(), Feed::F32(values.into_dyn())));
        }
        let mut outputs = match update {
            true => self.state.run(&mut self.session, feeds)?,
            false => self.state.run_without_update(&mut self.session, feeds)?,
        };
        if update && let Some(host) = &mut self.host {
            let (bias_correction1, bias_correction2) = self.spec.optimizer.bias_corrections(t);
            let scalars = StepScalars {
                lr,
                bias_correction1,
                bias_correction2,
            };
            host.update(
                &self.spec.optimizer,
                &mut self.state,
                &self.step_graph,
                scalars,
            );
        }
        let loss = outputs[LOSS].iter().next().copied().unwrap_or(f32::NAN);
        let probabilities = outputs
            .remove(PROBABILITIES)
            .and_then(|p| p.into_dimensionality().ok())
            .ok_or_else(|| TrainError::Ort("no probabilities output".into()))?;
        Ok(StepResult {
            loss,
            probabilities,
        })
    }

    /// The inference classifier with the current parameters and statistics.
    pub fn export(&self) -> Result<Model, TrainError> {
        let mut model = self.classifier.clone();
        for name in self
            .step_graph
            .params
            .iter()
            .chain(&self.step_graph.bn_stats)
        {
            let value = self.value(name)?;
            let dims: Vec<i64> = value.shape().iter().map(|&d| d as i64).collect();
            model.graph.initializers.insert(
                name.clone(),
                Tensor::f32(&dims, value.iter().copied().collect()),
            );
        }
        Ok(model)
    }
}

/// Whole `[kh, kw, C]` rows of a convolution kernel's gradient in OIHW's `[C, kh, kw]` order,
/// into `oihw` (resized to fit).
fn oihw_from_rows(rows: &[f32], channels: usize, taps: usize, oihw: &mut Vec<f32>) {
    oihw.resize(rows.len(), 0.0);
    for (row, out) in rows
        .chunks(channels * taps)
        .zip(oihw.chunks_mut(channels * taps))
    {
        for (tap, values) in row.chunks(channels).enumerate() {
            for (channel, &value) in values.iter().enumerate() {
                out[channel * taps + tap] = value;
            }
        }
    }
}

fn scalar(value: f32) -> ArrayD<f32> {
    ArrayD::from_elem(IxDyn(&[]), value)
}

fn to_array(tensor: &Tensor) -> ArrayD<f32> {
    let dims: Vec<usize> = tensor.dims.iter().map(|&d| d as usize).collect();
    match &tensor.data {
        TensorData::F32(v) => {
            ArrayD::from_shape_vec(IxDyn(&dims), v.clone()).expect("dims match values")
        }
        _ => panic!("state tensors are float32"),
    }
}

fn head_classes(model: &Model) -> usize {
    model.graph.outputs[0]
        .dims()
        .and_then(|d| d.get(1).copied().flatten())
        .map_or(0, |c| c as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_rows_reorder_to_oihw() {
        // Two output channels of a 1×2 kernel over 3 input channels: rows [O, kh, kw, C].
        let rows: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut oihw = vec![9.0; 5];
        oihw_from_rows(&rows, 3, 2, &mut oihw);
        // OIHW[o][c][t] = rows[o][t][c].
        assert_eq!(oihw, [0., 3., 1., 4., 2., 5., 6., 9., 7., 10., 8., 11.]);
    }
}
