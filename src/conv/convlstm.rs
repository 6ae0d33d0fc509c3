//! `ConvLstm2d`: Keras's `ConvLSTM2D` (Shi et al., 2015), an LSTM whose input
//! and recurrent products are 2-D convolutions over channels-last frames.
//!
//! For every step, with `*` a convolution, gates in PyTorch's order i, f, g, o:
//!
//! ```text
//! i = σ(W_xi * x + W_hi * h + b_i)    f = σ(W_xf * x + W_hf * h + b_f)
//! g = act(W_xg * x + W_hg * h + b_g)  o = σ(W_xo * x + W_ho * h + b_o)
//! c = f ⊙ c_prev + i ⊙ g              h = o ⊙ act(c)
//! ```
//!
//! The input convolution uses the layer's `padding`; the recurrent one is always
//! `same`, so h keeps the output frame size. σ is `recurrent_activation`
//! (sigmoid, or Keras 2's hard_sigmoid), act is `activation` (tanh).
//!
//! Parameters (Keras counts one bias, `4f(kh·kw·(c+f) + 1)`), PyTorch-style:
//! `weight_ih` `[4f, c, kh, kw]`, `weight_hh` `[4f, f, kh, kw]`, `bias` `[4f]`.
//! A Keras kernel `(kh, kw, c, 4f)` is `weight_ih` with its axes moved:
//! `kernel[y, x, ci, o] = weight_ih[o, ci, y, x]` (likewise the recurrent kernel);
//! both use gate blocks i, f, c/g, o.
//!
//! Implementation: the input convolution of every time step is one im2col and
//! one GEMM before the loop; each step then adds the recurrent convolution
//! (im2col of h, one GEMM) and applies the fused gate maths. BPTT walks back over
//! the steps, forming the recurrent weight gradient and `dh` per step, and the
//! input weight gradient and `dx` as whole-sequence GEMMs after the loop.
//! Dropout (`dropout` on x, `recurrent_dropout` on h) uses one mask per sequence
//! shared by the four gates (Keras's `implementation=2`), in training only.

use super::im2col::Geom;
use super::{
    check_rate, dropout_mask, fill_conv_weight, from_time_major, out_dim, to_time_major, Padding,
};
use crate::kernels::gemm::{sgemm, Trans};
use crate::layers::{check_d_output, no_cache, Flow, Layer, Shape};
use crate::params::{Params, SlotId};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Activation, Error, Initializer, Result};

const TYPE: &str = "ConvLSTM2D";

/// Arguments of [`ConvLstm2d`], named and defaulted as in Keras.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvLstm2dConfig {
    /// Number of output channels f.
    pub filters: usize,
    /// Kernel `(kh, kw)` of both convolutions.
    pub kernel_size: (usize, usize),
    /// Padding of the input convolution (the recurrent one is always same).
    pub padding: Padding,
    /// Return every step's h (`[B, T, H', W', f]`) instead of the last (`[B, H', W', f]`).
    pub return_sequences: bool,
    /// Process the sequence reversed (outputs stay in processing order, as Keras).
    pub go_backwards: bool,
    /// Activation of the candidate and of the cell output (default tanh).
    pub activation: Activation,
    /// Gate activation (default sigmoid; Keras 2's default was hard_sigmoid).
    pub recurrent_activation: Activation,
    /// Initialise the forget-gate bias to 1 (default true).
    pub unit_forget_bias: bool,
    /// Dropout rate on the input frames.
    pub dropout: f32,
    /// Dropout rate on the recurrent state.
    pub recurrent_dropout: f32,
    /// Initialiser of `weight_ih` (default glorot_uniform with conv fans).
    pub kernel_initializer: Initializer,
    /// Initialiser of `weight_hh` (default orthogonal on `[4f, f·kh·kw]`).
    pub recurrent_initializer: Initializer,
    /// Initialiser of `bias` (default zeros; the forget block is then set to 1
    /// when `unit_forget_bias`).
    pub bias_initializer: Initializer,
    /// Seed of the dropout-mask generator.
    pub seed: u64,
}

