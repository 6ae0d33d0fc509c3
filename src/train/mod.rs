//! Training: losses, optimizers, gradient clipping, learning-rate schedules,
//! metrics, and the Keras-like fit loop ([`fit()`], [`FitConfig`], [`FitHooks`]).
//!
//! Every formula follows PyTorch (`torch.nn.functional` losses with mean
//! reduction, `torch.optim` update rules, `torch.nn.utils.clip_grad_norm_`,
//! `torch.optim.lr_scheduler`), and the Keras names are accepted where a user
//! picks one by name. The parity tests in `tests/train_parity.rs` replay
//! fixtures written by `scripts/make_train_fixtures.py` from PyTorch.
//!
//! A model's parameters are a list of [`Params`](crate::Params) groups (one per
//! layer); optimizers and clipping take `&mut [&mut Params]` and only ever look
//! at slots whose `trainable` flag is set.
//!
//! ```
//! use gated::train::{Loss, Optimizer, clip_grad_norm};
//! use gated::{Params, Tensor};
//!
//! let mut layer = Params::new();
//! layer.add("weight", &[2]);
//! layer.values.copy_from_slice(&[0.5, -0.5]);
//! let pred = Tensor::from_vec(&[2], layer.values.clone()).unwrap();
//! let target = Tensor::from_vec(&[2], vec![1.0, 0.0]).unwrap();
//! let (loss, d_pred) = Loss::parse("mse").unwrap().compute(&pred, &target).unwrap();
//! assert!((loss - 0.25).abs() < 1e-6);
//! layer.grads.copy_from_slice(d_pred.data());
//! let norm = clip_grad_norm(&mut [&mut layer], 1.0).unwrap();
//! assert!(norm > 0.0);
//! let mut opt = Optimizer::parse("sgd", 0.1).unwrap();
//! opt.step(&mut [&mut layer]).unwrap();
//! assert!(layer.values[0] > 0.5);
//! ```

pub mod callbacks;
pub mod charlm;
pub mod clip;
pub mod fit;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod options;
pub mod progress;
pub mod run;
pub mod schedule;
pub mod state;
pub mod step;
mod targets;

pub use callbacks::{history_csv, history_json, learning_curves, HistoryWriter};
pub use clip::{clip_grad_norm, clip_grad_value, grads_finite};
pub use fit::{
    check_data, evaluate, fit, fit_from, overfitting_warning, EarlyStopping, FitConfig, FitHooks,
    Metric, Mode, NoHooks, Validation, METRIC_NAMES,
};
pub use loss::{softmax, Loss};
pub use optim::{
    Adadelta, Adagrad, Adam, AdamW, Algorithm, Optimizer, OptimizerState, RmsProp, Sgd,
};
pub use progress::{format_metrics, Verbosity};
pub use schedule::{PlateauState, ReduceOnPlateau, Schedule, ThresholdMode};
pub use state::{EpochRecord, History, TrainingState};
pub use step::{train_step, Clip, Objective, StepOutput, Targets};
