//! Python binding of gated: `gated.Sequential` (Keras's fit/predict/evaluate,
//! PyTorch's state_dict), `gated.load`, and `gated.CharLM`. A thin layer over
//! the library calls the CLI makes; the GIL is released while the library
//! computes.

mod arrays;
mod charlm;
mod errors;
mod fit;
mod sequential;
mod spec;

use pyo3::prelude::*;

#[pymodule]
fn _gated(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<sequential::PySequential>()?;
    m.add_class::<fit::PyHistory>()?;
    m.add_class::<charlm::PyCharLm>()?;
    m.add_class::<charlm::CharStream>()?;
    m.add_function(wrap_pyfunction!(sequential::load, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
