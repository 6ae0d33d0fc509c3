//! End to end through the pieces `gated train --text` and `gated generate` are
//! built on: a text file, its vocabulary, char-rnn's split, contiguous lanes
//! trained with carried state (truncated BPTT), then streaming generation.

use gated::data::{read_text, split_stream, CharVocab, ContiguousBatches};
use gated::demo::{adding_batch, embedded_reber_batch, reber_correct, MarkerPlacement};
use gated::generate::{Generator, Strategy};
use gated::layers::{Dense, DenseConfig, Embedding, EmbeddingConfig, TimeDistributed};
use gated::model::{InputSpec, Sequential};
use gated::recurrent::Lstm;
use gated::train::{clip_grad_norm, Loss, Optimizer};
use gated::Rng;

fn char_model(v: usize) -> Sequential {
    let mut rng = Rng::new(11);
    let mut m = Sequential::new(
        "char_rnn",
        InputSpec {
            shape: vec![None],
            integer: true,
        },
    );
    m.add(Box::new(
        Embedding::new("embedding_1", EmbeddingConfig::new(v, 8), &mut rng).unwrap(),
    ))
    .unwrap();
    m.add(Box::new(
        Lstm::new(8, 32)
            .return_sequences(true)
            .name("lstm_1")
            .seed(12)
            .build()
            .unwrap(),
    ))
    .unwrap();
    let dense = Dense::new("dense_1", 32, DenseConfig::new(v), &mut rng).unwrap();
    m.add(Box::new(TimeDistributed::new(
        "time_distributed_1",
        Box::new(dense),
    )))
    .unwrap();
    m
}

#[test]
fn text_file_to_trained_generator() {
    // A periodic text written for this test, where two characters of context
    // always fix the next one: easy to learn.
    let text = "the quick brown fox jumps over a lazy dog. ".repeat(25);
    let dir = std::env::temp_dir().join(format!("gated-textgen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("corpus.txt");
    std::fs::write(&path, &text).unwrap();

    let loaded = read_text(&path).unwrap();
    assert_eq!(loaded, text);
    let vocab = CharVocab::from_text(&loaded).unwrap();
    vocab.save(dir.join("vocab.json")).unwrap();
    let vocab = CharVocab::load(dir.join("vocab.json")).unwrap();
    let ids = vocab.encode(&loaded).unwrap();
    let split = split_stream(&ids, 0.1, 0.0).unwrap();
    let batches = ContiguousBatches::new(&split.train, 4, 10).unwrap();
    let val = ContiguousBatches::new(&split.val, 1, 10).unwrap();

    let mut model = char_model(vocab.len());
    let loss = Loss::parse("sparse_categorical_crossentropy").unwrap();
    let mut opt = Optimizer::parse("adam", 0.01).unwrap();
    model.set_stateful(true);
    let mut epoch_losses = Vec::new();
    for _epoch in 0..30 {
        model.reset_states(); // once per pass; the state is carried between chunks
        let mut total = 0.0;
        for chunk in batches.iter() {
            model.zero_grad();
            let logits = model.forward(chunk.inputs.clone(), true).unwrap();
            let (l, d) = loss.compute(&logits, &chunk.targets).unwrap();
            model.backward(d).unwrap();
            let mut groups = model.params_mut();
            clip_grad_norm(&mut groups, 5.0).unwrap();
            opt.step(&mut groups).unwrap();
            total += l;
        }
        epoch_losses.push(total / batches.len() as f32);
    }
    let (first, last) = (epoch_losses[0], *epoch_losses.last().unwrap());
    assert!(last < 0.3 * first, "loss {first} -> {last}");

    // Validation with carried state through the held-out piece.
    model.reset_states();
    let mut val_loss = 0.0;
    for chunk in val.iter() {
        let logits = model.forward(chunk.inputs, false).unwrap();
        val_loss += loss.compute(&logits, &chunk.targets).unwrap().0;
    }
    val_loss /= val.len() as f32;
    assert!(val_loss < 0.5, "validation loss {val_loss}");

    // Generation: greedy continuation reproduces the period.
    model.set_stateful(false);
    let mut gen = Generator::new(&mut model, vocab.clone(), Strategy::Greedy, 0).unwrap();
    gen.prime("the quick ").unwrap();
    let out: String = gen.by_ref().take(10).collect::<gated::Result<_>>().unwrap();
    assert_eq!(out, "brown fox ");
    // Low-temperature sampling stays on the learned text too.
    gen.set_strategy(Strategy::temperature(0.05).unwrap())
        .unwrap();
    gen.prime("lazy dog. the ").unwrap();
    let out = gen.generate(6).unwrap();
    assert_eq!(out, "quick ");
    // Unknown prime characters are reported, not replaced.
    let e = gen.prime("the!").unwrap_err().to_string();
    assert!(e.contains("'!'") && e.contains("position 3"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn demo_tasks_shapes_feed_models() {
    // The task tensors have the shapes a recurrent model takes.
    let mut rng = Rng::new(1);
    let reber = embedded_reber_batch(8, None, &mut rng).unwrap();
    let steps = reber.inputs.shape()[1];
    let mut lstm = Lstm::new(7, 7)
        .return_sequences(true)
        .seed(3)
        .build()
        .unwrap();
    let out = lstm
        .forward_seq(&reber.inputs, Some(&reber.mask), None, false)
        .unwrap();
    assert_eq!(out.output.shape(), &[8, steps, 7]);
    // An untrained model is (almost surely) not correct on every string.
    let c = reber_correct(&out.output, &reber, true).unwrap();
    assert_eq!(c.len(), 8);

    let add = adding_batch(16, 30, MarkerPlacement::Halves, &mut rng).unwrap();
    let mut lstm = Lstm::new(2, 4).seed(4).build().unwrap();
    let out = lstm.forward_seq(&add.inputs, None, None, false).unwrap();
    assert_eq!(out.output.shape(), &[16, 4]);
    assert_eq!(add.targets.shape(), &[16, 1]);
}
