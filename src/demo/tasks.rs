//! Two benchmark tasks of Hochreiter & Schmidhuber, "Long Short-Term Memory",
//! Neural Computation 9(8), 1997, generated from the project's seeded [`Rng`].
//!
//! # Embedded Reber grammar (H&S Experiment 1)
//!
//! A Reber string is a walk through the finite-state graph below, which is the
//! one drawn by Fahlman (1991) and reproduced as Figure 3 of H&S (1997), after
//! Reber (1967). Nodes are numbered 0..5; the string starts with `B` (entering
//! node 0) and every node has two out-edges chosen with probability 1/2:
//!
//! | node | edges (symbol → node) |
//! |------|-----------------------|
//! | 0    | T → 1, P → 2          |
//! | 1    | S → 1, X → 3          |
//! | 2    | T → 2, V → 4          |
//! | 3    | X → 2, S → 5          |
//! | 4    | P → 3, V → 5          |
//! | 5    | E → end               |
//!
//! e.g. `BTSSXXTVVE`, `BPVVE`. An *embedded* Reber string is `B`, then `T` or
//! `P`, then a whole Reber string, then the same `T` or `P` again, then `E`
//! (e.g. `BTBPVVETE`): predicting the penultimate symbol needs the second
//! symbol, remembered across the inner string.
//!
//! The task (as in H&S): read the string one symbol at a time and at every step
//! predict the *set* of symbols that may legally come next. Symbols are one-hot
//! over `B, T, P, S, X, V, E` (indices 0..6, [`REBER_SYMBOLS`]); targets are
//! multi-hot. The final `E` is never an input (nothing follows it), so a string
//! of `n` symbols gives `n - 1` steps. A string is correct only when, at every
//! step, the outputs thresholded at 0.5 (sigmoid outputs; 0.0 for logits)
//! equal the legal set exactly ([`reber_correct`]).
//!
//! Strings have different lengths: a batch is padded at the end ("post") to
//! its longest string, and [`ReberBatch::mask`] `[B, T]` is 1.0 on real steps and
//! 0.0 on padding (padded inputs and targets are all zeros). Losses and the
//! correctness check must ignore masked steps.
//!
//! # Adding problem (after H&S Experiment 4)
//!
//! Each sequence has `T` steps and two channels: channel 0 holds values drawn
//! uniformly from `[0, 1)`, channel 1 is a marker that is 1.0 at exactly two
//! steps and 0.0 elsewhere. The target is the sum of the two marked values.
//! This is the common modern variant (values in `[0, 1]`, target the plain sum,
//! as in Le, Jaitly & Hinton 2015), not H&S's original (values in `[-1, 1]`,
//! target `0.5 + (X1 + X2) / 4`, end markers). Marker positions
//! ([`MarkerPlacement`]):
//!
//! - [`MarkerPlacement::Halves`] (default): the first uniformly in the first
//!   half `[0, T/2)`, the second uniformly in the second half `[T/2, T)`.
//! - [`MarkerPlacement::HochreiterSchmidhuber`]: as H&S place them, the first
//!   among the first 10 steps (`[0, min(10, T/2))`), the second among the first
//!   half `[0, T/2)`, distinct from the first.
//!
//! The sum of two independent uniform values has mean 1 and variance
//! `2 * 1/12 = 1/6`, so always answering 1.0 gives a mean squared error of
//! `1/6 ≈ 0.167` ([`ADDING_BASELINE_MSE`]); a model has learned the task when
//! it does clearly better (H&S count an error below 0.04 as solved).

use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// The seven Reber symbols in one-hot order.
pub const REBER_SYMBOLS: [char; 7] = ['B', 'T', 'P', 'S', 'X', 'V', 'E'];

const B: usize = 0;
const T: usize = 1;
const P: usize = 2;
const S: usize = 3;
const X: usize = 4;
const V: usize = 5;
const E: usize = 6;
/// The node after the final `E` of a (inner) Reber string.
const END: usize = 6;

