#![allow(clippy::needless_range_loop)]
//! Reference facts: the scratch SimpleRNN of the course (h1..h3), Keras's
//! parameter counts, and Keras's GRU (reset_after = false) and
//! LSTM layouts against an independent f64 implementation of Keras's equations.

use gated::recurrent::{set_keras_weights, CellConfig, Gru, Lstm, SimpleRnn};
use gated::{Rng, Tensor};

#[test]
fn scratch_simple_rnn_vector() {
    let x = Tensor::from_vec(
        &[1, 3, 2],
        [1., 2., 2., 3., 3., 4.].iter().map(|v| v / 100.0).collect(),
    )
    .unwrap();
    let w_x = Tensor::from_vec(
        &[2, 4],
        [1., 3., 5., 7., 3., 5., 7., 8.]
            .iter()
            .map(|v| v / 100.0)
            .collect(),
    )
    .unwrap();
    let w_h = Tensor::from_vec(
        &[4, 4],
        [
            1., 3., 5., 7., 2., 4., 6., 8., 3., 5., 7., 8., 4., 6., 8., 10.,
        ]
        .iter()
        .map(|v| v / 100.0)
        .collect(),
    )
    .unwrap();
    let b = Tensor::from_vec(&[4], vec![1.0; 4]).unwrap();
    let mut layer = SimpleRnn::new(2, 4).return_sequences(true).build().unwrap();
    set_keras_weights(layer.cells_mut()[0].as_mut(), &w_x, &w_h, Some(&b)).unwrap();
    let out = layer.forward_seq(&x, None, None, false).unwrap().output;
    let want = [
        [0.76188798, 0.76213958, 0.76239095, 0.76255841],
        [0.79220900, 0.81418340, 0.83404912, 0.84977719],
        [0.79494228, 0.81839002, 0.83939649, 0.85584174],
    ];
    for t in 0..3 {
        for j in 0..4 {
            let got = out.data()[t * 4 + j];
            assert!(
                (got - want[t][j] as f32).abs() <= 1e-7,
                "h{} [{j}]: {got} vs {}",
                t + 1,
                want[t][j]
            );
        }
    }
}

#[test]
fn keras_parameter_counts() {
    assert_eq!(Lstm::new(128, 128).param_count(), 131_584);
    assert_eq!(Gru::new(128, 128).param_count(), 99_072);
    assert_eq!(Gru::new(128, 128).reset_after(false).param_count(), 98_688);
    assert_eq!(SimpleRnn::new(128, 128).param_count(), 32_896);
    // CuDNNLSTM / CuDNNGRU: 4u(i+u)+8u and 3u(i+u)+6u.
    assert_eq!(
        Lstm::new(128, 128).two_biases(true).param_count(),
        4 * 128 * 256 + 8 * 128
    );
    assert_eq!(Gru::new(128, 128).param_count(), 3 * 128 * 256 + 6 * 128);
    // The lecture's two LSTMs (the figures of the course and of Keras itself).
    assert_eq!(Lstm::new(50, 128).param_count(), 91_648);
    // Built layers agree with the formula.
    assert_eq!(Lstm::new(50, 128).build().unwrap().param_count(), 91_648);
    assert_eq!(
        Gru::new(7, 5)
            .reset_after(false)
            .build()
            .unwrap()
            .param_count(),
        3 * (5 * 12 + 5)
    );
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn randn(n: usize, rng: &mut Rng) -> Vec<f32> {
    (0..n).map(|_| 0.5 * rng.normal()).collect()
}

/// x [T, i] row-major, kernel [i, G*u], rk [u, G*u]; returns the row vector a W.
fn matvec(a: &[f64], w: &[f32], cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; cols];
    for (r, av) in a.iter().enumerate() {
        for c in 0..cols {
            out[c] += av * w[r * cols + c] as f64;
        }
    }
    out
}

