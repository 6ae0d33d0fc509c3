//! Finite-difference checks for the conv layers' unit tests.

use crate::gradcheck::{compare, dot, numeric_grad, ATOL, EPS, RTOL};
use crate::layers::{Flow, Layer};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// A tensor of normal random values times `scale`.
pub fn randt(rng: &mut Rng, shape: &[usize], scale: f32) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|_| rng.normal() * scale).collect()).unwrap()
}

struct State<'a, L: ?Sized> {
    layer: &'a mut L,
    x: Vec<f32>,
}

/// Checks `backward` against central differences of `dot(out, upstream)` for
/// the input and every trainable parameter group. `before` runs before each
/// forward (reseeding dropout masks). Returns the number of values compared.
pub fn check_layer<L: Layer + ?Sized>(layer: &mut L, x: Tensor, before: impl Fn(&mut L)) -> usize {
    let shape = x.shape().to_vec();
    for p in layer.params_mut() {
        p.zero_grad();
    }
    before(layer);
    let out = layer.forward(Flow::new(x.clone()), true).unwrap();
    let up = randt(&mut Rng::new(99), out.x.shape(), 1.0);
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
    let num = numeric_grad(&mut st, |s| s.x.as_mut_slice(), loss, EPS);
    compare(&format!("{name} d_input"), dx.data(), &num, ATOL, RTOL).unwrap();
    let mut checked = num.len();
    let groups = st.layer.params().len();
    for k in 0..groups {
        let p = st.layer.params()[k];
        if p.trainable_len() == 0 {
            continue;
        }
        let analytic = p.grads.clone();
        assert!(
            analytic.iter().any(|g| *g != 0.0),
            "{name} params[{k}] all zero"
        );
        let num = numeric_grad(
            &mut st,
            |s| {
                s.layer
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
        compare(&format!("{name} params[{k}]"), &analytic, &num, ATOL, RTOL).unwrap();
        checked += num.len();
    }
    checked
}
