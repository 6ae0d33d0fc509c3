//! Next-frame prediction on moving-squares movies, after Keras's `conv_lstm.py`,
//! at a size a laptop trains in a minute.
//!
//! Movies are drawn as in the Keras example: 3 to 7 squares of half-width 2 or 3
//! move in straight lines over an 80x80 canvas, the frames are cropped to the
//! central 40x40, some squares get a ±0.1 noise border, and the target of frame
//! `t` is frame `t + 1` (noise-free). The model is a small version of
//! `examples/conv_lstm.toml`: 2 x [ConvLSTM2D(8, 3x3, same) + BatchNormalization]
//! and Conv3D(1, 3x3x3, sigmoid), trained with Adam (lr 0.01) on binary
//! cross-entropy. BatchNormalization uses momentum 0.9 instead of Keras's 0.99 so
//! that its moving statistics (used at inference) settle within a short run.
//!
//! It prints the binary cross-entropy of the predicted next frame on held-out
//! movies against the copy-the-last-frame baseline. The honest number is the
//! last frame's: the Conv3D head convolves over time with `same` padding, so its
//! output for frame `t < 15` sees input frame `t + 1`, which is that output's
//! target (Keras's model has the same leak); at the last frame the window's
//! future slot is zero padding. It also writes
//! `conv_lstm_strip.png`: input frames, predicted next frames and true next
//! frames, one row each.
//!
//! ```text
//! cargo run --release --example conv_lstm -- [steps=150] [batch=4] [out=conv_lstm_strip.png]
//! ```

use gated::model::spec::parse_spec;
use gated::model::Sequential;
use gated::train::loss::Loss;
use gated::train::optim::Optimizer;
use gated::{Result, Rng, Tensor};
use std::path::Path;
use std::time::Instant;

const FRAMES: usize = 15;
const SIZE: usize = 40;
const CANVAS: usize = 80;

const SPEC: &str = r#"
name = "conv_lstm_small"
[input]
shape = ["None", 40, 40, 1]

[[layer]]
type = "conv_lstm2d"
filters = 8
kernel_size = [3, 3]
padding = "same"
return_sequences = true

[[layer]]
type = "batch_normalization"
momentum = 0.9

[[layer]]
type = "conv_lstm2d"
filters = 8
kernel_size = [3, 3]
padding = "same"
return_sequences = true

[[layer]]
type = "batch_normalization"
momentum = 0.9

[[layer]]
type = "conv3d"
filters = 1
kernel_size = [3, 3, 3]
activation = "sigmoid"
padding = "same"
"#;

/// `n` movies `[n, FRAMES, SIZE, SIZE, 1]` and their next frames, as conv_lstm.py draws them.
fn movies(n: usize, rng: &mut Rng) -> (Tensor, Tensor) {
    let frame = CANVAS * CANVAS;
    let mut noisy = vec![0.0f32; n * FRAMES * frame];
    let mut shifted = vec![0.0f32; n * FRAMES * frame];
    let paint = |buf: &mut Vec<f32>, i: usize, t: usize, cx: i64, cy: i64, w: i64, v: f32| {
        for x in (cx - w).max(0)..(cx + w).min(CANVAS as i64) {
            for y in (cy - w).max(0)..(cy + w).min(CANVAS as i64) {
                buf[(i * FRAMES + t) * frame + x as usize * CANVAS + y as usize] += v;
            }
        }
    };
    for i in 0..n {
        for _ in 0..3 + rng.below(5) {
            let (x0, y0) = (20 + rng.below(40) as i64, 20 + rng.below(40) as i64);
            let (dx, dy) = (rng.below(3) as i64 - 1, rng.below(3) as i64 - 1);
            let w = 2 + rng.below(2) as i64;
            for t in 0..FRAMES as i64 {
                let (x, y) = (x0 + dx * t, y0 + dy * t);
                paint(&mut noisy, i, t as usize, x, y, w, 1.0);
                if rng.below(2) == 1 {
                    let sign = if rng.below(2) == 1 { -1.0 } else { 1.0 };
                    paint(&mut noisy, i, t as usize, x, y, w + 1, 0.1 * sign);
                }
                let (x, y) = (x0 + dx * (t + 1), y0 + dy * (t + 1));
                paint(&mut shifted, i, t as usize, x, y, w, 1.0);
            }
        }
    }
    let crop = |buf: &[f32]| -> Vec<f32> {
        let mut out = Vec::with_capacity(n * FRAMES * SIZE * SIZE);
        for f in buf.chunks_exact(frame) {
            for x in 20..20 + SIZE {
                out.extend(
                    f[x * CANVAS + 20..x * CANVAS + 20 + SIZE]
                        .iter()
                        .map(|v| v.min(1.0)),
                );
            }
        }
        out
    };
    let shape = [n, FRAMES, SIZE, SIZE, 1];
    (
        Tensor::from_vec(&shape, crop(&noisy)).unwrap_or_default(),
        Tensor::from_vec(&shape, crop(&shifted)).unwrap_or_default(),
    )
}

