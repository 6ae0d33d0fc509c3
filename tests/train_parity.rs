//! Parity with PyTorch for the `train` module: optimizers (torch.optim),
//! losses (torch.nn.functional + autograd) and clip_grad_norm_. The fixtures
//! come from `scripts/make_train_fixtures.py`.

use gated::train::{
    clip_grad_norm, Adadelta, Adagrad, Adam, AdamW, Algorithm, Loss, Optimizer, RmsProp, Sgd,
};
use gated::{Params, Tensor};
use serde_json::Value;

mod common;
use common::Fixture;

const STEPS: usize = 10;

/// The fixture's list of cases (its `cases` metadata, JSON).
fn cases(fx: &Fixture) -> Vec<Value> {
    match serde_json::from_str(fx.meta("cases")).unwrap() {
        Value::Array(v) => v,
        other => panic!("cases is not a list: {other}"),
    }
}

/// |a - b| <= 1e-6 * max(1, |b|) for every element. Prints the worst
/// |a - b| / max(1, |b|) (visible with `--nocapture`).
fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0.0f32;
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        let scale = b.abs().max(1.0);
        assert!(
            (a - b).abs() <= 1e-6 * scale,
            "{what}[{i}]: got {a}, want {b} (diff {})",
            (a - b).abs()
        );
        worst = worst.max((a - b).abs() / scale);
    }
    println!("{what}: worst scaled error {worst:.2e}");
}

fn algorithm(kind: &str, hyper: &Value) -> Algorithm {
    let f = |key: &str, default: f64| hyper.get(key).and_then(Value::as_f64).unwrap_or(default);
    match kind {
        "sgd" => {
            let d = Sgd::torch_defaults();
            Algorithm::Sgd(Sgd {
                lr: f("lr", d.lr),
                momentum: f("momentum", d.momentum),
                nesterov: hyper
                    .get("nesterov")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                weight_decay: f("weight_decay", d.weight_decay),
            })
        }
        "rmsprop" => {
            let d = RmsProp::torch_defaults();
            Algorithm::RmsProp(RmsProp {
                lr: f("lr", d.lr),
                alpha: f("alpha", d.alpha),
                eps: f("eps", d.eps),
                weight_decay: f("weight_decay", d.weight_decay),
            })
        }
        "adagrad" => {
            let d = Adagrad::torch_defaults();
            Algorithm::Adagrad(Adagrad {
                lr: f("lr", d.lr),
                lr_decay: f("lr_decay", d.lr_decay),
                initial_accumulator_value: f(
                    "initial_accumulator_value",
                    d.initial_accumulator_value,
                ),
                eps: f("eps", d.eps),
                weight_decay: f("weight_decay", d.weight_decay),
            })
        }
        "adam" => {
            let d = Adam::torch_defaults();
            Algorithm::Adam(Adam {
                lr: f("lr", d.lr),
                beta1: f("beta1", d.beta1),
                beta2: f("beta2", d.beta2),
                eps: f("eps", d.eps),
                weight_decay: f("weight_decay", d.weight_decay),
            })
        }
        "adamw" => {
            let d = AdamW::torch_defaults();
            Algorithm::AdamW(AdamW {
                lr: f("lr", d.lr),
                beta1: f("beta1", d.beta1),
                beta2: f("beta2", d.beta2),
                eps: f("eps", d.eps),
                weight_decay: f("weight_decay", d.weight_decay),
            })
        }
        "adadelta" => {
            let d = Adadelta::torch_defaults();
            Algorithm::Adadelta(Adadelta {
                lr: f("lr", d.lr),
                rho: f("rho", d.rho),
                eps: f("eps", d.eps),
                weight_decay: f("weight_decay", d.weight_decay),
            })
        }
        other => panic!("unknown optimizer in fixture: {other}"),
    }
}

fn group(name: &str, t: &Tensor) -> Params {
    let mut p = Params::new();
    p.add(name, t.shape());
    p.values.copy_from_slice(t.data());
    p
}

