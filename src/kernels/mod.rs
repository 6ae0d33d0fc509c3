//! The only place with raw numeric loops over whole buffers: the GEMM entry point
//! and the activation functions with their derivatives.

pub mod act;
pub(crate) mod blocked;
pub mod finite;
pub mod gemm;
mod gemv;
mod pack;
pub(crate) mod rows;
pub mod simd;
