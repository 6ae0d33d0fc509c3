//! A layer told that its input gradient is not needed (the first trainable
//! layer of a model, whose input is data) must skip it without changing
//! anything else: same outputs, same parameter gradients, zeros for d(input).

use gated::layers::Flow;
use gated::recurrent::{Bidirectional, Lstm, MergeMode};
use gated::{Layer, Rng, Tensor};

fn pass(layer: &mut dyn Layer, x: &Tensor) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let out = layer.forward(Flow::new(x.clone()), true).unwrap().x;
    let d = Tensor::from_vec(
        out.shape(),
        (0..out.len())
            .map(|i| ((i % 5) as f32 - 2.0) * 0.3)
            .collect(),
    )
    .unwrap();
    let dx = layer.backward(d).unwrap();
    let grads = layer
        .params()
        .iter()
        .flat_map(|p| p.grads.clone())
        .collect();
    (out.into_vec(), grads, dx.into_vec())
}

fn check(make: impl Fn() -> Box<dyn Layer>, x: &Tensor) {
    let (out_a, grads_a, dx_a) = pass(make().as_mut(), x);
    let mut skipping = make();
    skipping.set_input_grad_needed(false);
    let (out_b, grads_b, dx_b) = pass(skipping.as_mut(), x);
    assert_eq!(out_a, out_b);
    assert_eq!(grads_a, grads_b);
    assert!(
        dx_a.iter().any(|&v| v != 0.0),
        "the full pass has an input gradient"
    );
    assert!(
        dx_b.iter().all(|&v| v == 0.0),
        "the skipping pass returns zeros"
    );
    assert_eq!(dx_a.len(), dx_b.len());
}

#[test]
fn skipping_the_input_gradient_changes_nothing_else() {
    let mut rng = Rng::new(11);
    let x = Tensor::from_vec(&[3, 6, 10], (0..180).map(|_| rng.normal()).collect()).unwrap();
    check(
        || {
            Box::new(
                Lstm::new(10, 16)
                    .return_sequences(true)
                    .seed(5)
                    .build()
                    .unwrap(),
            )
        },
        &x,
    );
    check(
        || {
            let f = Lstm::new(10, 8).seed(6);
            Box::new(Bidirectional::new(f, MergeMode::Concat).unwrap())
        },
        &x,
    );
}