/// The Reber grammar's transition table (see the module docs for the source):
/// `REBER_TRANSITIONS[node]` lists the `(symbol, next node)` out-edges.
pub const REBER_TRANSITIONS: [&[(usize, usize)]; 6] = [
    &[(T, 1), (P, 2)],
    &[(S, 1), (X, 3)],
    &[(T, 2), (V, 4)],
    &[(X, 2), (S, 5)],
    &[(P, 3), (V, 5)],
    &[(E, END)],
];

/// A bit set over the seven symbols (bit `i` = symbol `i`).
pub type SymbolSet = u8;

/// Symbols as text, e.g. `[0, 2, 5, 5, 6]` → `"BPVVE"`. Indices above 6 become `?`.
pub fn reber_to_string(symbols: &[usize]) -> String {
    symbols
        .iter()
        .map(|&s| REBER_SYMBOLS.get(s).copied().unwrap_or('?'))
        .collect()
}

/// Parses `"BPVVE"` into symbol indices; other characters are errors naming them.
pub fn reber_from_str(text: &str) -> Result<Vec<usize>> {
    text.chars()
        .enumerate()
        .map(|(i, c)| {
            REBER_SYMBOLS.iter().position(|&s| s == c).ok_or_else(|| {
                Error::invalid(
                    "Reber string",
                    format!("character {c:?} at position {i} is not one of BTPSXVE"),
                )
            })
        })
        .collect()
}

/// A random (plain) Reber string: `B`, a walk from node 0 with each out-edge
/// taken with probability 1/2, ending with `E`.
pub fn reber_string(rng: &mut Rng) -> Vec<usize> {
    let mut out = vec![B];
    let mut node = 0;
    while node != END {
        let edges = REBER_TRANSITIONS[node];
        let (sym, next) = edges[rng.below(edges.len())];
        out.push(sym);
        node = next;
    }
    out
}

/// A random embedded Reber string: `B`, `T|P`, a Reber string, the same `T|P`, `E`.
pub fn embedded_reber_string(rng: &mut Rng) -> Vec<usize> {
    let branch = if rng.below(2) == 0 { T } else { P };
    let mut out = vec![B, branch];
    out.extend(reber_string(rng));
    out.extend([branch, E]);
    out
}

/// Where a walk through the embedded grammar is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    Start,
    AfterB,
    /// After the outer `T|P`: the inner `B` comes next.
    Branch(usize),
    /// Inside the inner string at `node` (0..=5).
    Inner(usize, usize),
    /// After the inner `E`: the remembered `T|P` comes next.
    AfterInner(usize),
    /// After the second `T|P`: `E` comes next.
    Closing,
    Done,
}

impl Walk {
    fn legal(self) -> SymbolSet {
        let bit = |s: usize| 1u8 << s;
        match self {
            Walk::Start | Walk::Branch(_) => bit(B),
            Walk::AfterB => bit(T) | bit(P),
            Walk::Inner(node, _) => REBER_TRANSITIONS[node]
                .iter()
                .fold(0, |m, &(s, _)| m | bit(s)),
            Walk::AfterInner(b) => bit(b),
            Walk::Closing => bit(E),
            Walk::Done => 0,
        }
    }

    fn step(self, s: usize) -> Option<Walk> {
        Some(match (self, s) {
            (Walk::Start, B) => Walk::AfterB,
            (Walk::AfterB, T | P) => Walk::Branch(s),
            (Walk::Branch(b), B) => Walk::Inner(0, b),
            (Walk::Inner(node, b), _) => {
                let &(_, next) = REBER_TRANSITIONS[node].iter().find(|(sym, _)| *sym == s)?;
                if next == END {
                    Walk::AfterInner(b)
                } else {
                    Walk::Inner(next, b)
                }
            }
            (Walk::AfterInner(b), s2) if s2 == b => Walk::Closing,
            (Walk::Closing, E) => Walk::Done,
            _ => return None,
        })
    }
}

