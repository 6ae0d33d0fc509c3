//! numpy arrays <-> gated tensors. Outputs hand their buffer to numpy (no
//! copy); inputs are read as float32 (numpy converts other dtypes, torch
//! tensors go through `.numpy()`) and copied once into the tensor, which owns
//! its data.

use gated::Tensor;
use numpy::{AllowTypeChange, PyArray1, PyArrayLikeDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// A torch tensor (anything with `.detach()` and `.numpy()` that is not an
/// ndarray) as a numpy array; other objects unchanged.
fn numpy_view<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if obj.cast::<numpy::PyUntypedArray>().is_err()
        && obj.hasattr("detach")?
        && obj.hasattr("numpy")?
    {
        let t = obj.call_method0("detach")?;
        let t = if t.hasattr("cpu")? {
            t.call_method0("cpu")?
        } else {
            t
        };
        return t.call_method0("numpy");
    }
    Ok(obj.clone())
}

/// `obj` (ndarray, nested sequence, torch tensor) as a tensor; `what` names
/// the argument in errors.
pub fn tensor_from(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Tensor> {
    let obj = numpy_view(obj)?;
    let arr: PyArrayLikeDyn<'_, f32, AllowTypeChange> = obj
        .extract()
        .map_err(|e| PyValueError::new_err(format!("{what}: not an array of numbers ({e})")))?;
    let shape = arr.shape().to_vec();
    // `as_slice` also accepts Fortran order, whose memory order is not the
    // tensor's; other layouts are copied in logical (C) order.
    let data = match arr.as_slice() {
        Ok(s) if arr.is_c_contiguous() => s.to_vec(),
        _ => arr.as_array().iter().copied().collect(),
    };
    Tensor::from_vec(&shape, data).map_err(crate::errors::value)
}

/// A tensor as a float32 ndarray that owns the tensor's buffer.
pub fn to_numpy(py: Python<'_>, t: Tensor) -> PyResult<Bound<'_, PyAny>> {
    let shape = t.shape().to_vec();
    let flat = PyArray1::from_vec(py, t.into_vec());
    Ok(flat.reshape(shape)?.into_any())
}