impl ConvLstm2dConfig {
    /// Keras defaults: padding valid, tanh / sigmoid, unit_forget_bias, no dropout.
    pub fn new(filters: usize, kernel_size: (usize, usize)) -> Self {
        ConvLstm2dConfig {
            filters,
            kernel_size,
            padding: Padding::Valid,
            return_sequences: false,
            go_backwards: false,
            activation: Activation::Tanh,
            recurrent_activation: Activation::Sigmoid,
            unit_forget_bias: true,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            kernel_initializer: Initializer::GlorotUniform,
            recurrent_initializer: Initializer::Orthogonal,
            bias_initializer: Initializer::Zeros,
            seed: 0,
        }
    }

    /// Sets the input convolution's padding.
    pub fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// Sets `return_sequences`.
    pub fn return_sequences(mut self, on: bool) -> Self {
        self.return_sequences = on;
        self
    }

    /// Sets `go_backwards`.
    pub fn go_backwards(mut self, on: bool) -> Self {
        self.go_backwards = on;
        self
    }

    /// Sets the activation.
    pub fn activation(mut self, act: Activation) -> Self {
        self.activation = act;
        self
    }

    /// Sets the gate activation.
    pub fn recurrent_activation(mut self, act: Activation) -> Self {
        self.recurrent_activation = act;
        self
    }

    /// Sets `unit_forget_bias`.
    pub fn unit_forget_bias(mut self, on: bool) -> Self {
        self.unit_forget_bias = on;
        self
    }

    /// Sets the input and recurrent dropout rates.
    pub fn dropout(mut self, dropout: f32, recurrent_dropout: f32) -> Self {
        self.dropout = dropout;
        self.recurrent_dropout = recurrent_dropout;
        self
    }

