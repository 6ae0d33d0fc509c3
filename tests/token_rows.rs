//! Inside a model, an embedding with a small vocabulary hands its token rows
//! to the recurrent layer after it (`Layer::token_rows`), which projects the
//! table once and returns the table's gradient. The model's outputs and every
//! gradient must be those of the same layers run one by one, without them.

use gated::layers::{Dense, DenseConfig, Embedding, EmbeddingConfig, Flow};
use gated::model::{InputSpec, Sequential};
use gated::recurrent::{Gru, Lstm, RnnBuilder, SimpleRnn};
use gated::{Layer, Rng, Tensor};

const VOCAB: usize = 6;
const DIM: usize = 5;
const BATCH: usize = 4;
const STEPS: usize = 7;

fn model(first: RnnBuilder, trainable_table: bool) -> Sequential {
    let mut rng = Rng::new(7);
    let mut m = Sequential::new(
        "tokens",
        InputSpec {
            shape: vec![Some(STEPS)],
            integer: true,
        },
    );
    let table = EmbeddingConfig::new(VOCAB, DIM)
        .mask_zero(true)
        .trainable(trainable_table);
    m.add(Box::new(
        Embedding::new("embedding", table, &mut rng).unwrap(),
    ))
    .unwrap();
    m.add(Box::new(
        first.return_sequences(true).name("rnn_1").build().unwrap(),
    ))
    .unwrap();
    m.add(Box::new(
        Lstm::new(8, 6).name("rnn_2").seed(3).build().unwrap(),
    ))
    .unwrap();
    m.add(Box::new(
        Dense::new("dense", 6, DenseConfig::new(3), &mut rng).unwrap(),
    ))
    .unwrap();
    m
}

/// Token ids with padding (0) at the ends of some rows, every id present.
fn ids() -> Tensor {
    let v: Vec<f32> = (0..BATCH * STEPS)
        .map(|i| {
            let (b, t) = (i / STEPS, i % STEPS);
            if t + b > STEPS {
                0.0
            } else {
                ((i * 5 + 1) % VOCAB) as f32
            }
        })
        .collect();
    Tensor::from_vec(&[BATCH, STEPS], v).unwrap()
}

fn d_output(shape: &[usize]) -> Tensor {
    let len = shape.iter().product();
    Tensor::from_vec(
        shape,
        (0..len).map(|i| ((i % 7) as f32 - 3.0) * 0.25).collect(),
    )
    .unwrap()
}

fn grads(m: &Sequential) -> Vec<Vec<f32>> {
    m.params().iter().map(|p| p.grads.clone()).collect()
}

/// (output, every parameter gradient) through the model, which passes token rows.
fn through_model(m: &mut Sequential) -> (Vec<f32>, Vec<Vec<f32>>) {
    m.zero_grad();
    let out = m.forward(ids(), true).unwrap();
    m.backward(d_output(out.shape())).unwrap();
    (out.into_vec(), grads(m))
}

/// The same pass calling each layer's plain `forward` and `backward`.
fn layer_by_layer(m: &mut Sequential) -> (Vec<f32>, Vec<Vec<f32>>) {
    m.zero_grad();
    let mut flow = Flow::new(ids());
    for l in m.layers_mut() {
        flow = l.forward(flow, true).unwrap();
    }
    let out = flow.x;
    let mut d = d_output(out.shape());
    for l in m.layers_mut().iter_mut().rev() {
        d = l.backward(d).unwrap();
    }
    (out.into_vec(), grads(m))
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * scale,
            "{what}[{i}]: {g} against {w} (scale {scale})"
        );
    }
}

fn check(first: impl Fn() -> RnnBuilder, trainable_table: bool) {
    let mut m = model(first(), trainable_table);
    assert!(
        m.layers()[0].token_rows(&ids()).is_some(),
        "the embedding must offer token rows for this batch"
    );
    let (out_tokens, grads_tokens) = through_model(&mut m);
    let (out_plain, grads_plain) = layer_by_layer(&mut m);
    assert_close("output", &out_tokens, &out_plain);
    assert_eq!(grads_tokens.len(), grads_plain.len());
    for (k, (g, w)) in grads_tokens.iter().zip(&grads_plain).enumerate() {
        assert!(
            w.iter().any(|&v| v != 0.0) || !trainable_table && k == 0,
            "parameter group {k} has a gradient"
        );
        assert_close(&format!("gradient of group {k}"), g, w);
    }
}

