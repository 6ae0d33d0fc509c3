//! Parity of the conv layers with PyTorch: replays the tensors written by
//! `scripts/make_conv_fixtures.py` (float64 autograd references stored as
//! float32) and requires agreement to 1e-5 relative with a small absolute floor.

use gated::conv::{
    BatchNormConfig, BatchNormalization, Conv3d, Conv3dConfig, ConvLstm2d, ConvLstm2dConfig,
    Padding,
};
use gated::layers::{Flow, Layer};
use gated::{Activation, Rng, Tensor};

mod common;
use common::Fixture;

const RTOL: f32 = 1e-5;
const ATOL: f32 = 2e-6;

fn assert_close(what: &str, got: &[f32], want: &Tensor) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0.0f32;
    for (i, (&g, &w)) in got.iter().zip(want.data()).enumerate() {
        let diff = (g - w).abs();
        worst = worst.max(diff);
        assert!(
            diff <= ATOL + RTOL * w.abs(),
            "{what}[{i}]: got {g}, PyTorch {w} (diff {diff})"
        );
    }
    assert!(want.data().iter().any(|v| *v != 0.0), "{what}: all zero");
    eprintln!("{what}: worst abs diff {worst:e}");
}

fn set(p: &mut gated::Params, name: &str, t: &Tensor) {
    p.set(name, t.shape(), t.data()).unwrap();
}

fn check_convlstm(name: &str, padding: Padding, go_backwards: bool, return_sequences: bool) {
    let fx = Fixture::open("conv", &format!("{name}.safetensors"));
    let (x, w_ih, w_hh, bias) = (
        fx.get("x"),
        fx.get("weight_ih"),
        fx.get("weight_hh"),
        fx.get("bias"),
    );
    let (f, c) = (w_hh.shape()[1], w_ih.shape()[1]);
    let k = (w_ih.shape()[2], w_ih.shape()[3]);
    let cfg = ConvLstm2dConfig::new(f, k)
        .padding(padding)
        .go_backwards(go_backwards)
        .return_sequences(return_sequences);
    let mut l = ConvLstm2d::new("conv_lst_m2d_1", c, cfg, &mut Rng::new(0)).unwrap();
    {
        let p = &mut l.params_mut()[0];
        set(p, "weight_ih", &w_ih);
        set(p, "weight_hh", &w_hh);
        set(p, "bias", &bias);
        p.zero_grad();
    }
    let y = l.forward(Flow::new(x), true).unwrap().x;
    assert_close(&format!("{name} y"), y.data(), &fx.get("y"));
    let (h_n, c_n) = l.final_state().unwrap();
    assert_close(&format!("{name} h_n"), h_n.data(), &fx.get("h_n"));
    assert_close(&format!("{name} c_n"), c_n.data(), &fx.get("c_n"));
    let dx = l.backward(fx.get("up")).unwrap();
    assert_close(&format!("{name} dx"), dx.data(), &fx.get("dx"));
    let p = l.params()[0];
    for (slot, key) in [(0, "dweight_ih"), (1, "dweight_hh"), (2, "dbias")] {
        assert_close(&format!("{name} {key}"), p.grad(slot), &fx.get(key));
    }
}

#[test]
fn convlstm_same_padding_sequences_matches_pytorch() {
    check_convlstm("convlstm_same_seq", Padding::Same, false, true);
}

#[test]
fn convlstm_valid_padding_last_step_go_backwards_matches_pytorch() {
    check_convlstm("convlstm_valid_last_backwards", Padding::Valid, true, false);
}

#[test]
fn convlstm_even_kernel_same_padding_matches_pytorch() {
    check_convlstm("convlstm_same_even_kernel", Padding::Same, false, true);
}

#[test]
fn batchnorm_training_matches_pytorch() {
    let fx = Fixture::open("conv", "batchnorm_train.safetensors");
    let x = fx.get("x");
    let c = *x.shape().last().unwrap();
    let mut l =
        BatchNormalization::new("batch_normalization_1", c, BatchNormConfig::default()).unwrap();
    set(l.params_mut()[0], "weight", &fx.get("weight"));
    set(l.params_mut()[0], "bias", &fx.get("bias"));
    let y = l.forward(Flow::new(x), true).unwrap().x;
    assert_close("bn y", y.data(), &fx.get("y"));
    assert_close("bn running_mean", l.moving_mean(), &fx.get("running_mean"));
    assert_close(
        "bn running_var",
        l.moving_variance(),
        &fx.get("running_var"),
    );
    let dx = l.backward(fx.get("up")).unwrap();
    assert_close("bn dx", dx.data(), &fx.get("dx"));
    let p = l.params()[0];
    assert_close("bn dweight", p.grad(0), &fx.get("dweight"));
    assert_close("bn dbias", p.grad(1), &fx.get("dbias"));
    // The moving statistics get no gradient.
    assert!(l.params()[1].grads.iter().all(|g| *g == 0.0));
}

fn check_conv3d(name: &str, padding: Padding, act: Activation) {
    let fx = Fixture::open("conv", &format!("{name}.safetensors"));
    let (x, w, b) = (fx.get("x"), fx.get("weight"), fx.get("bias"));
    let s = w.shape();
    let cfg = Conv3dConfig::new(s[0], (s[2], s[3], s[4]))
        .padding(padding)
        .activation(act);
    let mut l = Conv3d::new("conv3d_1", s[1], cfg, &mut Rng::new(0)).unwrap();
    set(l.params_mut()[0], "weight", &w);
    set(l.params_mut()[0], "bias", &b);
    let y = l.forward(Flow::new(x), true).unwrap().x;
    assert_close(&format!("{name} y"), y.data(), &fx.get("y"));
    let dx = l.backward(fx.get("up")).unwrap();
    assert_close(&format!("{name} dx"), dx.data(), &fx.get("dx"));
    let p = l.params()[0];
    assert_close(&format!("{name} dweight"), p.grad(0), &fx.get("dweight"));
    assert_close(&format!("{name} dbias"), p.grad(1), &fx.get("dbias"));
}

#[test]
fn conv3d_same_sigmoid_matches_pytorch() {
    check_conv3d("conv3d_same_sigmoid", Padding::Same, Activation::Sigmoid);
}

#[test]
fn conv3d_valid_linear_matches_pytorch() {
    check_conv3d("conv3d_valid_linear", Padding::Valid, Activation::Linear);
}
