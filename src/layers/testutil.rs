//! Finite-difference checks shared by the layer tests.

use super::{Flow, Layer};
use crate::gradcheck::{compare, dot, numeric_grad, ATOL, EPS, RTOL};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// Which input elements to compare against finite differences.
pub enum InputCheck {
    /// Every element.
    All,
    /// None (integer inputs such as token ids).
    Skip,
    /// Only where the flag is true (e.g. away from a discontinuity).
    Only(Vec<bool>),
}

/// Normal random values.
pub fn randn(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal()).collect()
}

/// A tensor of normal random values.
pub fn randt(rng: &mut Rng, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(shape, randn(rng, n)).unwrap()
}

struct State<'a, L: ?Sized> {
    layer: &'a mut L,
    x: Vec<f32>,
}

/// Checks `backward` against central differences of `loss = dot(out, upstream)`
/// for a fixed random `upstream`: the input gradient (per `input`) and every
/// trainable parameter. `before` runs before every forward (e.g. to reseed a
/// dropout mask). Returns the analytic input gradient.
pub fn check_layer<L: Layer + ?Sized>(
    layer: &mut L,
    x: Tensor,
    before: impl Fn(&mut L),
    input: InputCheck,
) -> Tensor {
    let shape = x.shape().to_vec();
    for p in layer.params_mut() {
        p.zero_grad();
    }
    before(layer);
    let out = layer.forward(Flow::new(x.clone()), true).unwrap();
    let up = randt(&mut Rng::new(99), out.x.shape());
    let dx = layer.backward(up.clone()).unwrap();
    assert_eq!(dx.shape(), &shape[..]);

    let loss = |s: &mut State<L>| {
        before(s.layer);
        let xt = Tensor::from_vec(&shape, s.x.clone()).unwrap();
        let out = s.layer.forward(Flow::new(xt), true).unwrap();
        dot(out.x.data(), up.data())
    };
    let mut st = State {
        layer,
        x: x.into_vec(),
    };
    let name = st.layer.name().to_string();
    let select = match &input {
        InputCheck::All => Some(vec![true; st.x.len()]),
        InputCheck::Skip => None,
        InputCheck::Only(m) => Some(m.clone()),
    };
    if let Some(sel) = select {
        let num = numeric_grad(&mut st, |s| s.x.as_mut_slice(), loss, EPS);
        let (a, n): (Vec<f32>, Vec<f64>) = dx
            .data()
            .iter()
            .zip(&num)
            .zip(&sel)
            .filter(|(_, &keep)| keep)
            .map(|((&a, &n), _)| (a, n))
            .unzip();
        assert!(!a.is_empty());
        compare(&format!("{name} d_input"), &a, &n, ATOL, RTOL).unwrap();
    }
    let n_params = st.layer.params().len();
    for k in 0..n_params {
        let p = &st.layer.params()[k];
        if p.trainable_len() == 0 {
            continue;
        }
        let analytic = p.grads.clone();
        let num = numeric_grad(
            &mut st,
            |s| {
                let p = s.layer.params_mut().into_iter().nth(k).unwrap();
                p.values.as_mut_slice()
            },
            loss,
            EPS,
        );
        compare(&format!("{name} params[{k}]"), &analytic, &num, ATOL, RTOL).unwrap();
    }
    dx
}