/// For an embedded Reber string, the set of legal next symbols after each
/// prefix `symbols[..=t]`, for `t` in `0..len - 1` (one set per input step; the
/// final `E` is not an input). Errors when the string is not in the grammar,
/// naming the first illegal symbol and its position.
pub fn embedded_reber_next_sets(symbols: &[usize]) -> Result<Vec<SymbolSet>> {
    let mut walk = Walk::Start;
    let mut sets = Vec::with_capacity(symbols.len());
    for (i, &s) in symbols.iter().enumerate() {
        walk = walk.step(s).ok_or_else(|| {
            Error::invalid(
                "embedded Reber string",
                format!(
                    "{:?}: symbol {:?} at position {i} is not allowed there",
                    reber_to_string(symbols),
                    REBER_SYMBOLS.get(s).copied().unwrap_or('?')
                ),
            )
        })?;
        sets.push(walk.legal());
    }
    if walk != Walk::Done {
        return Err(Error::invalid(
            "embedded Reber string",
            format!("{:?} ends before the final E", reber_to_string(symbols)),
        ));
    }
    sets.pop(); // nothing follows the final E
    Ok(sets)
}

/// A padded batch of embedded Reber strings (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct ReberBatch {
    /// `[B, T, 7]` one-hot input symbols; all zeros on padding.
    pub inputs: Tensor,
    /// `[B, T, 7]` multi-hot legal next symbols; all zeros on padding.
    pub targets: Tensor,
    /// `[B, T]`: 1.0 on the first `lengths[b]` steps of row `b`, 0.0 after.
    pub mask: Tensor,
    /// Real steps of each row (string length minus one).
    pub lengths: Vec<usize>,
    /// The strings, e.g. `"BTBPVVETE"`.
    pub strings: Vec<String>,
}

/// `n` random embedded Reber strings, padded to the longest. With `max_len`,
/// longer strings are discarded and drawn again (this slightly favours short
/// strings; `max_len` must be at least 9, the shortest embedded string).
pub fn embedded_reber_batch(n: usize, max_len: Option<usize>, rng: &mut Rng) -> Result<ReberBatch> {
    if n == 0 {
        return Err(Error::invalid("batch size", "must be at least 1"));
    }
    if let Some(m) = max_len {
        if m < 9 {
            return Err(Error::invalid(
                "max_len",
                format!("{m} is shorter than the shortest embedded Reber string (9 symbols)"),
            ));
        }
    }
    let strings: Vec<Vec<usize>> = (0..n)
        .map(|_| loop {
            let s = embedded_reber_string(rng);
            if max_len.is_none_or(|m| s.len() <= m) {
                break s;
            }
        })
        .collect();
    let steps = strings.iter().map(|s| s.len() - 1).max().unwrap_or(0);
    let mut inputs = Tensor::zeros(&[n, steps, 7]);
    let mut targets = Tensor::zeros(&[n, steps, 7]);
    let mut mask = Tensor::zeros(&[n, steps]);
    let mut lengths = Vec::with_capacity(n);
    for (b, s) in strings.iter().enumerate() {
        let sets = embedded_reber_next_sets(s)?;
        for (t, (&sym, &set)) in s.iter().zip(&sets).enumerate() {
            let at = (b * steps + t) * 7;
            inputs.data_mut()[at + sym] = 1.0;
            for k in 0..7 {
                if set & (1 << k) != 0 {
                    targets.data_mut()[at + k] = 1.0;
                }
            }
            mask.data_mut()[b * steps + t] = 1.0;
        }
        lengths.push(sets.len());
    }
    Ok(ReberBatch {
        inputs,
        targets,
        mask,
        lengths,
        strings: strings.iter().map(|s| reber_to_string(s)).collect(),
    })
}

/// Per string of `batch`: whether the predicted set (each output above 0.5, or
/// above 0.0 when `from_logits`) equals the legal set at every real step.
/// `outputs` is `[B, T, 7]` like `batch.targets`.
pub fn reber_correct(outputs: &Tensor, batch: &ReberBatch, from_logits: bool) -> Result<Vec<bool>> {
    if outputs.shape() != batch.targets.shape() {
        return Err(Error::shape(
            "reber_correct: outputs",
            batch.targets.shape(),
            outputs.shape(),
        ));
    }
    let (rows, steps) = match batch.targets.shape() {
        &[rows, steps, 7] => (rows, steps),
        other => return Err(Error::shape("reber_correct: targets", "[B, T, 7]", other)),
    };
    if batch.lengths.len() != rows || batch.lengths.iter().any(|&l| l > steps) {
        return Err(Error::invalid(
            "Reber batch",
            format!(
                "lengths {:?} do not fit targets of shape {:?}",
                batch.lengths,
                batch.targets.shape()
            ),
        ));
    }
    let threshold = if from_logits { 0.0 } else { 0.5 };
    Ok(batch
        .lengths
        .iter()
        .enumerate()
        .map(|(b, &len)| {
            (0..len).all(|t| {
                let at = (b * steps + t) * 7;
                (0..7).all(|k| {
                    (outputs.data()[at + k] > threshold) == (batch.targets.data()[at + k] > 0.5)
                })
            })
        })
        .collect())
}