/// Keras's binary cross-entropy (probabilities clipped to [1e-7, 1 - 1e-7]) of
/// frame `t` of `pred` against frame `t` of `target`, mean over the batch.
fn frame_bce(pred: &Tensor, target: &Tensor, t: usize) -> f64 {
    let per = SIZE * SIZE;
    let n = pred.shape()[0];
    let mut sum = 0.0f64;
    for i in 0..n {
        let off = (i * FRAMES + t) * per;
        for k in off..off + per {
            let p = (pred.data()[k] as f64).clamp(1e-7, 1.0 - 1e-7);
            let y = target.data()[k] as f64;
            sum -= y * p.ln() + (1.0 - y) * (1.0 - p).ln();
        }
    }
    sum / (n * per) as f64
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg =
        |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (steps, batch) = (arg(0, 150), arg(1, 4));
    let out = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "conv_lstm_strip.png".to_string());

    let mut model: Sequential = parse_spec(Path::new("conv_lstm_small.toml"), SPEC, false, 7)?;
    print!("{}", model.summary());
    let mut rng = Rng::new(2026);
    let (test_x, test_y) = movies(16, &mut rng);
    let loss = Loss::parse("binary_crossentropy")?;
    let mut opt = Optimizer::parse("adam", 0.01)?;
    let start = Instant::now();
    for step in 1..=steps {
        let (x, y) = movies(batch, &mut rng);
        model.zero_grad();
        let pred = model.forward(x, true)?;
        let (l, d) = loss.compute(&pred, &y)?;
        model.backward(d)?;
        opt.step(&mut model.params_mut())?;
        if step % 10 == 0 || step == steps {
            println!(
                "step {step:4}/{steps}  bce {l:.4}  {:.1}s",
                start.elapsed().as_secs_f64()
            );
        }
    }
    let train_s = start.elapsed().as_secs_f64();

    // Held-out movies: the prediction for the last input frame is the next frame.
    let pred = model.forward(test_x.clone(), false)?;
    let t = FRAMES - 1;
    let model_bce = frame_bce(&pred, &test_y, t);
    let copy_bce = frame_bce(&test_x, &test_y, t);
    let all_model: f64 = (0..FRAMES)
        .map(|t| frame_bce(&pred, &test_y, t))
        .sum::<f64>()
        / FRAMES as f64;
    let all_copy: f64 = (0..FRAMES)
        .map(|t| frame_bce(&test_x, &test_y, t))
        .sum::<f64>()
        / FRAMES as f64;
    println!("trained {steps} steps of batch {batch} in {train_s:.1}s");
    println!("next-frame BCE on 16 held-out movies, frame {}: model {model_bce:.4}, copy-last-frame baseline {copy_bce:.4}", t + 1);
    println!("mean over all {FRAMES} frames: model {all_model:.4}, copy-last-frame baseline {all_copy:.4}");
    println!("  (not a forecast: Conv3D's 'same' padding over time lets the output at frame t see");
    println!(
        "   input frame t+1, its own target, as in Keras's model; only the last frame is honest)"
    );

    write_strip(Path::new(&out), &test_x, &pred, &test_y)?;
    println!("wrote {out}: rows = input frames 8-15, predicted next frames, true next frames");
    Ok(())
}

/// Three rows of 8 frames (input, predicted, true) of the first movie, 3x enlarged.
fn write_strip(path: &Path, x: &Tensor, pred: &Tensor, y: &Tensor) -> Result<()> {
    const SCALE: usize = 3;
    const GAP: usize = 2;
    let cols = 8;
    let first = FRAMES - cols;
    let cell = SIZE * SCALE + GAP;
    let (w, h) = (cols * cell, 3 * cell);
    let mut img = vec![64u8; w * h];
    for (row, t) in [x, pred, y].iter().enumerate() {
        for c in 0..cols {
            let off = (first + c) * SIZE * SIZE;
            for py in 0..SIZE * SCALE {
                for px in 0..SIZE * SCALE {
                    let v = t.data()[off + (py / SCALE) * SIZE + px / SCALE];
                    img[(row * cell + py) * w + c * cell + px] = (v.clamp(0.0, 1.0) * 255.0) as u8;
                }
            }
        }
    }
    let bytes = png_gray(&img, w, h);
    std::fs::write(path, bytes).map_err(|e| gated::Error::io(path, e))
}

/// A minimal 8-bit grayscale PNG with stored (uncompressed) deflate blocks.
fn png_gray(img: &[u8], w: usize, h: usize) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in data {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    }
    // Raw scanlines, each with filter byte 0.
    let mut raw = Vec::with_capacity((w + 1) * h);
    for row in img.chunks_exact(w) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    // zlib stream of stored blocks.
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, b) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = b.len() as u16;
        z.extend(len.to_le_bytes());
        z.extend((!len).to_le_bytes());
        z.extend_from_slice(b);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &v in &raw {
        a = (a + v as u32) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend(((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend((w as u32).to_be_bytes());
    ihdr.extend((h as u32).to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]); // 8-bit grayscale, deflate, no filter, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}