#[test]
fn lstm_after_a_small_embedding_matches_the_plain_pass() {
    check(|| Lstm::new(DIM, 8).seed(1), true);
}

#[test]
fn gru_and_simple_rnn_after_a_small_embedding_match_the_plain_pass() {
    check(|| Gru::new(DIM, 8).seed(2), true);
    check(|| Gru::new(DIM, 8).reset_after(false).seed(2), true);
    check(|| SimpleRnn::new(DIM, 8).seed(4), true);
}

#[test]
fn backwards_and_frozen_tables_match_the_plain_pass() {
    check(|| Lstm::new(DIM, 8).go_backwards(true).seed(1), true);
    check(|| Lstm::new(DIM, 8).seed(1), false);
}

#[test]
fn token_rows_are_offered_only_for_a_small_vocabulary() {
    let m = model(Lstm::new(DIM, 8).seed(1), true);
    let emb = &m.layers()[0];
    let rows = emb.token_rows(&ids()).unwrap();
    assert_eq!(rows.vocab(), VOCAB);
    assert_eq!(rows.ids.len(), BATCH * STEPS);
    // Fewer than four ids per table row: the per-token projection is cheaper.
    let few = Tensor::from_vec(&[1, 3], vec![1.0, 2.0, 3.0]).unwrap();
    assert!(emb.token_rows(&few).is_none());
    // Ids the embedding would reject: no rows (its forward names the error).
    let mut bad = ids().into_vec();
    bad[3] = VOCAB as f32;
    let bad = Tensor::from_vec(&[BATCH, STEPS], bad).unwrap();
    assert!(emb.token_rows(&bad).is_none());
}

/// The model's embedding output for `ids()` (the same table: same seed, drawn first).
fn embedded() -> Flow {
    let config = EmbeddingConfig::new(VOCAB, DIM).mask_zero(true);
    let mut e = Embedding::new("e", config, &mut Rng::new(7)).unwrap();
    e.forward(Flow::new(ids()), false).unwrap()
}

#[test]
fn a_layer_given_token_rows_returns_the_table_gradient() {
    let m = model(Lstm::new(DIM, 8).seed(1), true);
    let rows = m.layers()[0].token_rows(&ids()).unwrap();
    let x = embedded();
    for dropout in [0.0, 0.5] {
        let mut rnn = Lstm::new(DIM, 8).dropout(dropout).seed(1).build().unwrap();
        let out = rnn.forward_tokens(x.clone(), rows.clone(), true).unwrap();
        let dx = rnn.backward(d_output(out.x.shape())).unwrap();
        let table_grad = rnn.take_table_grad();
        if dropout == 0.0 {
            assert_eq!(dx.len(), 0, "the input gradient is replaced");
            assert_eq!(table_grad.unwrap().shape(), &[VOCAB, DIM]);
            assert!(rnn.take_table_grad().is_none(), "handed over once");
        } else {
            // Input dropout changes the rows: the plain pass runs.
            assert_eq!(dx.shape(), &[BATCH, STEPS, DIM]);
            assert!(table_grad.is_none());
        }
    }
}

#[test]
fn token_rows_that_are_not_the_input_rows_are_ignored() {
    let m = model(Lstm::new(DIM, 8).seed(1), true);
    let rows = m.layers()[0].token_rows(&ids()).unwrap();
    let x = embedded();
    assert!(rows.describes(x.x.data(), DIM));
    let mut other_table = rows.clone();
    other_table.table[DIM + 2] += 1.0;
    let mut bad_id = rows.clone();
    bad_id.ids[5] = VOCAB;
    let mut short = rows.clone();
    short.ids.pop();
    for wrong in [other_table, bad_id, short] {
        assert!(!wrong.describes(x.x.data(), DIM));
        let mut rnn = Lstm::new(DIM, 8).seed(1).build().unwrap();
        let want = rnn.forward(x.clone(), true).unwrap().x;
        let out = rnn.forward_tokens(x.clone(), wrong, true).unwrap();
        assert_eq!(out.x, want, "the plain pass ran");
        let dx = rnn.backward(d_output(out.x.shape())).unwrap();
        assert_eq!(dx.shape(), &[BATCH, STEPS, DIM]);
        assert!(rnn.take_table_grad().is_none());
    }
}