/// Masked binary cross-entropy on logits for a Reber batch: the mean of
/// `max(z, 0) - z*y + ln(1 + e^-|z|)` over the 7 outputs of every real step
/// (padding ignored), and its gradient `(sigmoid(z) - y) / n` on real steps,
/// 0 on padding. With no padding it equals `binary_crossentropy` from logits.
pub fn reber_loss(logits: &Tensor, batch: &ReberBatch) -> Result<(f32, Tensor)> {
    if logits.shape() != batch.targets.shape() || batch.mask.len() * 7 != logits.len() {
        return Err(Error::shape(
            "reber_loss: logits",
            batch.targets.shape(),
            logits.shape(),
        ));
    }
    let real = batch.mask.data().iter().filter(|&&m| m != 0.0).count();
    if real == 0 {
        return Err(Error::invalid("Reber batch", "the mask has no real step"));
    }
    let n = (real * 7) as f64;
    let mut grad = Tensor::zeros(logits.shape());
    let mut sum = 0.0f64;
    for (step, &m) in batch.mask.data().iter().enumerate() {
        if m == 0.0 {
            continue;
        }
        for k in step * 7..step * 7 + 7 {
            let (z, y) = (logits.data()[k] as f64, batch.targets.data()[k] as f64);
            sum += z.max(0.0) - z * y + (-z.abs()).exp().ln_1p();
            let sig = if z >= 0.0 {
                1.0 / (1.0 + (-z).exp())
            } else {
                z.exp() / (1.0 + z.exp())
            };
            grad.data_mut()[k] = ((sig - y) / n) as f32;
        }
    }
    Ok(((sum / n) as f32, grad))
}

/// Where the two markers of the adding problem go (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MarkerPlacement {
    /// First marker in `[0, T/2)`, second in `[T/2, T)`.
    #[default]
    Halves,
    /// First in `[0, min(10, T/2))`, second in `[0, T/2)`, distinct.
    HochreiterSchmidhuber,
}

/// Mean squared error of always predicting 1.0 on the adding problem: the
/// variance of the sum of two uniform `[0, 1)` values, 1/6.
pub const ADDING_BASELINE_MSE: f64 = 1.0 / 6.0;

/// A batch of the adding problem.
#[derive(Debug, Clone, PartialEq)]
pub struct AddingBatch {
    /// `[B, T, 2]`: value, marker.
    pub inputs: Tensor,
    /// `[B, 1]`: the sum of the two marked values.
    pub targets: Tensor,
    /// The two marked steps of each row, in increasing order.
    pub markers: Vec<[usize; 2]>,
}

