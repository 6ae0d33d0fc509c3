//! A layer's parameters: one flat buffer of values and one of gradients, cut
//! into named slots. Optimizers, clipping and checkpoints loop over whole buffers.

use crate::{Error, Result};

/// One named parameter inside a [`Params`] buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// PyTorch-style name, e.g. `weight_ih_l0`.
    pub name: String,
    /// Shape in PyTorch's layout, e.g. `[4*H, I]`.
    pub shape: Vec<usize>,
    /// Offset of the first element in the flat buffers.
    pub offset: usize,
    /// Number of elements.
    pub len: usize,
    /// Whether optimizers may update it.
    pub trainable: bool,
}

impl Slot {
    /// The slot's element range in the flat buffers.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len
    }
}

/// Flat parameter and gradient buffers with named slots.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    slots: Vec<Slot>,
    /// All parameter values, slot after slot.
    pub values: Vec<f32>,
    /// Gradients, parallel to `values`.
    pub grads: Vec<f32>,
}

/// Index of a slot inside its [`Params`].
pub type SlotId = usize;

/// Gradients below this many values are zeroed by one thread.
const PARALLEL_ZERO_MIN: usize = 1 << 18;

impl Params {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a zero-filled slot and returns its id. Aborts like any `Vec`
    /// when memory runs out: layers built from user input use
    /// [`Params::try_add`].
    pub fn add(&mut self, name: &str, shape: &[usize]) -> SlotId {
        match self.try_add(name, shape) {
            Ok(id) => id,
            Err(e) => panic!("{e}"),
        }
    }

    /// Appends a zero-filled slot and returns its id, or an error when its
    /// size overflows or the memory for its values and gradients cannot be
    /// had (reserved exactly, so a large slot never costs twice its size).
    pub fn try_add(&mut self, name: &str, shape: &[usize]) -> Result<SlotId> {
        let len = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| {
                Error::invalid("parameter size", format!("{name} {shape:?} overflows"))
            })?;
        let no_memory = |_| {
            Error::invalid(
                "model size",
                format!(
                    "not enough memory for {name} {shape:?}: {len} parameters need {} bytes \
                     with their gradients",
                    (len as u128) * 8
                ),
            )
        };
        self.values.try_reserve_exact(len).map_err(no_memory)?;
        self.grads.try_reserve_exact(len).map_err(no_memory)?;
        let offset = self.values.len();
        self.slots.push(Slot {
            name: name.to_string(),
            shape: shape.to_vec(),
            offset,
            len,
            trainable: true,
        });
        self.values.resize(offset + len, 0.0);
        self.grads.resize(offset + len, 0.0);
        Ok(self.slots.len() - 1)
    }

    /// The slots in order.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The slot called `name`.
    pub fn find(&self, name: &str) -> Option<SlotId> {
        self.slots.iter().position(|s| s.name == name)
    }

    /// Values of one slot.
    pub fn value(&self, id: SlotId) -> &[f32] {
        &self.values[self.slots[id].range()]
    }

    /// Values of one slot, mutable.
    pub fn value_mut(&mut self, id: SlotId) -> &mut [f32] {
        let r = self.slots[id].range();
        &mut self.values[r]
    }

    /// Gradient of one slot.
    pub fn grad(&self, id: SlotId) -> &[f32] {
        &self.grads[self.slots[id].range()]
    }

    /// Gradient of one slot, mutable.
    pub fn grad_mut(&mut self, id: SlotId) -> &mut [f32] {
        let r = self.slots[id].range();
        &mut self.grads[r]
    }

    /// Total number of elements.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Number of elements in trainable slots.
    pub fn trainable_len(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.trainable)
            .map(|s| s.len)
            .sum()
    }

    /// Marks every slot trainable or frozen.
    pub fn set_trainable(&mut self, trainable: bool) {
        for s in &mut self.slots {
            s.trainable = trainable;
        }
    }

    /// Sets all gradients to zero. A large table (an embedding's) is cleared
    /// by two threads when the products may use two: one core cannot write
    /// 10 MB at the memory's speed.
    pub fn zero_grad(&mut self) {
        if self.grads.len() < PARALLEL_ZERO_MIN || crate::kernels::gemm::threads() < 2 {
            self.grads.fill(0.0);
            return;
        }
        let mid = self.grads.len() / 2;
        let (lo, hi) = self.grads.split_at_mut(mid);
        rayon::join(|| lo.fill(0.0), || hi.fill(0.0));
    }

    /// True when no gradient of a trainable slot is NaN or infinite.
    pub fn grads_finite(&self) -> bool {
        self.slots
            .iter()
            .filter(|s| s.trainable)
            .all(|s| crate::kernels::finite::all_finite(&self.grads[s.range()]))
    }

    /// Copies `data` into slot `name`, checking its shape.
    pub fn set(&mut self, name: &str, shape: &[usize], data: &[f32]) -> Result<()> {
        let id = self.find(name).ok_or_else(|| {
            let known: Vec<_> = self.slots.iter().map(|s| s.name.as_str()).collect();
            Error::invalid(
                "parameter",
                format!("no parameter {name:?}; known: {}", known.join(", ")),
            )
        })?;
        let slot = &self.slots[id];
        if slot.shape != shape || data.len() != slot.len {
            return Err(Error::shape(
                format!("parameter {name}"),
                &slot.shape,
                shape,
            ));
        }
        self.value_mut(id).copy_from_slice(data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_grad_clears_small_and_large_tables_on_any_thread_count() {
        for threads in [1, 2] {
            crate::kernels::gemm::set_threads(threads);
            let mut p = Params::new();
            p.add("small", &[3, 5]);
            p.add("table", &[1000, 300]);
            p.grads.iter_mut().for_each(|g| *g = 2.5);
            p.zero_grad();
            assert!(p.grads.iter().all(|&g| g == 0.0), "threads {threads}");
        }
        crate::kernels::gemm::set_threads(1);
    }
}
