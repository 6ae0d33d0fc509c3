//! Training settings given by name, as `gated train`'s flags and the Python
//! binding's `fit` arguments give them: one place turns them into an
//! [`Optimizer`] and a [`FitConfig`], so both front ends train alike.

use super::fit::{EarlyStopping, FitConfig, Metric, Validation};
use super::loss::Loss;
use super::optim::{Algorithm, Optimizer};
use super::progress::Verbosity;
use super::schedule::Schedule;
use crate::{Error, Result, Tensor};

/// The optimizer names with Keras's default hyperparameters.
pub const OPTIMIZERS: [&str; 6] = super::optim::OPTIMIZER_NAMES;

/// The optimizer `name` with Keras's defaults, `lr` when given, and L2
/// `weight_decay` (decoupled for adamw) when not zero. Other names go to
/// [`Optimizer::parse`].
pub fn optimizer_by_name(name: &str, lr: Option<f64>, weight_decay: f64) -> Result<Optimizer> {
    let Some(mut algorithm) = Algorithm::keras_defaults(name) else {
        return Optimizer::parse(name, lr.unwrap_or(0.001));
    };
    if let Some(lr) = lr {
        *algorithm.lr_mut() = lr;
    }
    if weight_decay != 0.0 {
        match &mut algorithm {
            Algorithm::Sgd(o) => o.weight_decay = weight_decay,
            Algorithm::RmsProp(o) => o.weight_decay = weight_decay,
            Algorithm::Adagrad(o) => o.weight_decay = weight_decay,
            Algorithm::Adam(o) => o.weight_decay = weight_decay,
            Algorithm::AdamW(o) => o.weight_decay = weight_decay,
            Algorithm::Adadelta(o) => o.weight_decay = weight_decay,
        }
    }
    Optimizer::new(algorithm)
}

/// `fit`'s settings by name (the flags of `gated train`); `None` means the
/// Keras default. [`FitOptions::config`] checks and converts them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FitOptions {
    /// Passes over the data (default 1).
    pub epochs: Option<usize>,
    /// Samples per step (default 32).
    pub batch_size: Option<usize>,
    /// Keep the sample order fixed.
    pub no_shuffle: bool,
    /// Metric names ([`Metric::parse`]); blank names are skipped.
    pub metrics: Vec<String>,
    /// Seed of shuffling and dropout.
    pub seed: u64,
    /// What is printed.
    pub verbosity: Verbosity,
    /// Fraction held out for validation; 0 means none, as in Keras.
    pub validation_split: Option<f64>,
    /// Validation inputs and targets (Keras `validation_data`), instead of a split.
    pub validation_data: Option<(Tensor, Tensor)>,
    /// A [`Schedule::parse`] string.
    pub lr_schedule: Option<String>,
    /// Global-norm gradient clipping.
    pub clipnorm: Option<f32>,
    /// Element-wise gradient clipping.
    pub clipvalue: Option<f32>,
    /// Early stopping after this many epochs without improvement.
    pub early_stopping_patience: Option<usize>,
    /// The metric early stopping watches (default val_loss with validation, else loss).
    pub monitor: Option<String>,
    /// The least change that counts as an improvement.
    pub min_delta: f64,
    /// End with the best epoch's weights.
    pub restore_best_weights: bool,
}

impl FitOptions {
    /// The checked [`FitConfig`] for `loss`.
    pub fn config(&self, loss: Loss) -> Result<FitConfig> {
        let metrics = self
            .metrics
            .iter()
            .filter(|m| !m.trim().is_empty())
            .map(|m| Metric::parse(m))
            .collect::<Result<Vec<_>>>()?;
        let mut cfg = FitConfig::new(loss)
            .epochs(self.epochs.unwrap_or(1))
            .batch_size(self.batch_size.unwrap_or(32))
            .shuffle(!self.no_shuffle)
            .metrics(metrics)
            .seed(self.seed)
            .verbosity(self.verbosity);
        // Keras's validation_split=0.0 means no validation; other values must be
        // a fraction in (0, 1) (FitConfig::validate says so).
        let split = self.validation_split.filter(|&f| f != 0.0);
        match (split, &self.validation_data) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "validation_split",
                    "give validation_split or validation_data, not both",
                ))
            }
            (Some(f), None) => cfg = cfg.validation_split(f),
            (None, Some((x, y))) => cfg = cfg.validation_data(x.clone(), y.clone()),
            (None, None) => {}
        }
        if let Some(s) = &self.lr_schedule {
            cfg = cfg.schedule(Schedule::parse(s)?);
        }
        cfg.clipnorm = self.clipnorm;
        cfg.clipvalue = self.clipvalue;
        if let Some(patience) = self.early_stopping_patience {
            let monitor = self.monitor.clone().unwrap_or_else(|| {
                if cfg.validation == Validation::None {
                    "loss".into()
                } else {
                    "val_loss".into()
                }
            });
            cfg = cfg.early_stopping(
                EarlyStopping::new(patience)
                    .monitor(monitor)
                    .min_delta(self.min_delta)
                    .restore_best_weights(self.restore_best_weights),
            );
        } else if self.restore_best_weights || self.monitor.is_some() {
            return Err(Error::invalid(
                "--restore-best-weights/--monitor",
                "they configure early stopping; add --early-stopping-patience N",
            ));
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimizer_names_take_keras_defaults_and_overrides() {
        let o = optimizer_by_name("sgd", None, 0.0).unwrap();
        assert_eq!(o.lr(), 0.01);
        let o = optimizer_by_name("Adam", Some(0.5), 0.0).unwrap();
        assert_eq!((o.name(), o.lr()), ("adam", 0.5));
        assert!(optimizer_by_name("lbfgs", None, 0.0).is_err());
    }

    #[test]
    fn options_follow_keras_defaults_and_refuse_dangling_flags() {
        let cfg = FitOptions::default()
            .config(Loss::MeanSquaredError)
            .unwrap();
        assert_eq!((cfg.epochs, cfg.batch_size, cfg.shuffle), (1, 32, true));
        assert_eq!(cfg.validation, Validation::None);
        let split = FitOptions {
            validation_split: Some(0.0),
            ..Default::default()
        };
        assert_eq!(
            split.config(Loss::MeanSquaredError).unwrap().validation,
            Validation::None
        );
        let dangling = FitOptions {
            restore_best_weights: true,
            ..Default::default()
        };
        assert!(dangling.config(Loss::MeanSquaredError).is_err());
        let es = FitOptions {
            early_stopping_patience: Some(2),
            validation_split: Some(0.25),
            ..Default::default()
        };
        let cfg = es.config(Loss::MeanSquaredError).unwrap();
        assert_eq!(cfg.early_stopping.unwrap().monitor, "val_loss");
    }
}