#[test]
fn optimizers_match_torch_optim() {
    let fx = Fixture::open("train", "optim.safetensors");
    let list = cases(&fx);
    assert_eq!(list.len(), 20, "every optimizer case is replayed");
    let p0 = fx.get("p0_init");
    let p1 = fx.get("p1_init");
    let g0: Vec<Tensor> = (0..STEPS)
        .map(|k| fx.get(&format!("p0_grad_{k}")))
        .collect();
    let g1: Vec<Tensor> = (0..STEPS)
        .map(|k| fx.get(&format!("p1_grad_{k}")))
        .collect();
    let mut kinds = std::collections::BTreeSet::new();
    for case in &list {
        let name = case["name"].as_str().unwrap();
        let kind = case["optimizer"].as_str().unwrap();
        kinds.insert(kind.to_string());
        let mut opt = Optimizer::new(algorithm(kind, &case["hyper"])).unwrap();
        let mut a = group("p0", &p0);
        let mut b = group("p1", &p1);
        // A frozen group between them, with non-zero gradients, must not move.
        let mut frozen = group("frozen", &p1);
        frozen.set_trainable(false);
        for k in 0..STEPS {
            a.grads.copy_from_slice(g0[k].data());
            b.grads.copy_from_slice(g1[k].data());
            frozen.grads.copy_from_slice(g1[k].data());
            opt.step(&mut [&mut a, &mut frozen, &mut b]).unwrap();
            if k == 0 {
                assert_close(
                    &format!("{name} p0 step 1"),
                    &a.values,
                    fx.get(&format!("{name}/p0_step1")).data(),
                );
                assert_close(
                    &format!("{name} p1 step 1"),
                    &b.values,
                    fx.get(&format!("{name}/p1_step1")).data(),
                );
            }
        }
        assert_close(
            &format!("{name} p0 step 10"),
            &a.values,
            fx.get(&format!("{name}/p0_step10")).data(),
        );
        assert_close(
            &format!("{name} p1 step 10"),
            &b.values,
            fx.get(&format!("{name}/p1_step10")).data(),
        );
        assert_eq!(frozen.values, p1.data(), "{name}: frozen group moved");
        // The parameters really moved, so the comparison can fail.
        assert!(a.values != p0.data(), "{name}");
    }
    assert_eq!(kinds.len(), 6, "{kinds:?}");
}

#[test]
fn losses_match_torch_autograd() {
    let fx = Fixture::open("train", "loss.safetensors");
    let list = cases(&fx);
    assert_eq!(list.len(), 7);
    for case in &list {
        let name = case["name"].as_str().unwrap();
        let loss = match case["loss"].as_str().unwrap() {
            "bce_logits" => Loss::BinaryCrossEntropy { from_logits: true },
            "bce_probs" => Loss::BinaryCrossEntropy { from_logits: false },
            "cce" => Loss::CategoricalCrossEntropy,
            "sparse_cce" => Loss::SparseCategoricalCrossEntropy,
            "mse" => Loss::MeanSquaredError,
            "mae" => Loss::MeanAbsoluteError,
            other => panic!("unknown loss in fixture: {other}"),
        };
        let input = fx.get(&format!("{name}/input"));
        let target = fx.get(&format!("{name}/target"));
        let (value, grad) = loss.compute(&input, &target).unwrap();
        assert_close(
            &format!("{name} loss"),
            &[value],
            fx.get(&format!("{name}/loss")).data(),
        );
        let want = fx.get(&format!("{name}/grad"));
        assert_eq!(grad.shape(), want.shape(), "{name}");
        assert_close(&format!("{name} grad"), grad.data(), want.data());
    }
}

#[test]
fn clip_grad_norm_matches_torch() {
    let fx = Fixture::open("train", "clip.safetensors");
    for name in ["clip", "noclip"] {
        let g0 = fx.get(&format!("{name}/g0_before"));
        let g1 = fx.get(&format!("{name}/g1_before"));
        let mut a = group("a", &g0);
        a.grads.copy_from_slice(g0.data());
        let mut b = group("b", &g1);
        b.grads.copy_from_slice(g1.data());
        let max_norm = fx.get(&format!("{name}/max_norm")).data()[0];
        let norm = clip_grad_norm(&mut [&mut a, &mut b], max_norm).unwrap();
        assert_close(
            &format!("{name} norm"),
            &[norm],
            fx.get(&format!("{name}/norm")).data(),
        );
        assert_close(
            &format!("{name} g0"),
            &a.grads,
            fx.get(&format!("{name}/g0_after")).data(),
        );
        assert_close(
            &format!("{name} g1"),
            &b.grads,
            fx.get(&format!("{name}/g1_after")).data(),
        );
        if name == "clip" {
            assert!(norm > max_norm, "the clip case must clip");
            assert!(a.grads != g0.data());
        }
    }
}
