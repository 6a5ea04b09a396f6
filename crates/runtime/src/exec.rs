//! Running a session on host arrays: the simple path for inference, checks and tests
//! (training binds its buffers on the device instead).

use std::collections::BTreeMap;

use ndarray::ArrayD;
use ort::session::Session;
use ort::value::Tensor;

use crate::RuntimeError;

/// One named input.
pub enum Feed {
    F32(ArrayD<f32>),
    U8(ArrayD<u8>),
    I64(ArrayD<i64>),
}

impl Feed {
    /// Size of the data in bytes.
    pub fn bytes(&self) -> usize {
        match self {
            Feed::F32(a) => a.len() * size_of::<f32>(),
            Feed::U8(a) => a.len(),
            Feed::I64(a) => a.len() * size_of::<i64>(),
        }
    }
}

/// Runs `session` on `feeds`; returns every output as float32, by name.
pub fn run(
    session: &mut Session,
    feeds: Vec<(&str, Feed)>,
) -> Result<BTreeMap<String, ArrayD<f32>>, RuntimeError> {
    let mut inputs: Vec<(
        std::borrow::Cow<'_, str>,
        ort::session::SessionInputValue<'_>,
    )> = Vec::new();
    for (name, feed) in feeds {
        inputs.push((name.to_string().into(), value(feed)?.into()));
    }
    let outputs = session.run(inputs)?;
    let mut result = BTreeMap::new();
    for (name, value) in outputs.iter() {
        result.insert(
            name.to_string(),
            value.try_extract_array::<f32>()?.to_owned(),
        );
    }
    Ok(result)
}

/// The ONNX Runtime value of a feed (owned: no copy).
pub(crate) fn value(feed: Feed) -> Result<ort::value::DynValue, RuntimeError> {
    Ok(match feed {
        Feed::F32(a) => Tensor::from_array(a)?.into_dyn(),
        Feed::U8(a) => Tensor::from_array(a)?.into_dyn(),
        Feed::I64(a) => Tensor::from_array(a)?.into_dyn(),
    })
}