#[test]
fn keras_gru_reset_before_matches_keras_equations() {
    let (i, u, t) = (3, 4, 5);
    let mut rng = Rng::new(21);
    let (kernel, rk, bias, xs) = (
        randn(i * 3 * u, &mut rng),
        randn(u * 3 * u, &mut rng),
        randn(3 * u, &mut rng),
        randn(t * i, &mut rng),
    );
    // Keras 2.2 GRUCell, blocks z, r, h; reset applied before the recurrent product.
    let mut h = vec![0.0f64; u];
    let mut want = Vec::new();
    for s in 0..t {
        let x: Vec<f64> = xs[s * i..(s + 1) * i].iter().map(|&v| v as f64).collect();
        let xw = matvec(&x, &kernel, 3 * u);
        let hu = matvec(&h, &rk, 3 * u);
        let z: Vec<f64> = (0..u)
            .map(|j| sigmoid(xw[j] + hu[j] + bias[j] as f64))
            .collect();
        let r: Vec<f64> = (0..u)
            .map(|j| sigmoid(xw[u + j] + hu[u + j] + bias[u + j] as f64))
            .collect();
        let rh: Vec<f64> = (0..u).map(|j| r[j] * h[j]).collect();
        let uh: Vec<f64> = (0..u)
            .map(|c| {
                (0..u)
                    .map(|row| rh[row] * rk[row * 3 * u + 2 * u + c] as f64)
                    .sum()
            })
            .collect();
        let hh: Vec<f64> = (0..u)
            .map(|j| (xw[2 * u + j] + uh[j] + bias[2 * u + j] as f64).tanh())
            .collect();
        h = (0..u).map(|j| z[j] * h[j] + (1.0 - z[j]) * hh[j]).collect();
        want.extend(h.iter().copied());
    }
    let mut layer = Gru::new(i, u)
        .reset_after(false)
        .return_sequences(true)
        .build()
        .unwrap();
    let t3 = |d: &[f32], s: &[usize]| Tensor::from_vec(s, d.to_vec()).unwrap();
    set_keras_weights(
        layer.cells_mut()[0].as_mut(),
        &t3(&kernel, &[i, 3 * u]),
        &t3(&rk, &[u, 3 * u]),
        Some(&t3(&bias, &[3 * u])),
    )
    .unwrap();
    let out = layer
        .forward_seq(&t3(&xs, &[1, t, i]), None, None, false)
        .unwrap()
        .output;
    for (k, (&g, &w)) in out.data().iter().zip(&want).enumerate() {
        assert!(
            (g as f64 - w).abs() < 1e-6,
            "step {} unit {}: {g} vs {w}",
            k / u,
            k % u
        );
    }
}

#[test]
fn keras_gru_reset_after_two_row_bias_and_lstm_layout() {
    let (i, u) = (3, 4);
    let mut rng = Rng::new(8);
    let (kernel, rk, bias2, x) = (
        randn(i * 3 * u, &mut rng),
        randn(u * 3 * u, &mut rng),
        randn(6 * u, &mut rng),
        randn(i, &mut rng),
    );
    let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let h0 = vec![0.0f64; u];
    // One step of Keras GRU with reset_after: recurrent bias inside the reset product.
    let xw = matvec(&xd, &kernel, 3 * u);
    let hu = matvec(&h0, &rk, 3 * u);
    let (bi, bh) = (&bias2[..3 * u], &bias2[3 * u..]);
    let want: Vec<f64> = (0..u)
        .map(|j| {
            let z = sigmoid(xw[j] + bi[j] as f64 + hu[j] + bh[j] as f64);
            let r = sigmoid(xw[u + j] + bi[u + j] as f64 + hu[u + j] + bh[u + j] as f64);
            let hh =
                (xw[2 * u + j] + bi[2 * u + j] as f64 + r * (hu[2 * u + j] + bh[2 * u + j] as f64))
                    .tanh();
            (1.0 - z) * hh
        })
        .collect();
    let mut layer = Gru::new(i, u).build().unwrap();
    let t = |d: &[f32], s: &[usize]| Tensor::from_vec(s, d.to_vec()).unwrap();
    set_keras_weights(
        layer.cells_mut()[0].as_mut(),
        &t(&kernel, &[i, 3 * u]),
        &t(&rk, &[u, 3 * u]),
        Some(&t(&bias2, &[2, 3 * u])),
    )
    .unwrap();
    let out = layer
        .forward_seq(&t(&x, &[1, 1, i]), None, None, false)
        .unwrap()
        .output;
    for (g, w) in out.data().iter().zip(&want) {
        assert!((*g as f64 - w).abs() < 1e-6);
    }
    // A wrongly shaped bias is an error naming both shapes.
    let err = set_keras_weights(
        layer.cells_mut()[0].as_mut(),
        &t(&kernel, &[i, 3 * u]),
        &t(&rk, &[u, 3 * u]),
        Some(&t(&bias2[..3 * u], &[3 * u])),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("[2, 12]") && err.to_string().contains("[12]"),
        "{err}"
    );
    // LSTM: Keras i,f,c,o equals PyTorch i,f,g,o, so weight_ih is the kernel transposed.
    let mut lstm = Lstm::new(i, u).build().unwrap();
    let k4 = randn(i * 4 * u, &mut rng);
    let r4 = randn(u * 4 * u, &mut rng);
    set_keras_weights(
        lstm.cells_mut()[0].as_mut(),
        &t(&k4, &[i, 4 * u]),
        &t(&r4, &[u, 4 * u]),
        Some(&t(&[0.5; 16], &[16])),
    )
    .unwrap();
    let core = lstm.cells()[0].core();
    let w_ih = core.params.value(core.w_ih);
    for r in 0..i {
        for c in 0..4 * u {
            assert_eq!(w_ih[c * i + r], k4[r * 4 * u + c]);
        }
    }
}

