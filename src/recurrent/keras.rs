//! Moving weights between Keras's layout and gated's (PyTorch's) layout.
//!
//! | Keras                        | gated / PyTorch                         |
//! |------------------------------|-----------------------------------------|
//! | `kernel (i, G*u)`            | `weight_ih (G*u, i)` = kernel transposed |
//! | `recurrent_kernel (u, G*u)`  | `weight_hh (G*u, u)` = transposed       |
//! | `bias (G*u)`                 | `bias_ih`; `bias_hh` = 0 if present     |
//! | GRU reset_after `bias (2, 3u)` | row 0 -> `bias_ih`, row 1 -> `bias_hh` |
//!
//! Gate blocks: LSTM is i, f, c, o in Keras and i, f, g, o in PyTorch (the same
//! order); GRU is z, r, h in Keras and r, z, n in PyTorch, so the first two
//! blocks swap.

use super::cell::Cell;
use super::config::CellKind;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// PyTorch block index of Keras block `k`.
fn torch_block(kind: CellKind, k: usize) -> usize {
    match (kind, k) {
        (CellKind::Gru, 0) => 1,
        (CellKind::Gru, 1) => 0,
        _ => k,
    }
}

/// Copies a Keras `(rows, G*u)` matrix into a PyTorch `(G*u, rows)` one, reordering gate blocks.
fn keras_matrix_to_torch(
    kind: CellKind,
    units: usize,
    keras: &Tensor,
    rows: usize,
    out: &mut [f32],
) {
    let gw = kind.gates() * units;
    for r in 0..rows {
        for kb in 0..kind.gates() {
            let tb = torch_block(kind, kb);
            for j in 0..units {
                out[(tb * units + j) * rows + r] = keras.data()[r * gw + kb * units + j];
            }
        }
    }
}

fn keras_vector_to_torch(kind: CellKind, units: usize, keras: &[f32], out: &mut [f32]) {
    for kb in 0..kind.gates() {
        let tb = torch_block(kind, kb);
        out[tb * units..(tb + 1) * units].copy_from_slice(&keras[kb * units..(kb + 1) * units]);
    }
}

/// Loads Keras weights (`kernel`, `recurrent_kernel`, `bias`) into a cell, as
/// Keras's `layer.set_weights` would. Shapes are checked and named in errors.
pub fn set_keras_weights(
    cell: &mut dyn Cell,
    kernel: &Tensor,
    recurrent_kernel: &Tensor,
    bias: Option<&Tensor>,
) -> Result<()> {
    let cfg = cell.config().clone();
    let (i, u, gw) = (cfg.input_size, cfg.units, cfg.gate_width());
    if kernel.shape() != [i, gw] {
        return Err(Error::shape("Keras kernel", [i, gw], kernel.shape()));
    }
    if recurrent_kernel.shape() != [u, gw] {
        return Err(Error::shape(
            "Keras recurrent_kernel",
            [u, gw],
            recurrent_kernel.shape(),
        ));
    }
    let core = cell.core_mut();
    let (w_ih, w_hh) = (core.w_ih, core.w_hh);
    keras_matrix_to_torch(cfg.kind, u, kernel, i, core.params.value_mut(w_ih));
    keras_matrix_to_torch(
        cfg.kind,
        u,
        recurrent_kernel,
        u,
        core.params.value_mut(w_hh),
    );
    let two_row_bias = cfg.kind == CellKind::Gru && cfg.reset_after;
    match (bias, core.b_ih) {
        (Some(b), Some(b_ih)) => {
            let want: Vec<usize> = if two_row_bias { vec![2, gw] } else { vec![gw] };
            if b.shape() != want.as_slice() {
                return Err(Error::shape("Keras bias", want, b.shape()));
            }
            keras_vector_to_torch(cfg.kind, u, &b.data()[..gw], core.params.value_mut(b_ih));
            if let Some(b_hh) = core.b_hh {
                if two_row_bias {
                    keras_vector_to_torch(
                        cfg.kind,
                        u,
                        &b.data()[gw..],
                        core.params.value_mut(b_hh),
                    );
                } else {
                    core.params
                        .value_mut(b_hh)
                        .iter_mut()
                        .for_each(|v| *v = 0.0);
                }
            }
        }
        (None, None) => {}
        (Some(_), None) => {
            return Err(Error::invalid(
                "bias",
                "the cell was built with use_bias = false",
            ))
        }
        (None, Some(_)) => {
            return Err(Error::invalid(
                "bias",
                "the cell has a bias; pass Keras's bias too",
            ))
        }
    }
    Ok(())
}
