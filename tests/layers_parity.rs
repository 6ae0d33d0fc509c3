//! Parity of the non-recurrent layers with PyTorch: replays the tensors written
//! by `scripts/make_layer_fixtures.py` (float64 autograd references stored as
//! float32) and requires agreement to 1e-5 relative with a small absolute floor.

use gated::layers::{
    ActivationKind, ActivationLayer, Dense, DenseConfig, Embedding, EmbeddingConfig, Flow, Layer,
};
use gated::{Activation, Rng, Tensor};

mod common;
use common::Fixture;

const RTOL: f32 = 1e-5;
const ATOL: f32 = 1e-6;

fn assert_close(what: &str, got: &[f32], want: &Tensor) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want.data()).enumerate() {
        assert!(
            (g - w).abs() <= ATOL + RTOL * w.abs(),
            "{what}[{i}]: got {g}, PyTorch {w} (diff {})",
            (g - w).abs()
        );
    }
}

fn check_linear(name: &str, activation: Activation) {
    let f = Fixture::open("layers", &format!("{name}.safetensors"));
    let (x, w, b) = (f.get("x"), f.get("weight"), f.get("bias"));
    let (units, fin) = (w.shape()[0], w.shape()[1]);
    let mut d = Dense::new(
        "dense_1",
        fin,
        DenseConfig::new(units).activation(activation),
        &mut Rng::new(0),
    )
    .unwrap();
    let p = &mut d.params_mut()[0];
    p.set("weight", w.shape(), w.data()).unwrap();
    p.set("bias", b.shape(), b.data()).unwrap();
    let y = d.forward(Flow::new(x.clone()), true).unwrap().x;
    assert_eq!(y.shape(), f.get("y").shape());
    assert_close(&format!("{name} y"), y.data(), &f.get("y"));
    let dx = d.backward(f.get("up")).unwrap();
    assert_eq!(dx.shape(), x.shape());
    assert_close(&format!("{name} dx"), dx.data(), &f.get("dx"));
    let p = &d.params()[0];
    assert_close(&format!("{name} dweight"), p.grad(0), &f.get("dweight"));
    assert_close(&format!("{name} dbias"), p.grad(1), &f.get("dbias"));
}

#[test]
fn linear_2d_matches_pytorch() {
    check_linear("linear_2d", Activation::Linear);
}

#[test]
fn linear_3d_matches_pytorch() {
    check_linear("linear_3d", Activation::Linear);
}

#[test]
fn linear_3d_with_fused_tanh_matches_pytorch() {
    check_linear("linear_3d_tanh", Activation::Tanh);
}

#[test]
fn embedding_matches_pytorch() {
    let f = Fixture::open("layers", "embedding.safetensors");
    let w = f.get("weight");
    let mut e = Embedding::new(
        "embedding_1",
        EmbeddingConfig::new(w.shape()[0], w.shape()[1]),
        &mut Rng::new(0),
    )
    .unwrap();
    e.set_weights(&w).unwrap();
    let ids = f.get("ids");
    let y = e.forward(Flow::new(ids.clone()), true).unwrap().x;
    assert_eq!(y.shape(), f.get("y").shape());
    assert_close("embedding y", y.data(), &f.get("y"));
    let dx = e.backward(f.get("up")).unwrap();
    assert_eq!(dx, Tensor::zeros(ids.shape()));
    assert_close(
        "embedding dweight",
        e.params()[0].grad(0),
        &f.get("dweight"),
    );
}

#[test]
fn activations_and_softmax_match_pytorch() {
    let f = Fixture::open("layers", "activations.safetensors");
    let cases = [
        ("sigmoid", ActivationKind::Pointwise(Activation::Sigmoid)),
        ("tanh", ActivationKind::Pointwise(Activation::Tanh)),
        ("softsign", ActivationKind::Pointwise(Activation::Softsign)),
        ("relu", ActivationKind::Pointwise(Activation::Relu)),
        (
            "hard_sigmoid",
            ActivationKind::Pointwise(Activation::HardSigmoid),
        ),
        ("linear", ActivationKind::Pointwise(Activation::Linear)),
        ("softmax2d", ActivationKind::Softmax),
        ("softmax3d", ActivationKind::Softmax),
    ];
    for (key, kind) in cases {
        let mut l = ActivationLayer::new("activation_1", kind);
        let y = l
            .forward(Flow::new(f.get(&format!("{key}.x"))), true)
            .unwrap()
            .x;
        assert_close(&format!("{key} y"), y.data(), &f.get(&format!("{key}.y")));
        let dx = l.backward(f.get(&format!("{key}.up"))).unwrap();
        assert_close(
            &format!("{key} dx"),
            dx.data(),
            &f.get(&format!("{key}.dx")),
        );
    }
}
