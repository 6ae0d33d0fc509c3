#![allow(clippy::needless_range_loop)]
//! Finite-difference gradient checks of the recurrent layers: every parameter,
//! the input and the initial state, for every cell and every option that
//! changes the maths.

use gated::gradcheck::{compare, dot, numeric_grad, ATOL, EPS, RTOL};
use gated::recurrent::{
    Bidirectional, CellConfig, CellState, Gru, Lstm, MergeMode, MultiLayerRnn, Rnn, RnnBuilder,
    SimpleRnn, StackedRnnCells,
};
use gated::{Activation, Layer, Rng, Tensor};

fn randn(shape: &[usize], rng: &mut Rng) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|_| rng.normal()).collect()).unwrap()
}

/// Scaled-down random weights keep activations away from saturation so the
/// finite differences are informative.
fn randomise(layer: &mut dyn Layer, rng: &mut Rng) {
    for p in layer.params_mut() {
        p.values.iter_mut().for_each(|v| *v = 0.5 * rng.normal());
    }
}

struct Case {
    layer: Rnn,
    x: Tensor,
    mask: Option<Tensor>,
    init: Vec<CellState>,
    up: Tensor,
    up_states: Vec<CellState>,
}

fn loss(c: &mut Case) -> f64 {
    c.layer.reseed(99);
    let out = c
        .layer
        .forward_seq(&c.x, c.mask.as_ref(), Some(&c.init), true)
        .unwrap();
    let mut l = dot(out.output.data(), c.up.data());
    for (s, u) in out.states.iter().zip(&c.up_states) {
        l += dot(s.h.data(), u.h.data());
        if let (Some(a), Some(b)) = (&s.c, &u.c) {
            l += dot(a.data(), b.data());
        }
    }
    l
}

fn check(builder: RnnBuilder, batch: usize, steps: usize, mask: Option<Vec<f32>>) {
    let label = format!(
        "{:?}",
        builder.configs.iter().map(|c| c.kind).collect::<Vec<_>>()
    );
    let mut rng = Rng::new(11);
    let mut layer = builder.build().unwrap();
    randomise(&mut layer, &mut rng);
    let x = randn(&[batch, steps, layer.input_size()], &mut rng);
    let init: Vec<CellState> = layer
        .cells()
        .iter()
        .map(|c| CellState {
            h: randn(&[batch, c.units()], &mut rng),
            c: (c.state_count() == 2).then(|| randn(&[batch, c.units()], &mut rng)),
        })
        .collect();
    let up_states: Vec<CellState> = init
        .iter()
        .map(|s| CellState {
            h: randn(s.h.shape(), &mut rng),
            c: s.c.as_ref().map(|c| randn(c.shape(), &mut rng)),
        })
        .collect();
    let out_shape = if layer.options.return_sequences {
        vec![batch, steps, layer.units()]
    } else {
        vec![batch, layer.units()]
    };
    let up = randn(&out_shape, &mut rng);
    let mask = mask.map(|m| Tensor::from_vec(&[batch, steps], m).unwrap());
    let mut case = Case {
        layer,
        x,
        mask,
        init,
        up,
        up_states,
    };

    // Analytic.
    loss(&mut case);
    let grads = case
        .layer
        .backward_seq(&case.up.clone(), Some(&case.up_states.clone()))
        .unwrap();
    let analytic_params: Vec<Vec<f32>> = case
        .layer
        .params()
        .iter()
        .map(|p| p.grads.clone())
        .collect();

    for k in 0..analytic_params.len() {
        let num = numeric_grad(
            &mut case,
            |c| {
                c.layer
                    .params_mut()
                    .into_iter()
                    .nth(k)
                    .unwrap()
                    .values
                    .as_mut_slice()
            },
            loss,
            EPS,
        );
        let names: Vec<String> = case.layer.params()[k]
            .slots()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        compare(
            &format!("{label} params {k} {names:?}"),
            &analytic_params[k],
            &num,
            ATOL,
            RTOL,
        )
        .unwrap();
    }
    let num = numeric_grad(&mut case, |c| c.x.data_mut(), loss, EPS);
    compare(&format!("{label} dx"), grads.dx.data(), &num, ATOL, RTOL).unwrap();
    for k in 0..case.init.len() {
        let num = numeric_grad(&mut case, |c| c.init[k].h.data_mut(), loss, EPS);
        compare(
            &format!("{label} dh0[{k}]"),
            grads.d_initial[k].h.data(),
            &num,
            ATOL,
            RTOL,
        )
        .unwrap();
        if case.init[k].c.is_some() {
            let num = numeric_grad(
                &mut case,
                |c| c.init[k].c.as_mut().unwrap().data_mut(),
                loss,
                EPS,
            );
            compare(
                &format!("{label} dc0[{k}]"),
                grads.d_initial[k].c.as_ref().unwrap().data(),
                &num,
                ATOL,
                RTOL,
            )
            .unwrap();
        }
    }
}