#[test]
fn bad_input_errors_name_the_values() {
    let mut layer = Lstm::new(3, 4).build().unwrap();
    let x = Tensor::zeros(&[2, 5, 7]);
    let e = layer
        .forward_seq(&x, None, None, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains('3') && e.contains('7'), "{e}");
    let x = Tensor::zeros(&[2, 5, 3]);
    let bad_mask = Tensor::zeros(&[2, 4]);
    let e = layer
        .forward_seq(&x, Some(&bad_mask), None, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[2, 5]") && e.contains("[2, 4]"), "{e}");
    let bad_state = vec![gated::recurrent::CellState {
        h: Tensor::zeros(&[2, 5]),
        c: Some(Tensor::zeros(&[2, 4])),
    }];
    let e = layer
        .forward_seq(&x, None, Some(&bad_state), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[2, 4]") && e.contains("[2, 5]"), "{e}");
    let e = Lstm::new(3, 0).build().unwrap_err().to_string();
    assert!(e.contains("units") && e.contains('0'), "{e}");
    let e = gated::Activation::parse("swish").unwrap_err().to_string();
    assert!(e.contains("swish") && e.contains("tanh"), "{e}");
    let e = gated::Initializer::parse("he_normal")
        .unwrap_err()
        .to_string();
    assert!(e.contains("he_normal"), "{e}");
    let e = Lstm::new(3, 4)
        .dropout(1.5)
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("1.5"), "{e}");
    let e = layer
        .backward_seq(&Tensor::zeros(&[2, 4]), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("without a training forward"), "{e}");
    assert!(CellConfig::gru(3, 4)
        .recurrent_activation(gated::Activation::Tanh)
        .validate()
        .is_err());
}

#[test]
fn masked_steps_repeat_output_and_carry_state() {
    let mut layer = Lstm::new(2, 3)
        .return_sequences(true)
        .seed(4)
        .build()
        .unwrap();
    let mut rng = Rng::new(2);
    let x = Tensor::from_vec(&[1, 4, 2], randn(8, &mut rng)).unwrap();
    let mask = Tensor::from_vec(&[1, 4], vec![0., 1., 0., 1.]).unwrap();
    let out = layer.forward_seq(&x, Some(&mask), None, false).unwrap();
    let y = out.output.data();
    assert!(
        y[..3].iter().all(|&v| v == 0.0),
        "first masked step outputs zeros"
    );
    assert_eq!(
        &y[3..6],
        &y[6..9],
        "masked step repeats the previous output"
    );
    // Removing the masked steps gives the same final state.
    let x2 = Tensor::from_vec(&[1, 2, 2], [&x.data()[2..4], &x.data()[6..8]].concat()).unwrap();
    let out2 = layer.forward_seq(&x2, None, None, false).unwrap();
    assert!(out.states[0].h.max_abs_diff(&out2.states[0].h) < 1e-6);
    assert!(
        out.states[0]
            .c
            .as_ref()
            .unwrap()
            .max_abs_diff(out2.states[0].c.as_ref().unwrap())
            < 1e-6
    );
}

#[test]
fn go_backwards_reverses_input_and_output_order() {
    let mut fwd = Gru::new(2, 3)
        .return_sequences(true)
        .seed(1)
        .build()
        .unwrap();
    let mut bwd = Gru::new(2, 3)
        .return_sequences(true)
        .go_backwards(true)
        .seed(1)
        .build()
        .unwrap();
    let mut rng = Rng::new(2);
    let x = Tensor::from_vec(&[1, 3, 2], randn(6, &mut rng)).unwrap();
    let xr = Tensor::from_vec(
        &[1, 3, 2],
        [&x.data()[4..6], &x.data()[2..4], &x.data()[0..2]].concat(),
    )
    .unwrap();
    let a = bwd.forward_seq(&x, None, None, false).unwrap().output;
    let b = fwd.forward_seq(&xr, None, None, false).unwrap().output;
    assert_eq!(a, b);
}

#[test]
fn stateful_carries_state_until_reset() {
    use gated::Layer;
    let mut layer = Lstm::new(2, 3).stateful(true).seed(3).build().unwrap();
    let mut rng = Rng::new(2);
    let x = Tensor::from_vec(&[1, 4, 2], randn(8, &mut rng)).unwrap();
    let (a, b) = (
        Tensor::from_vec(&[1, 2, 2], x.data()[..4].to_vec()).unwrap(),
        Tensor::from_vec(&[1, 2, 2], x.data()[4..].to_vec()).unwrap(),
    );
    let whole = layer.forward_seq(&x, None, None, false).unwrap().output;
    layer.reset_states();
    layer.forward_seq(&a, None, None, false).unwrap();
    let second = layer.forward_seq(&b, None, None, false).unwrap().output;
    assert!(whole.max_abs_diff(&second) < 1e-6);
    layer.reset_states();
    let fresh = layer.forward_seq(&b, None, None, false).unwrap().output;
    assert!(fresh.max_abs_diff(&second) > 1e-4);
}

#[test]
fn stacked_cells_equal_stacked_layers() {
    use gated::recurrent::{Rnn, RnnOptions, StackedRnnCells};
    let cfgs = vec![CellConfig::lstm(3, 4), CellConfig::gru(4, 2)];
    let mut stacked = StackedRnnCells::new(cfgs.clone())
        .return_sequences(true)
        .seed(6)
        .build()
        .unwrap();
    let opts = RnnOptions {
        return_sequences: true,
        ..Default::default()
    };
    let mut l1 = Rnn::from_configs("a", &cfgs[..1], opts.clone(), 0).unwrap();
    let mut l2 = Rnn::from_configs("b", &cfgs[1..], opts, 0).unwrap();
    use gated::Layer;
    l1.params_mut()[0]
        .values
        .copy_from_slice(&stacked.params()[0].values);
    l2.params_mut()[0]
        .values
        .copy_from_slice(&stacked.params()[1].values);
    let mut rng = Rng::new(2);
    let x = Tensor::from_vec(&[2, 5, 3], randn(30, &mut rng)).unwrap();
    let mask = Tensor::from_vec(&[2, 5], vec![1., 1., 0., 1., 1., 1., 0., 0., 1., 1.]).unwrap();
    let a = stacked
        .forward_seq(&x, Some(&mask), None, false)
        .unwrap()
        .output;
    let h1 = l1.forward_seq(&x, Some(&mask), None, false).unwrap().output;
    let b = l2
        .forward_seq(&h1, Some(&mask), None, false)
        .unwrap()
        .output;
    assert!(a.max_abs_diff(&b) < 1e-6);
}
