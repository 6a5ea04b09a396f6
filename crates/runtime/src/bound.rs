//! State that stays on a session's device between runs (training's parameters, optimizer
//! state and BatchNorm statistics), bound with IoBinding.
//!
//! Each state tensor has two buffers allocated by ONNX Runtime on the session's device. A run
//! reads `current` and writes its next value straight into `spare` (bound as the output), then
//! the two swap: nothing is copied through the host between steps, on the CPU or on CUDA.
//! A failed run leaves `current` untouched.
//!
//! A tensor the host updates itself (the CPU's fused optimizer update) is bound the same way,
//! but its output is what the host updates it from (its gradient): that buffer stays apart
//! and the host changes `current` in place after the run ([`PingPong::host_updates`]).

use std::cell::Cell;
use std::collections::BTreeMap;

use ndarray::{ArrayD, ArrayViewD};
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::Session;
use ort::value::Tensor;

use crate::exec::{Feed, value};
use crate::{Device, RuntimeError};

/// One state tensor: the graph input it feeds, the graph output its update comes from,
/// and its initial value.
pub struct StateTensor {
    pub input: String,
    pub output: String,
    pub value: ArrayD<f32>,
    pub update: Update,
    /// The output buffer's shape where it is not the value's: a host-updated gradient bound
    /// as its GEMM's result (the same number of values).
    pub output_shape: Option<Vec<usize>>,
}

/// What a state tensor's graph output is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// Its next value: the buffers swap after each run.
    Next,
    /// What the host updates it from in place (a gradient); host-readable memory only.
    Host,
}

/// Host↔device copies the state has made since it was built: uploads of initial or
/// restored values, and host copies read back to export or checkpoint. A training step
/// itself adds to neither.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateTraffic {
    pub writes: usize,
    pub written_bytes: usize,
    pub reads: usize,
    pub read_bytes: usize,
}

/// What crossed between the host and the session in the last run, by value name: the
/// feeds copied in and the outputs copied back (state tensors never appear here).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunTraffic {
    pub fed: Vec<(String, usize)>,
    pub returned: Vec<(String, usize)>,
}

pub struct PingPong {
    inputs: Vec<String>,
    outputs: Vec<String>,
    current: Vec<Tensor<f32>>,
    /// The output buffers: the next value ([`Update::Next`]) or the host's input
    /// ([`Update::Host`]).
    spare: Vec<Tensor<f32>>,
    updates: Vec<Update>,
    /// The session's other outputs (loss, probabilities), returned on the host.
    host_outputs: Vec<String>,
    host: MemoryInfo<'static>,
    /// A Cell: reading state back for export is logically `&self`.
    traffic: Cell<StateTraffic>,
    last_run: RunTraffic,
}

impl PingPong {
    /// Allocates both buffers of every tensor on `device` and uploads the initial values.
    pub fn new(
        session: &Session,
        device: Device,
        tensors: Vec<StateTensor>,
    ) -> Result<Self, RuntimeError> {
        if let Some(tensor) = tensors.iter().find(|t| t.update == Update::Host)
            && device != Device::Cpu
        {
            return Err(RuntimeError::HostUpdateOffCpu {
                name: tensor.input.clone(),
                device,
            });
        }
        let allocator = match device {
            Device::Cpu => Allocator::default(),
            Device::Cuda(id) => Allocator::new(
                session,
                MemoryInfo::new(
                    AllocationDevice::CUDA,
                    id as i32,
                    AllocatorType::Device,
                    MemoryType::Default,
                )?,
            )?,
        };
        let outputs: Vec<String> = tensors.iter().map(|t| t.output.clone()).collect();
        let host_outputs = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .filter(|name| !outputs.contains(name))
            .collect();
        let mut state = Self {
            inputs: Vec::new(),
            outputs,
            current: Vec::new(),
            spare: Vec::new(),
            updates: Vec::new(),
            host_outputs,
            host: MemoryInfo::new(
                AllocationDevice::CPU,
                0,
                AllocatorType::Device,
                MemoryType::Default,
            )?,
            traffic: Cell::default(),
            last_run: RunTraffic::default(),
        };
        for tensor in tensors {
            let shape = tensor.value.shape().to_vec();
            let output_shape = tensor.output_shape.unwrap_or_else(|| shape.clone());
            assert_eq!(
                output_shape.iter().product::<usize>(),
                tensor.value.len(),
                "{}: an output buffer holds as many values as its tensor",
                tensor.output
            );
            state.current.push(Tensor::new(&allocator, shape)?);
            state.spare.push(Tensor::new(&allocator, output_shape)?);
            state.inputs.push(tensor.input);
            state.updates.push(tensor.update);
            let index = state.inputs.len() - 1;
            state.write(index, tensor.value.view())?;
        }
        Ok(state)
    }