const MASK: [f32; 15] = [1., 1., 0., 1., 0., 0., 1., 1., 1., 1., 0., 1., 1., 0., 0.];

#[test]
fn simple_rnn_all_activations() {
    for act in [
        Activation::Tanh,
        Activation::Relu,
        Activation::Softsign,
        Activation::Linear,
    ] {
        check(
            SimpleRnn::new(3, 4).activation(act).return_sequences(true),
            3,
            5,
            None,
        );
    }
    check(SimpleRnn::new(3, 4).two_biases(true), 2, 4, None);
}

#[test]
fn lstm_activations_and_bias_layouts() {
    check(Lstm::new(3, 4).return_sequences(true), 3, 5, None);
    check(Lstm::new(3, 4).two_biases(true), 2, 4, None);
    check(
        Lstm::new(3, 4)
            .activation(Activation::Softsign)
            .return_sequences(true),
        2,
        4,
        None,
    );
    check(Lstm::new(3, 4).activation(Activation::Linear), 2, 4, None);
    check(
        Lstm::new(3, 4)
            .recurrent_activation(Activation::HardSigmoid)
            .return_sequences(true),
        2,
        4,
        None,
    );
    check(Lstm::new(3, 4).activation(Activation::Relu), 2, 3, None);
}

#[test]
fn gru_reset_after_and_before() {
    check(Gru::new(3, 4).return_sequences(true), 3, 5, None);
    check(
        Gru::new(3, 4).reset_after(false).return_sequences(true),
        3,
        5,
        None,
    );
    check(
        Gru::new(3, 4)
            .reset_after(false)
            .recurrent_activation(Activation::HardSigmoid),
        2,
        4,
        None,
    );
    check(Gru::new(3, 4).activation(Activation::Softsign), 2, 4, None);
}

#[test]
fn masking_every_cell() {
    check(
        SimpleRnn::new(3, 4).return_sequences(true),
        3,
        5,
        Some(MASK.to_vec()),
    );
    check(
        Lstm::new(3, 4).return_sequences(true),
        3,
        5,
        Some(MASK.to_vec()),
    );
    check(Gru::new(3, 4), 3, 5, Some(MASK.to_vec()));
    check(
        Gru::new(3, 4).reset_after(false).return_sequences(true),
        3,
        5,
        Some(MASK.to_vec()),
    );
}

#[test]
fn go_backwards_every_cell() {
    check(
        SimpleRnn::new(3, 4)
            .go_backwards(true)
            .return_sequences(true),
        2,
        5,
        None,
    );
    check(
        Lstm::new(3, 4).go_backwards(true).return_sequences(true),
        3,
        5,
        Some(MASK.to_vec()),
    );
    check(Gru::new(3, 4).go_backwards(true), 2, 5, None);
}

#[test]
fn dropout_with_fixed_masks() {
    check(
        Lstm::new(3, 4)
            .dropout(0.3)
            .recurrent_dropout(0.4)
            .return_sequences(true),
        3,
        5,
        None,
    );
    check(
        Gru::new(3, 4)
            .reset_after(false)
            .dropout(0.3)
            .recurrent_dropout(0.4)
            .return_sequences(true),
        3,
        4,
        None,
    );
    check(
        Gru::new(3, 4).dropout(0.3).recurrent_dropout(0.4),
        3,
        4,
        None,
    );
    check(
        SimpleRnn::new(3, 4)
            .dropout(0.3)
            .recurrent_dropout(0.4)
            .return_sequences(true),
        3,
        4,
        None,
    );
}

#[test]
fn stacked_rnn_cells() {
    let cells = vec![
        CellConfig::lstm(3, 4),
        CellConfig::gru(4, 5).reset_after(false),
        CellConfig::simple_rnn(5, 3),
    ];
    check(
        StackedRnnCells::new(cells.clone()).return_sequences(true),
        2,
        4,
        None,
    );
    check(
        StackedRnnCells::new(cells)
            .dropout(0.25)
            .recurrent_dropout(0.2),
        2,
        4,
        Some(vec![1., 1., 0., 1., 0., 1., 1., 1.]),
    );
    // LSTMs above the first cell: their gate gradients reach the cell below
    // through their caches.
    let upper = vec![
        CellConfig::simple_rnn(3, 4),
        CellConfig::lstm(4, 5),
        CellConfig::lstm(5, 3),
    ];
    check(
        StackedRnnCells::new(upper).return_sequences(true),
        2,
        4,
        None,
    );
}