/// `batch` sequences of `len` steps. Errors when `batch` is 0 or `len` is below
/// 2 ([`MarkerPlacement::Halves`]) or 4 ([`MarkerPlacement::HochreiterSchmidhuber`]).
pub fn adding_batch(
    batch: usize,
    len: usize,
    placement: MarkerPlacement,
    rng: &mut Rng,
) -> Result<AddingBatch> {
    let min_len = match placement {
        MarkerPlacement::Halves => 2,
        MarkerPlacement::HochreiterSchmidhuber => 4,
    };
    if batch == 0 || len < min_len {
        return Err(Error::invalid(
            "adding problem",
            format!("batch ({batch}) must be positive and the length ({len}) at least {min_len}"),
        ));
    }
    let half = len / 2;
    let mut inputs = Tensor::zeros(&[batch, len, 2]);
    let mut targets = Tensor::zeros(&[batch, 1]);
    let mut markers = Vec::with_capacity(batch);
    for b in 0..batch {
        let row = &mut inputs.data_mut()[b * len * 2..(b + 1) * len * 2];
        for t in 0..len {
            row[t * 2] = rng.next_f32();
        }
        let (m1, m2) = match placement {
            MarkerPlacement::Halves => (rng.below(half), half + rng.below(len - half)),
            MarkerPlacement::HochreiterSchmidhuber => {
                let first = rng.below(half.min(10));
                let mut second = rng.below(half - 1);
                if second >= first {
                    second += 1;
                }
                (first.min(second), first.max(second))
            }
        };
        row[m1 * 2 + 1] = 1.0;
        row[m2 * 2 + 1] = 1.0;
        targets.data_mut()[b] = row[m1 * 2] + row[m2 * 2];
        markers.push([m1, m2]);
    }
    Ok(AddingBatch {
        inputs,
        targets,
        markers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An independent recogniser written from the grammar's picture, on the
    /// text form: returns the legal-next sets (as strings of symbols) after
    /// each prefix, or None when the string is not an embedded Reber string.
    fn recognise(s: &str) -> Option<Vec<String>> {
        let c: Vec<char> = s.chars().collect();
        if c.len() < 9 || c[0] != 'B' || !(c[1] == 'T' || c[1] == 'P') || c[2] != 'B' {
            return None;
        }
        let n = c.len();
        if c[n - 1] != 'E' || c[n - 2] != c[1] || c[n - 3] != 'E' {
            return None;
        }
        let mut sets = vec!["TP".to_string(), "B".to_string()];
        // Inner string c[2..n-2]: walk the graph by state names a..f.
        let mut state = 'a';
        sets.push("TP".to_string()); // after the inner B
        for &ch in &c[3..n - 2] {
            state = match (state, ch) {
                ('a', 'T') => 'b',
                ('a', 'P') => 'c',
                ('b', 'S') => 'b',
                ('b', 'X') => 'd',
                ('c', 'T') => 'c',
                ('c', 'V') => 'e',
                ('d', 'X') => 'c',
                ('d', 'S') => 'f',
                ('e', 'P') => 'd',
                ('e', 'V') => 'f',
                ('f', 'E') => 'z',
                _ => return None,
            };
            sets.push(
                match state {
                    'b' => "SX",
                    'c' => "TV",
                    'd' => "XS",
                    'e' => "PV",
                    'f' => "E",
                    _ => "",
                }
                .to_string(),
            );
        }
        if state != 'z' {
            return None;
        }
        // After the inner E: only the remembered branch symbol; then E.
        sets.pop();
        sets.push(c[1].to_string());
        sets.push("E".to_string());
        Some(sets)
    }

    fn set_string(set: SymbolSet) -> String {
        (0..7)
            .filter(|k| set & (1 << k) != 0)
            .map(|k| REBER_SYMBOLS[k])
            .collect()
    }

    fn same_set(a: &str, b: &str) -> bool {
        let mut x: Vec<char> = a.chars().collect();
        let mut y: Vec<char> = b.chars().collect();
        x.sort_unstable();
        y.sort_unstable();
        x == y
    }

    #[test]
    fn generated_strings_are_accepted_and_sets_agree() {
        let mut rng = Rng::new(1997);
        let mut lengths = std::collections::BTreeSet::new();
        let mut branches = [0usize; 2];
        for _ in 0..2000 {
            let s = embedded_reber_string(&mut rng);
            let text = reber_to_string(&s);
            let want = recognise(&text).unwrap_or_else(|| panic!("rejected {text}"));
            let got = embedded_reber_next_sets(&s).unwrap();
            assert_eq!(got.len(), s.len() - 1);
            assert_eq!(want.len(), got.len(), "{text}");
            for (w, g) in want.iter().zip(&got) {
                assert!(
                    same_set(w, &set_string(*g)),
                    "{text}: {w} vs {}",
                    set_string(*g)
                );
            }
            // Second and penultimate symbols match.
            assert_eq!(s[1], s[s.len() - 2]);
            assert!(s[1] == T || s[1] == P);
            branches[(s[1] == P) as usize] += 1;
            lengths.insert(s.len());
        }
        // Both branches and a spread of lengths occur.
        assert!(branches[0] > 800 && branches[1] > 800, "{branches:?}");
        assert!(lengths.len() > 5 && *lengths.iter().next().unwrap() == 9);
    }

    #[test]
    fn known_strings_and_rejections() {
        for ok in ["BTBPVVETE", "BPBTSSXXTVVEPE", "BTBTXSETE", "BPBPTVPXVVEPE"] {
            let s = reber_from_str(ok).unwrap();
            assert!(embedded_reber_next_sets(&s).is_ok(), "{ok}");
            assert!(recognise(ok).is_some(), "{ok}");
        }
        for bad in [
            "BTBPVVEPE",
            "BTBPVE",
            "BTBPVVET",
            "BTPVVETE",
            "BTBPVVETEE",
            "BXBPVVEXE",
        ] {
            let s = reber_from_str(bad).unwrap();
            assert!(embedded_reber_next_sets(&s).is_err(), "{bad}");
            assert!(recognise(bad).is_none(), "{bad}");
        }
        assert!(reber_from_str("BTQ").is_err());
        // Plain Reber strings walk the table from node 0.
        let mut rng = Rng::new(3);
        for _ in 0..200 {
            let s = reber_string(&mut rng);
            let mut embedded = vec![B, T];
            embedded.extend(&s);
            embedded.extend([T, E]);
            assert!(recognise(&reber_to_string(&embedded)).is_some());
        }
    }

    #[test]
    fn batch_padding_mask_and_correctness() {
        let mut rng = Rng::new(4);
        let batch = embedded_reber_batch(16, Some(20), &mut rng).unwrap();
        let steps = batch.inputs.shape()[1];
        assert_eq!(batch.targets.shape(), &[16, steps, 7]);
        assert_eq!(batch.mask.shape(), &[16, steps]);
        assert_eq!(*batch.lengths.iter().max().unwrap(), steps);
        for (b, s) in batch.strings.iter().enumerate() {
            assert!(s.len() <= 20);
            assert_eq!(batch.lengths[b], s.len() - 1);
            for t in 0..steps {
                let real = t < batch.lengths[b];
                assert_eq!(batch.mask.data()[b * steps + t], real as u8 as f32);
                let row = &batch.inputs.data()[(b * steps + t) * 7..][..7];
                let ones = row.iter().filter(|&&v| v == 1.0).count();
                assert_eq!(ones, real as usize);
                if real {
                    let sym = row.iter().position(|&v| v == 1.0).unwrap();
                    assert_eq!(REBER_SYMBOLS[sym], s.chars().nth(t).unwrap());
                }
            }
        }
        // Perfect outputs are correct; one wrong step on a real position is not;
        // garbage on padding is ignored.
        let mut out = batch.targets.clone();
        assert!(reber_correct(&out, &batch, false)
            .unwrap()
            .iter()
            .all(|&c| c));
        let short = batch.lengths.iter().position(|&l| l < steps);
        if let Some(b) = short {
            let t = batch.lengths[b];
            out.data_mut()[(b * steps + t) * 7] = 1.0;
            assert!(reber_correct(&out, &batch, false).unwrap()[b]);
        }
        out.data_mut()[3] = 1.0 - out.data()[3]; // string 0, step 0, symbol P
        let c = reber_correct(&out, &batch, false).unwrap();
        assert!(!c[0] && c[1..].iter().all(|&v| v));
        // Logits: threshold at 0.
        let logits = Tensor::from_vec(
            batch.targets.shape(),
            batch
                .targets
                .data()
                .iter()
                .map(|&v| if v > 0.5 { 3.0 } else { -3.0 })
                .collect(),
        )
        .unwrap();
        assert!(reber_correct(&logits, &batch, true)
            .unwrap()
            .iter()
            .all(|&c| c));
        assert!(embedded_reber_batch(0, None, &mut rng).is_err());
        assert!(embedded_reber_batch(4, Some(8), &mut rng).is_err());
    }

    #[test]
    fn masked_reber_loss() {
        let mut rng = Rng::new(8);
        // One string: no padding, so it equals the unmasked BCE from logits.
        let one = embedded_reber_batch(1, None, &mut rng).unwrap();
        let z = Tensor::from_vec(
            one.targets.shape(),
            (0..one.targets.len()).map(|_| rng.normal()).collect(),
        )
        .unwrap();
        let (a, ga) = reber_loss(&z, &one).unwrap();
        let (b, gb) = crate::train::loss::bce_logits(&z, &one.targets).unwrap();
        assert!((a - b).abs() < 1e-5 && ga.max_abs_diff(&gb) < 1e-6);
        // Padding: changing padded logits changes neither loss nor gradient there.
        let batch = embedded_reber_batch(8, None, &mut rng).unwrap();
        let steps = batch.mask.shape()[1];
        let z = Tensor::zeros(batch.targets.shape());
        let (l0, g0) = reber_loss(&z, &batch).unwrap();
        assert!((l0 - std::f32::consts::LN_2).abs() < 1e-6);
        let mut z2 = z.clone();
        for (i, &m) in batch.mask.data().iter().enumerate() {
            if m == 0.0 {
                z2.data_mut()[i * 7..i * 7 + 7].fill(5.0);
            }
        }
        let (l2, g2) = reber_loss(&z2, &batch).unwrap();
        assert_eq!((l0, &g0), (l2, &g2));
        let b0 = batch.lengths.iter().position(|&l| l < steps);
        if let Some(b) = b0 {
            let t = batch.lengths[b];
            assert!(g0.data()[(b * steps + t) * 7..][..7]
                .iter()
                .all(|&g| g == 0.0));
        }
        assert!(reber_loss(&Tensor::zeros(&[1, 2, 7]), &batch).is_err());
    }

    #[test]
    fn adding_problem_targets_markers_and_baseline() {
        for placement in [
            MarkerPlacement::Halves,
            MarkerPlacement::HochreiterSchmidhuber,
        ] {
            let mut rng = Rng::new(100);
            let (n, len) = (20_000, 50);
            let batch = adding_batch(n, len, placement, &mut rng).unwrap();
            assert_eq!(batch.inputs.shape(), &[n, len, 2]);
            assert_eq!(batch.targets.shape(), &[n, 1]);
            let mut sq = 0.0f64;
            for b in 0..n {
                let row = &batch.inputs.data()[b * len * 2..(b + 1) * len * 2];
                let marked: Vec<usize> = (0..len).filter(|&t| row[t * 2 + 1] == 1.0).collect();
                assert_eq!(marked.len(), 2);
                assert!((0..len).all(|t| row[t * 2 + 1] == 0.0 || row[t * 2 + 1] == 1.0));
                assert!((0..len).all(|t| (0.0..1.0).contains(&row[t * 2])));
                assert_eq!(marked, batch.markers[b].to_vec());
                let sum = row[marked[0] * 2] + row[marked[1] * 2];
                assert_eq!(batch.targets.data()[b], sum);
                match placement {
                    MarkerPlacement::Halves => {
                        assert!(marked[0] < len / 2 && marked[1] >= len / 2)
                    }
                    MarkerPlacement::HochreiterSchmidhuber => {
                        assert!(marked[0] < 10 && marked[1] < len / 2)
                    }
                }
                sq += (sum as f64 - 1.0).powi(2);
            }
            let mse = sq / n as f64;
            assert!(
                (mse - ADDING_BASELINE_MSE).abs() < 0.01,
                "{placement:?}: {mse}"
            );
        }
        let mut rng = Rng::new(0);
        assert!(adding_batch(0, 10, MarkerPlacement::Halves, &mut rng).is_err());
        assert!(adding_batch(1, 1, MarkerPlacement::Halves, &mut rng).is_err());
        assert!(adding_batch(1, 3, MarkerPlacement::HochreiterSchmidhuber, &mut rng).is_err());
        let b = adding_batch(100, 4, MarkerPlacement::HochreiterSchmidhuber, &mut rng).unwrap();
        assert!(b.markers.iter().all(|m| m == &[0, 1]));
    }
}