    /// The graph input names, in order.
    pub fn names(&self) -> &[String] {
        &self.inputs
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.inputs.iter().position(|n| n == name)
    }

    /// Copies between the host and the state buffers so far.
    pub fn traffic(&self) -> StateTraffic {
        self.traffic.get()
    }

    /// What the last run copied in and out.
    pub fn last_run(&self) -> &RunTraffic {
        &self.last_run
    }

    /// A host copy of tensor `index`'s current value.
    pub fn read(&self, index: usize) -> Result<ArrayD<f32>, RuntimeError> {
        let tensor = &self.current[index];
        let array = if tensor.memory_info().is_cpu_accessible() {
            tensor.extract_array().to_owned()
        } else {
            tensor
                .to(AllocationDevice::CPU, 0)?
                .extract_array()
                .to_owned()
        };
        let mut traffic = self.traffic.get();
        traffic.reads += 1;
        traffic.read_bytes += array.len() * size_of::<f32>();
        self.traffic.set(traffic);
        Ok(array)
    }

    /// Replaces tensor `index`'s current value; the shape must match.
    pub fn write(&mut self, index: usize, value: ArrayViewD<'_, f32>) -> Result<(), RuntimeError> {
        let tensor = &mut self.current[index];
        let shape: Vec<usize> = tensor.shape().iter().map(|&d| d as usize).collect();
        if value.shape() != shape.as_slice() {
            return Err(RuntimeError::Shape {
                name: self.inputs[index].clone(),
                expected: shape,
                found: value.shape().to_vec(),
            });
        }
        if tensor.memory_info().is_cpu_accessible() {
            tensor.extract_array_mut().assign(&value);
        } else {
            Tensor::from_array(value.to_owned())?.copy_into(tensor)?;
        }
        let mut traffic = self.traffic.get();
        traffic.writes += 1;
        traffic.written_bytes += value.len() * size_of::<f32>();
        self.traffic.set(traffic);
        Ok(())
    }

    /// Runs `session` on `feeds` plus the current state; the next state is written into the
    /// spare buffers, which then become current ([`Update::Next`]; the host applies the
    /// [`Update::Host`] ones with [`PingPong::host_updates`]). Returns every other output on
    /// the host.
    pub fn run(
        &mut self,
        session: &mut Session,
        feeds: Vec<(&str, Feed)>,
    ) -> Result<BTreeMap<String, ArrayD<f32>>, RuntimeError> {
        let others = self.run_inner(session, feeds)?;
        for (i, update) in self.updates.iter().enumerate() {
            if *update == Update::Next {
                std::mem::swap(&mut self.current[i], &mut self.spare[i]);
            }
        }
        Ok(others)
    }

    /// The [`Update::Host`] tensors, in order: each current value to update in place, with
    /// what the last run wrote for it.
    pub fn host_updates(&mut self) -> Vec<(&mut [f32], &[f32])> {
        self.current
            .iter_mut()
            .zip(&self.spare)
            .zip(&self.updates)
            .filter(|(_, update)| **update == Update::Host)
            .map(|((value, written), _)| (value.extract_tensor_mut().1, written.extract_tensor().1))
            .collect()
    }

    /// As [`PingPong::run`], but the state is left as it was (the next values are discarded).
    pub fn run_without_update(
        &mut self,
        session: &mut Session,
        feeds: Vec<(&str, Feed)>,
    ) -> Result<BTreeMap<String, ArrayD<f32>>, RuntimeError> {
        self.run_inner(session, feeds)
    }

    fn run_inner(
        &mut self,
        session: &mut Session,
        feeds: Vec<(&str, Feed)>,
    ) -> Result<BTreeMap<String, ArrayD<f32>>, RuntimeError> {
        let mut binding = session.create_binding()?;
        let mut traffic = RunTraffic::default();
        for (name, feed) in feeds {
            traffic.fed.push((name.to_string(), feed.bytes()));
            binding.bind_input(name, &value(feed)?)?;
        }
        for (i, name) in self.inputs.iter().enumerate() {
            binding.bind_input(name, &self.current[i])?;
            binding.bind_output(self.outputs[i].as_str(), &mut self.spare[i])?;
        }
        for name in &self.host_outputs {
            binding.bind_output_to_device(name.as_str(), &self.host)?;
        }
        let outputs = session.run_binding(&binding)?;
        let mut result = BTreeMap::new();
        for name in &self.host_outputs {
            let array = outputs[name.as_str()]
                .try_extract_array::<f32>()?
                .to_owned();
            traffic
                .returned
                .push((name.clone(), array.len() * size_of::<f32>()));
            result.insert(name.clone(), array);
        }
        self.last_run = traffic;
        Ok(result)
    }
}