/// Bidirectional: loss = dot(merged output, upstream); all parameters and dx.
#[test]
fn bidirectional_every_merge_mode() {
    for merge in [
        MergeMode::Concat,
        MergeMode::Sum,
        MergeMode::Mul,
        MergeMode::Ave,
    ] {
        for seq in [true, false] {
            let mut rng = Rng::new(3);
            let mut layer =
                Bidirectional::new(Lstm::new(3, 4).return_sequences(seq), merge).unwrap();
            randomise(&mut layer, &mut rng);
            let x = randn(&[2, 4, 3], &mut rng);
            let mask = Tensor::from_vec(&[2, 4], vec![1., 1., 1., 0., 0., 1., 1., 1.]).unwrap();
            let flow = gated::layers::Flow {
                x: x.clone(),
                mask: Some(mask.clone()),
            };
            let out = layer.forward(flow, true).unwrap();
            let up = randn(out.x.shape(), &mut rng);
            let dx = layer.backward(up.clone()).unwrap();
            let analytic: Vec<Vec<f32>> = layer.params().iter().map(|p| p.grads.clone()).collect();
            let mut state = (layer, x);
            let lossf = |s: &mut (Bidirectional, Tensor)| {
                let f = gated::layers::Flow {
                    x: s.1.clone(),
                    mask: Some(mask.clone()),
                };
                dot(s.0.forward(f, true).unwrap().x.data(), up.data())
            };
            for k in 0..analytic.len() {
                let num = numeric_grad(
                    &mut state,
                    |s| {
                        s.0.params_mut()
                            .into_iter()
                            .nth(k)
                            .unwrap()
                            .values
                            .as_mut_slice()
                    },
                    lossf,
                    EPS,
                );
                compare(
                    &format!("{merge:?} seq={seq} params {k}"),
                    &analytic[k],
                    &num,
                    ATOL,
                    RTOL,
                )
                .unwrap();
            }
            let num = numeric_grad(&mut state, |s| s.1.data_mut(), lossf, EPS);
            compare(&format!("{merge:?} dx"), dx.data(), &num, ATOL, RTOL).unwrap();
        }
    }
}

/// PyTorch-style two layers, bidirectional, with inter-layer dropout.
#[test]
fn two_stacked_layers_bidirectional() {
    for cfg in [
        CellConfig::lstm(3, 4).torch_like(),
        CellConfig::gru(3, 4).torch_like(),
        CellConfig::simple_rnn(3, 4).torch_like(),
    ] {
        let mut rng = Rng::new(5);
        let has_c = cfg.kind == gated::recurrent::CellKind::Lstm;
        let mut m = MultiLayerRnn::new("m", cfg, 2, true, 0.0, 1).unwrap();
        for p in m.params_mut() {
            p.values.iter_mut().for_each(|v| *v = 0.5 * rng.normal());
        }
        let x = randn(&[2, 3, 3], &mut rng);
        let h0 = randn(&[4, 2, 4], &mut rng);
        let c0 = randn(&[4, 2, 4], &mut rng);
        let (gy, gh, gc) = (
            randn(&[2, 3, 8], &mut rng),
            randn(&[4, 2, 4], &mut rng),
            randn(&[4, 2, 4], &mut rng),
        );
        let c0o = has_c.then_some(c0.clone());
        let lossf = |s: &mut (MultiLayerRnn, Tensor, Tensor, Option<Tensor>)| {
            let o =
                s.0.forward_full(&s.1, Some(&s.2), s.3.as_ref(), true)
                    .unwrap();
            dot(o.output.data(), gy.data())
                + dot(o.h_n.data(), gh.data())
                + o.c_n.map_or(0.0, |c| dot(c.data(), gc.data()))
        };
        let mut state = (m, x, h0, c0o);
        lossf(&mut state);
        let (dx, dh0, dc0) = state
            .0
            .backward_full(&gy, Some(&gh), has_c.then_some(&gc))
            .unwrap();
        let analytic: Vec<Vec<f32>> = state.0.params().iter().map(|p| p.grads.clone()).collect();
        for k in 0..analytic.len() {
            let num = numeric_grad(
                &mut state,
                |s| {
                    s.0.params_mut()
                        .into_iter()
                        .nth(k)
                        .unwrap()
                        .values
                        .as_mut_slice()
                },
                lossf,
                EPS,
            );
            compare(
                &format!("multilayer params {k}"),
                &analytic[k],
                &num,
                ATOL,
                RTOL,
            )
            .unwrap();
        }
        let num = numeric_grad(&mut state, |s| s.1.data_mut(), lossf, EPS);
        compare("multilayer dx", dx.data(), &num, ATOL, RTOL).unwrap();
        let num = numeric_grad(&mut state, |s| s.2.data_mut(), lossf, EPS);
        compare("multilayer dh0", dh0.data(), &num, ATOL, RTOL).unwrap();
        if has_c {
            let num = numeric_grad(&mut state, |s| s.3.as_mut().unwrap().data_mut(), lossf, EPS);
            compare("multilayer dc0", dc0.unwrap().data(), &num, ATOL, RTOL).unwrap();
        }
    }
}