    /// Sets the dropout-mask seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// What the backward pass needs from the last training forward.
#[derive(Debug)]
struct Tape {
    batch: usize,
    steps: usize,
    /// Geometry of the input and recurrent convolutions.
    gx: Geom,
    gh: Geom,
    /// Input frames after dropout, time-major in processing order `[T, B, H*W*C]`.
    x_tm: Vec<f32>,
    /// Activated gates i, f, g, o per position `[T, B*P, 4f]`.
    gates: Vec<f32>,
    /// Cell states `[T, B*P*f]`.
    c: Vec<f32>,
    /// act(c) `[T, B*P*f]`.
    act_c: Vec<f32>,
    /// The recurrent inputs (h_{t-1} after recurrent dropout) `[T, B*P*f]`.
    h_rec: Vec<f32>,
    in_mask: Option<Vec<f32>>,
    rec_mask: Option<Vec<f32>>,
    /// Input shape as given.
    in_shape: Vec<usize>,
    out_shape: Vec<usize>,
}

/// Keras's `ConvLSTM2D` layer. See the [module docs](self) for the maths.
#[derive(Debug)]
pub struct ConvLstm2d {
    name: String,
    in_channels: usize,
    config: ConvLstm2dConfig,
    params: Params,
    w_ih: SlotId,
    w_hh: SlotId,
    bias: SlotId,
    rng: Rng,
    tape: Option<Tape>,
    state: Option<(Tensor, Tensor)>,
}

impl ConvLstm2d {
    /// Builds the layer for frames with `in_channels` channels and draws its
    /// weights from `rng`. Errors on zero sizes or a dropout rate outside [0, 1).
    pub fn new(
        name: impl Into<String>,
        in_channels: usize,
        config: ConvLstm2dConfig,
        rng: &mut Rng,
    ) -> Result<Self> {
        let name = name.into();
        let (kh, kw) = config.kernel_size;
        if config.filters == 0 || in_channels == 0 || kh == 0 || kw == 0 {
            return Err(Error::invalid(
                "ConvLSTM2D dimensions",
                format!(
                    "layer {name}: filters ({}), input channels ({in_channels}) and kernel_size ({kh}, {kw}) must be positive",
                    config.filters
                ),
            ));
        }
        check_rate(&name, "dropout", config.dropout)?;
        check_rate(&name, "recurrent_dropout", config.recurrent_dropout)?;
        let f = config.filters;
        let mut params = Params::new();
        let w_ih = params.try_add("weight_ih", &[4 * f, in_channels, kh, kw])?;
        let w_hh = params.try_add("weight_hh", &[4 * f, f, kh, kw])?;
        let bias = params.try_add("bias", &[4 * f])?;
        fill_conv_weight(
            config.kernel_initializer,
            params.value_mut(w_ih),
            4 * f,
            in_channels,
            kh * kw,
            rng,
        );
        fill_conv_weight(
            config.recurrent_initializer,
            params.value_mut(w_hh),
            4 * f,
            f,
            kh * kw,
            rng,
        );
        config
            .bias_initializer
            .fill(params.value_mut(bias), 4 * f, 1, in_channels * kh * kw, rng);
        if config.unit_forget_bias {
            params.value_mut(bias)[f..2 * f]
                .iter_mut()
                .for_each(|v| *v = 1.0);
        }
        Ok(ConvLstm2d {
            name,
            in_channels,
            rng: Rng::new(config.seed),
            config,
            params,
            w_ih,
            w_hh,
            bias,
            tape: None,
            state: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ConvLstm2dConfig {
        &self.config
    }

    /// Input channels c.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Number of parameters, Keras's count `4f(kh·kw·(c+f) + 1)`.
    pub fn param_count(&self) -> usize {
        self.params.len()
    }

    /// Restarts the dropout-mask generator from `seed` (reproducible masks).
    pub fn reseed(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
    }

    /// The final `(h, c)` of the last forward pass, each `[B, H', W', f]`
    /// (Keras's `return_state=True` extra outputs).
    pub fn final_state(&self) -> Option<(&Tensor, &Tensor)> {
        self.state.as_ref().map(|(h, c)| (h, c))
    }

    fn input_error(&self, actual: impl std::fmt::Debug) -> Error {
        Error::shape(
            format!(
                "layer {} ({TYPE}) input: a 5-D [batch, time, height, width, channels] tensor with {} channels{}",
                self.name,
                self.in_channels,
                match self.config.padding {
                    Padding::Valid => format!(
                        " and frames of at least {}x{} (valid padding)",
                        self.config.kernel_size.0, self.config.kernel_size.1
                    ),
                    Padding::Same => String::new(),
                }
            ),
            format!("[batch, time, height, width, {}]", self.in_channels),
            actual,
        )
    }

    /// The two convolution geometries for `h x w` frames.
    fn geoms(&self, h: usize, w: usize) -> Option<(Geom, Geom)> {
        let (kh, kw) = self.config.kernel_size;
        let gx = Geom::new(
            [1, h, w],
            self.in_channels,
            [1, kh, kw],
            self.config.padding,
        )?;
        let gh = Geom::new(
            [1, gx.output[1], gx.output[2]],
            self.config.filters,
            [1, kh, kw],
            Padding::Same,
        )?;
        Some((gx, gh))
    }
}

impl Layer for ConvLstm2d {
    fn name(&self) -> &str {
        &self.name
    }

    fn type_name(&self) -> &'static str {
        TYPE
    }

    fn output_shape(&self, input: &[Option<usize>]) -> Result<Shape> {
        let (kh, kw) = self.config.kernel_size;
        if input.len() != 5 || input[4] != Some(self.in_channels) {
            return Err(self.input_error(input));
        }
        let pad = self.config.padding;
        let h = out_dim(pad, input[2], kh).map_err(|_| self.input_error(input))?;
        let w = out_dim(pad, input[3], kw).map_err(|_| self.input_error(input))?;
        let f = Some(self.config.filters);
        Ok(if self.config.return_sequences {
            vec![input[0], input[1], h, w, f]
        } else {
            vec![input[0], h, w, f]
        })
    }

    fn forward(&mut self, input: Flow, training: bool) -> Result<Flow> {
        let Flow { x, mask } = input;
        if mask.is_some() {
            return Err(Error::invalid(
                "mask",
                format!(
                    "layer {} ({TYPE}) does not support masked (padded) sequences",
                    self.name
                ),
            ));
        }
        let shape = x.shape().to_vec();
        if shape.len() != 5 || shape[4] != self.in_channels || shape[1] == 0 {
            return Err(self.input_error(&shape));
        }
        let (batch, steps, h_in, w_in) = (shape[0], shape[1], shape[2], shape[3]);
        let (gx, gh) = self
            .geoms(h_in, w_in)
            .ok_or_else(|| self.input_error(&shape))?;
        let f = self.config.filters;
        let g4 = 4 * f;
        let (act, ract) = (self.config.activation, self.config.recurrent_activation);
        let p = gx.positions();
        let bp = batch * p;
        let frame = gx.in_len();
        let hlen = bp * f;

        // Dropout masks, one per sequence.
        let in_mask = (training && self.config.dropout > 0.0)
            .then(|| dropout_mask(&mut self.rng, batch * frame, self.config.dropout));
        let rec_mask = (training && self.config.recurrent_dropout > 0.0)
            .then(|| dropout_mask(&mut self.rng, hlen, self.config.recurrent_dropout));

        // x: [B, T, H*W*C] -> [T, B, H*W*C] in processing order, masked.
        let mut x_tm = to_time_major(x.data(), batch, steps, frame, self.config.go_backwards);
        if let Some(m) = &in_mask {
            for step in x_tm.chunks_exact_mut(batch * frame) {
                step.iter_mut().zip(m).for_each(|(v, k)| *v *= k);
            }
        }

        // Input convolution of every frame: gates[T*B*P, 4f] = cols_x W_ih^T + b.
        let cols_x = gx.im2col_many(&x_tm, steps * batch);
        let kx = gx.window();
        let mut gates = vec![0.0f32; steps * bp * g4];
        let bias = self.params.value(self.bias);
        for row in gates.chunks_exact_mut(g4) {
            row.copy_from_slice(bias);
        }
        sgemm(
            Trans::N,
            Trans::T,
            steps * bp,
            g4,
            kx,
            1.0,
            &cols_x,
            kx,
            self.params.value(self.w_ih),
            kx,
            1.0,
            &mut gates,
            g4,
        );
        drop(cols_x);

        let kh_win = gh.window();
        let mut cols_h = vec![0.0f32; bp * kh_win];
        let mut c_all = vec![0.0f32; steps * hlen];
        let mut act_c = vec![0.0f32; steps * hlen];
        let mut hs = vec![0.0f32; steps * hlen];
        let mut h_rec_all = if training {
            vec![0.0f32; steps * hlen]
        } else {
            Vec::new()
        };
        let mut h_rec = vec![0.0f32; hlen];
        for s in 0..steps {
            let pre = &mut gates[s * bp * g4..(s + 1) * bp * g4];
            if s > 0 {
                // Recurrent convolution: pre += im2col(h_{t-1} ⊙ mask) W_hh^T.
                h_rec.copy_from_slice(&hs[(s - 1) * hlen..s * hlen]);
                if let Some(m) = &rec_mask {
                    h_rec.iter_mut().zip(m).for_each(|(v, k)| *v *= k);
                }
                if training {
                    h_rec_all[s * hlen..(s + 1) * hlen].copy_from_slice(&h_rec);
                }
                for b in 0..batch {
                    gh.im2col(
                        &h_rec[b * p * f..(b + 1) * p * f],
                        &mut cols_h[b * p * kh_win..(b + 1) * p * kh_win],
                    );
                }
                sgemm(
                    Trans::N,
                    Trans::T,
                    bp,
                    g4,
                    kh_win,
                    1.0,
                    &cols_h,
                    kh_win,
                    self.params.value(self.w_hh),
                    kh_win,
                    1.0,
                    pre,
                    g4,
                );
            }
            let (before, now) = c_all.split_at_mut(s * hlen);
            let c_prev = (s > 0).then(|| &before[(s - 1) * hlen..]);
            let c_now = &mut now[..hlen];
            let ac_now = &mut act_c[s * hlen..(s + 1) * hlen];
            let h_now = &mut hs[s * hlen..(s + 1) * hlen];
            for n in 0..bp {
                let row = &mut pre[n * g4..(n + 1) * g4];
                for j in 0..f {
                    let i = ract.apply(row[j]);
                    let fg = ract.apply(row[f + j]);
                    let g = act.apply(row[2 * f + j]);
                    let o = ract.apply(row[3 * f + j]);
                    row[j] = i;
                    row[f + j] = fg;
                    row[2 * f + j] = g;
                    row[3 * f + j] = o;
                    let idx = n * f + j;
                    let cp = c_prev.map_or(0.0, |c| c[idx]);
                    let c = fg * cp + i * g;
                    let ac = act.apply(c);
                    c_now[idx] = c;
                    ac_now[idx] = ac;
                    h_now[idx] = o * ac;
                }
            }
        }

        let (ho, wo) = (gx.output[1], gx.output[2]);
        let last_h = hs[(steps - 1) * hlen..].to_vec();
        let last_c = c_all[(steps - 1) * hlen..].to_vec();
        self.state = Some((
            Tensor::from_vec(&[batch, ho, wo, f], last_h.clone())?,
            Tensor::from_vec(&[batch, ho, wo, f], last_c)?,
        ));
        let (out_shape, out) = if self.config.return_sequences {
            (
                vec![batch, steps, ho, wo, f],
                from_time_major(&hs, batch, steps, p * f, false),
            )
        } else {
            (vec![batch, ho, wo, f], last_h)
        };
        if training {
            self.tape = Some(Tape {
                batch,
                steps,
                gx,
                gh,
                x_tm,
                gates,
                c: c_all,
                act_c,
                h_rec: h_rec_all,
                in_mask,
                rec_mask,
                in_shape: shape,
                out_shape: out_shape.clone(),
            });
        }
        Ok(Flow {
            x: Tensor::from_vec(&out_shape, out)?,
            mask,
        })
    }

    fn backward(&mut self, d_output: Tensor) -> Result<Tensor> {
        let tape = self
            .tape
            .as_ref()
            .ok_or_else(|| no_cache(&self.name, TYPE))?;
        check_d_output(&self.name, TYPE, &tape.out_shape, &d_output)?;
        let (batch, steps, gx, gh) = (tape.batch, tape.steps, tape.gx, tape.gh);
        let f = self.config.filters;
        let g4 = 4 * f;
        let (act, ract) = (self.config.activation, self.config.recurrent_activation);
        let p = gx.positions();
        let bp = batch * p;
        let hlen = bp * f;
        let kh_win = gh.window();
        let kx = gx.window();

        // d(loss)/d(h_t) from the output, time-major `[T, B*P*f]`.
        let d_out = d_output.into_vec();
        let dh_out: Vec<f32> = if self.config.return_sequences {
            to_time_major(&d_out, batch, steps, p * f, false)
        } else {
            let mut v = vec![0.0f32; steps * hlen];
            v[(steps - 1) * hlen..].copy_from_slice(&d_out);
            v
        };

        let mut dpre = vec![0.0f32; steps * bp * g4];
        let mut dh_next = vec![0.0f32; hlen];
        let mut dc_next = vec![0.0f32; hlen];
        let mut cols_h = vec![0.0f32; bp * kh_win];
        let mut dcols_h = vec![0.0f32; bp * kh_win];
        for s in (0..steps).rev() {
            let gates = &tape.gates[s * bp * g4..(s + 1) * bp * g4];
            let ac_now = &tape.act_c[s * hlen..(s + 1) * hlen];
            let c_prev = (s > 0).then(|| &tape.c[(s - 1) * hlen..s * hlen]);
            let dh_s = &dh_out[s * hlen..(s + 1) * hlen];
            let dp = &mut dpre[s * bp * g4..(s + 1) * bp * g4];
            for n in 0..bp {
                let row = &gates[n * g4..(n + 1) * g4];
                let drow = &mut dp[n * g4..(n + 1) * g4];
                for j in 0..f {
                    let idx = n * f + j;
                    let (i, fg, g, o) = (row[j], row[f + j], row[2 * f + j], row[3 * f + j]);
                    let ac = ac_now[idx];
                    let dh = dh_s[idx] + dh_next[idx];
                    let d_o = dh * ac;
                    let dc = dc_next[idx] + dh * o * act.derivative_from_output(ac);
                    let cp = c_prev.map_or(0.0, |c| c[idx]);
                    dc_next[idx] = dc * fg;
                    drow[j] = dc * g * ract.derivative_from_output(i);
                    drow[f + j] = dc * cp * ract.derivative_from_output(fg);
                    drow[2 * f + j] = dc * i * act.derivative_from_output(g);
                    drow[3 * f + j] = d_o * ract.derivative_from_output(o);
                }
            }
            if s == 0 {
                break;
            }
            // Recurrent convolution: dW_hh += dpre_s^T cols_h, dh_rec = col2im(dpre_s W_hh).
            let h_rec = &tape.h_rec[s * hlen..(s + 1) * hlen];
            for b in 0..batch {
                gh.im2col(
                    &h_rec[b * p * f..(b + 1) * p * f],
                    &mut cols_h[b * p * kh_win..(b + 1) * p * kh_win],
                );
            }
            if self.params.slots()[self.w_hh].trainable {
                sgemm(
                    Trans::T,
                    Trans::N,
                    g4,
                    kh_win,
                    bp,
                    1.0,
                    dp,
                    g4,
                    &cols_h,
                    kh_win,
                    1.0,
                    self.params.grad_mut(self.w_hh),
                    kh_win,
                );
            }
            sgemm(
                Trans::N,
                Trans::N,
                bp,
                kh_win,
                g4,
                1.0,
                dp,
                g4,
                self.params.value(self.w_hh),
                kh_win,
                0.0,
                &mut dcols_h,
                kh_win,
            );
            dh_next.iter_mut().for_each(|v| *v = 0.0);
            gh.col2im_many(&dcols_h, batch, &mut dh_next);
            if let Some(m) = &tape.rec_mask {
                dh_next.iter_mut().zip(m).for_each(|(v, k)| *v *= k);
            }
        }

        // Whole-sequence products for the input convolution and the bias.
        let rows = steps * bp;
        if self.params.slots()[self.bias].trainable {
            let gb = self.params.grad_mut(self.bias);
            for row in dpre.chunks_exact(g4) {
                gb.iter_mut().zip(row).for_each(|(g, d)| *g += d);
            }
        }
        if self.params.slots()[self.w_ih].trainable {
            let cols_x = gx.im2col_many(&tape.x_tm, steps * batch);
            sgemm(
                Trans::T,
                Trans::N,
                g4,
                kx,
                rows,
                1.0,
                &dpre,
                g4,
                &cols_x,
                kx,
                1.0,
                self.params.grad_mut(self.w_ih),
                kx,
            );
        }
        let mut dcols_x = vec![0.0f32; rows * kx];
        sgemm(
            Trans::N,
            Trans::N,
            rows,
            kx,
            g4,
            1.0,
            &dpre,
            g4,
            self.params.value(self.w_ih),
            kx,
            0.0,
            &mut dcols_x,
            kx,
        );
        let frame = gx.in_len();
        let mut dx_tm = vec![0.0f32; steps * batch * frame];
        gx.col2im_many(&dcols_x, steps * batch, &mut dx_tm);
        if let Some(m) = &tape.in_mask {
            for step in dx_tm.chunks_exact_mut(batch * frame) {
                step.iter_mut().zip(m).for_each(|(v, k)| *v *= k);
            }
        }
        let dx = from_time_major(&dx_tm, batch, steps, frame, self.config.go_backwards);
        Tensor::from_vec(&tape.in_shape, dx)
    }

    fn params(&self) -> Vec<&Params> {
        vec![&self.params]
    }

    fn params_mut(&mut self) -> Vec<&mut Params> {
        vec![&mut self.params]
    }

    fn reseed(&mut self, seed: u64) {
        ConvLstm2d::reseed(self, seed);
    }

    fn reset_states(&mut self) {
        self.state = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::testutil::{check_layer, randt};

    fn layer(c: usize, cfg: ConvLstm2dConfig) -> ConvLstm2d {
        let mut l = ConvLstm2d::new("conv_lst_m2d_1", c, cfg, &mut Rng::new(3)).unwrap();
        // A random bias so that every gate's bias path is exercised.
        let mut r = Rng::new(4);
        let b = l.bias;
        l.params
            .value_mut(b)
            .iter_mut()
            .for_each(|v| *v = r.uniform(-0.5, 0.5));
        l
    }

    #[test]
    fn keras_parameter_counts() {
        let l =
            ConvLstm2d::new("c", 1, ConvLstm2dConfig::new(40, (3, 3)), &mut Rng::new(0)).unwrap();
        assert_eq!(l.param_count(), 59_200);
        let l =
            ConvLstm2d::new("c", 40, ConvLstm2dConfig::new(40, (3, 3)), &mut Rng::new(0)).unwrap();
        assert_eq!(l.param_count(), 115_360);
        let p = &l.params()[0];
        assert_eq!(p.slots()[0].shape, vec![160, 40, 3, 3]);
        assert_eq!(p.slots()[1].shape, vec![160, 40, 3, 3]);
        // unit_forget_bias: the f block of the bias is 1, the rest 0.
        let b = p.value(2);
        assert!(b[40..80].iter().all(|&v| v == 1.0));
        assert!(b[..40].iter().chain(&b[80..]).all(|&v| v == 0.0));
    }

    #[test]
    fn gradcheck_same_padding_sequences() {
        let cfg = ConvLstm2dConfig::new(2, (3, 3))
            .padding(Padding::Same)
            .return_sequences(true);
        let mut l = layer(2, cfg);
        let x = randt(&mut Rng::new(1), &[2, 3, 4, 3, 2], 0.7);
        check_layer(&mut l, x, |_| {});
    }

    #[test]
    fn gradcheck_valid_padding_last_step_uneven_kernel() {
        let cfg = ConvLstm2dConfig::new(3, (2, 3)).padding(Padding::Valid);
        let mut l = layer(2, cfg);
        let x = randt(&mut Rng::new(2), &[2, 3, 4, 4, 2], 0.7);
        let out = l.forward(Flow::new(x.clone()), false).unwrap();
        assert_eq!(out.x.shape(), &[2, 3, 2, 3]);
        check_layer(&mut l, x, |_| {});
        // Same padding with an even kernel: the recurrent convolution too.
        let cfg = ConvLstm2dConfig::new(2, (2, 2)).padding(Padding::Same);
        let mut l = layer(1, cfg);
        check_layer(
            &mut l,
            randt(&mut Rng::new(5), &[1, 3, 3, 4, 1], 0.7),
            |_| {},
        );
    }

    #[test]
    fn gradcheck_go_backwards() {
        let cfg = ConvLstm2dConfig::new(2, (3, 3))
            .padding(Padding::Same)
            .return_sequences(true)
            .go_backwards(true);
        let mut l = layer(1, cfg);
        check_layer(
            &mut l,
            randt(&mut Rng::new(6), &[2, 3, 3, 3, 1], 0.7),
            |_| {},
        );
    }

    #[test]
    fn gradcheck_with_fixed_dropout_masks() {
        let cfg = ConvLstm2dConfig::new(2, (3, 3))
            .padding(Padding::Same)
            .return_sequences(true)
            .dropout(0.3, 0.4);
        let mut l = layer(2, cfg);
        let x = randt(&mut Rng::new(7), &[2, 3, 3, 3, 2], 0.7);
        // The masks really drop something, and a training pass differs from inference.
        l.reseed(11);
        let train = l.forward(Flow::new(x.clone()), true).unwrap().x;
        let infer = l.forward(Flow::new(x.clone()), false).unwrap().x;
        assert!(train.max_abs_diff(&infer) > 1e-3);
        check_layer(&mut l, x, |l| l.reseed(11));
    }

    #[test]
    fn go_backwards_is_forward_on_the_reversed_sequence() {
        let base = ConvLstm2dConfig::new(2, (3, 3))
            .padding(Padding::Same)
            .return_sequences(true);
        let mut fwd = layer(1, base.clone());
        let mut bwd = layer(1, base.go_backwards(true));
        let x = randt(&mut Rng::new(8), &[1, 4, 3, 3, 1], 1.0);
        let frame = 9;
        let mut rev = vec![0.0; x.len()];
        for t in 0..4 {
            rev[t * frame..(t + 1) * frame]
                .copy_from_slice(&x.data()[(3 - t) * frame..(4 - t) * frame]);
        }
        let a = bwd.forward(Flow::new(x), false).unwrap().x;
        let b = fwd
            .forward(
                Flow::new(Tensor::from_vec(&[1, 4, 3, 3, 1], rev).unwrap()),
                false,
            )
            .unwrap()
            .x;
        assert_eq!(a.data(), b.data());
    }

    #[test]
    fn final_state_is_the_last_output_and_hard_sigmoid_is_selectable() {
        let cfg = ConvLstm2dConfig::new(2, (3, 3))
            .padding(Padding::Same)
            .recurrent_activation(Activation::HardSigmoid);
        let mut l = layer(1, cfg);
        let x = randt(&mut Rng::new(9), &[2, 3, 3, 3, 1], 1.0);
        let y = l.forward(Flow::new(x.clone()), false).unwrap().x;
        let (h, c) = l.final_state().unwrap();
        assert_eq!(h.data(), y.data());
        assert_eq!(c.shape(), &[2, 3, 3, 2]);
        assert!(c.max_abs_diff(h) > 1e-4);
        let mut s = layer(1, ConvLstm2dConfig::new(2, (3, 3)).padding(Padding::Same));
        let ys = s.forward(Flow::new(x), false).unwrap().x;
        assert!(ys.max_abs_diff(&y) > 1e-4);
    }

    #[test]
    fn bad_inputs_name_the_shapes() {
        let mut l = layer(2, ConvLstm2dConfig::new(2, (3, 3)));
        let e = l
            .forward(Flow::new(Tensor::zeros(&[2, 3, 4, 2])), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("5-D") && e.contains("[2, 3, 4, 2]"), "{e}");
        let e = l
            .forward(Flow::new(Tensor::zeros(&[1, 2, 4, 4, 3])), true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("2 channels") && e.contains("[1, 2, 4, 4, 3]"),
            "{e}"
        );
        let e = l
            .forward(Flow::new(Tensor::zeros(&[1, 2, 2, 5, 2])), true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("at least 3x3") && e.contains("[1, 2, 2, 5, 2]"),
            "{e}"
        );
        let e = l
            .output_shape(&[None, None, Some(2), Some(8), Some(2)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 3x3"), "{e}");
        assert_eq!(
            l.output_shape(&[None, None, Some(6), Some(8), Some(2)])
                .unwrap(),
            vec![None, Some(4), Some(6), Some(2)]
        );
        let e = l
            .backward(Tensor::zeros(&[1, 2, 2, 2]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("without a preceding forward"), "{e}");
        l.forward(Flow::new(Tensor::zeros(&[1, 2, 4, 4, 2])), true)
            .unwrap();
        let e = l
            .backward(Tensor::zeros(&[1, 2, 2, 3]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[1, 2, 2, 2]") && e.contains("[1, 2, 2, 3]"),
            "{e}"
        );
        assert!(ConvLstm2d::new(
            "c",
            1,
            ConvLstm2dConfig::new(2, (3, 3)).dropout(1.0, 0.0),
            &mut Rng::new(0)
        )
        .is_err());
        assert!(
            ConvLstm2d::new("c", 1, ConvLstm2dConfig::new(0, (3, 3)), &mut Rng::new(0)).is_err()
        );
    }
}
