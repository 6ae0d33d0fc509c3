//! Keras's cached `imdb.npz` and `reuters.npz`, loaded as
//! `keras.datasets.imdb.load_data` and `keras.datasets.reuters.load_data` do.
//!
//! `imdb.npz` holds `x_train`, `y_train`, `x_test`, `y_test`; `reuters.npz`
//! holds `x` and `y` and is split by `test_split`. The `x` members are NumPy
//! object arrays of word-index lists (rank 1 = most frequent word), which
//! [`NpzFile`] returns as [`NpzArray::Sequences`]. Before anything is
//! inflated, every member's header must fit the file's memory limit (see
//! [`NpzFile`]) and the members read must have the shapes a data set has (a
//! list of sequences, and one label per sequence), so a crafted member that
//! declares gigabytes is refused from its header.
//!
//! The steps, in Keras's order:
//!
//! 1. Shuffle with `seed`: imdb shuffles the training set, then the test set,
//!    from one generator; reuters shuffles `x` once. The generator is the
//!    project's [`Rng`] (xoshiro256**, Fisher-Yates), **not** NumPy's
//!    `RandomState(seed).shuffle`, so for a given seed the order differs from
//!    Keras's; the set of (sequence, label) pairs is the same.
//! 2. Every word index `w` becomes `w + index_from`, and `start_char` (when
//!    set) is prepended.
//! 3. With `maxlen`, sequences whose length (counting `start_char`) is not
//!    strictly below `maxlen` are dropped with their labels. A `maxlen` of 0
//!    means no filtering, as in Keras (`if maxlen:`).
//! 4. Without `num_words` (or with 0), `num_words` is the largest index left
//!    after step 2-3. Any index `w` with `w < skip_top` or `w >= num_words` is
//!    replaced by `oov_char`, or removed when `oov_char` is `None`. Note that,
//!    as in Keras, this also applies to `start_char` (if `skip_top >
//!    start_char`) and, when `num_words` was not given, to the largest index.
//! 5. reuters: the first `floor(len * (1 - test_split))` sequences are the
//!    training set, the rest the test set.

use std::path::Path;

use crate::io::npy::Dtype;
use crate::io::npz::{NpzArray, NpzFile, NpzLimits, NpzMember};
use crate::{Error, Result, Rng};

/// Options of Keras's `load_data`; [`Default`] gives Keras's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// Keep indices below this (after shifting by `index_from`); `None` or 0:
    /// the largest index present.
    pub num_words: Option<usize>,
    /// Indices below this become `oov_char` (default 0).
    pub skip_top: usize,
    /// Drop sequences whose length is not below this (default `None`).
    pub maxlen: Option<usize>,
    /// Shuffle seed (default 113, Keras's).
    pub seed: u64,
    /// Prepended to every sequence (default `Some(1)`).
    pub start_char: Option<i64>,
    /// Replaces out-of-range indices (default `Some(2)`); `None` removes them.
    pub oov_char: Option<i64>,
    /// Added to every word index (default 3).
    pub index_from: i64,
    /// Fraction of reuters sequences held out for test (default 0.2).
    pub test_split: f64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            num_words: None,
            skip_top: 0,
            maxlen: None,
            seed: 113,
            start_char: Some(1),
            oov_char: Some(2),
            index_from: 3,
            test_split: 0.2,
        }
    }
}

/// One split of a data set: sequences of word indices and their labels.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Split {
    /// One word-index list per sample.
    pub x: Vec<Vec<i64>>,
    /// One integer label per sample.
    pub y: Vec<i64>,
}

/// Loads Keras's `imdb.npz` as `keras.datasets.imdb.load_data(path, ...)`;
/// returns `(train, test)`.
pub fn load_imdb(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<(Split, Split)> {
    let path = path.as_ref();
    let mut npz = NpzFile::open(path, NpzLimits::default())?;
    expect_pair(&npz, "x_train", "y_train")?;
    expect_pair(&npz, "x_test", "y_test")?;
    let x_train = take_sequences(&mut npz, "x_train")?;
    let y_train = take_labels(&mut npz, "y_train")?;
    let x_test = take_sequences(&mut npz, "x_test")?;
    let y_test = take_labels(&mut npz, "y_test")?;
    check_len(&x_train, &y_train, "x_train", "y_train", path)?;
    check_len(&x_test, &y_test, "x_test", "y_test", path)?;

    let mut rng = Rng::new(opts.seed);
    let (x_train, y_train) = shuffled(x_train, y_train, &mut rng);
    let (x_test, y_test) = shuffled(x_test, y_test, &mut rng);

    let mut train = Split {
        x: shift(x_train, opts),
        y: y_train,
    };
    let mut test = Split {
        x: shift(x_test, opts),
        y: y_test,
    };
    if let Some(maxlen) = opts.maxlen.filter(|&m| m > 0) {
        remove_long(&mut train, maxlen);
        remove_long(&mut test, maxlen);
        if train.x.is_empty() || test.x.is_empty() {
            return Err(Error::invalid(
                "maxlen",
                format!(
                    "after keeping only sequences shorter than maxlen={maxlen}, \
                     no sequence was left in {}; increase maxlen",
                    if train.x.is_empty() { "train" } else { "test" }
                ),
            ));
        }
    }
    let num_words = resolve_num_words(opts, train.x.iter().chain(test.x.iter()));
    replace_oov(&mut train.x, num_words, opts);
    replace_oov(&mut test.x, num_words, opts);
    Ok((train, test))
}

/// Loads Keras's `reuters.npz` as `keras.datasets.reuters.load_data(path,
/// ...)`; returns `(train, test)` split by `opts.test_split`.
pub fn load_reuters(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<(Split, Split)> {
    let path = path.as_ref();
    if !(0.0..=1.0).contains(&opts.test_split) {
        return Err(Error::invalid(
            "test_split",
            format!("{} is not in [0, 1]", opts.test_split),
        ));
    }
    let mut npz = NpzFile::open(path, NpzLimits::default())?;
    expect_pair(&npz, "x", "y")?;
    let x = take_sequences(&mut npz, "x")?;
    let y = take_labels(&mut npz, "y")?;
    check_len(&x, &y, "x", "y", path)?;

    let mut rng = Rng::new(opts.seed);
    let (x, y) = shuffled(x, y, &mut rng);
    let mut all = Split {
        x: shift(x, opts),
        y,
    };
    if let Some(maxlen) = opts.maxlen.filter(|&m| m > 0) {
        remove_long(&mut all, maxlen);
    }
    let num_words = resolve_num_words(opts, all.x.iter());
    replace_oov(&mut all.x, num_words, opts);

    let idx = ((all.x.len() as f64) * (1.0 - opts.test_split)) as usize;
    let idx = idx.min(all.x.len());
    let test = Split {
        x: all.x.split_off(idx),
        y: all.y.split_off(idx),
    };
    Ok((all, test))
}

/// The member called `name`, or an error listing the members there are.
fn member<'a>(npz: &'a NpzFile, name: &str) -> Result<&'a NpzMember> {
    npz.member(name).ok_or_else(|| {
        Error::file(
            npz.path(),
            format!(
                "no member '{name}' (members: {})",
                npz.members()
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// Checks, from the headers alone, that `x` is a list of sequences (an
/// object array of N lists, or a numeric [N, len] array) and `y` N labels.
fn expect_pair(npz: &NpzFile, x: &str, y: &str) -> Result<()> {
    let xm = member(npz, x)?;
    let ym = member(npz, y)?;
    let (xh, yh) = (&xm.header, &ym.header);
    let rows = match (xh.dtype, xh.shape.as_slice()) {
        (Dtype::Object, [n] | [n, _]) => *n,
        (d, [n, _]) if d != Dtype::Object => *n,
        _ => {
            return Err(Error::file(
                npz.path(),
                format!(
                    "member '{x}' has dtype '{}' and shape {:?}; expected a list of sequences",
                    xh.descr, xh.shape
                ),
            ))
        }
    };
    if yh.dtype == Dtype::Object || yh.shape.len() != 1 {
        return Err(Error::file(
            npz.path(),
            format!(
                "member '{y}' has dtype '{}' and shape {:?}; expected one integer label per sample",
                yh.descr, yh.shape
            ),
        ));
    }
    if yh.shape[0] != rows {
        return Err(Error::file(
            npz.path(),
            format!(
                "'{x}' has {rows} sequences (shape {:?}) but '{y}' has {} labels",
                xh.shape, yh.shape[0]
            ),
        ));
    }
    Ok(())
}

fn take_sequences(npz: &mut NpzFile, name: &str) -> Result<Vec<Vec<i64>>> {
    let path = npz.path().to_path_buf();
    let path = path.as_path();
    match npz.read(name)? {
        NpzArray::Sequences(s) => Ok(s),
        NpzArray::Tensor(t) => {
            // A numeric 2-D array (all sequences the same length) is also valid.
            let shape = t.shape().to_vec();
            match shape.as_slice() {
                [n, 0] if *n > 0 => Err(Error::file(
                    path,
                    format!("member '{name}' has shape {shape:?}: sequences of length 0"),
                )),
                [n, len] => {
                    let data = t.data();
                    let mut out = Vec::with_capacity(*n);
                    for r in 0..*n {
                        let row = &data[r * len..(r + 1) * len];
                        out.push(to_ints(row, name, path)?);
                    }
                    Ok(out)
                }
                _ => Err(Error::file(
                    path,
                    format!("member '{name}' has shape {shape:?}; expected a list of sequences"),
                )),
            }
        }
    }
}

fn take_labels(npz: &mut NpzFile, name: &str) -> Result<Vec<i64>> {
    let path = npz.path().to_path_buf();
    let path = path.as_path();
    match npz.read(name)? {
        NpzArray::Tensor(t) if t.rank() == 1 => to_ints(t.data(), name, path),
        NpzArray::Tensor(t) => Err(Error::file(
            path,
            format!(
                "member '{name}' has shape {:?}; expected one label per sample",
                t.shape()
            ),
        )),
        NpzArray::Sequences(_) => Err(Error::file(
            path,
            format!("member '{name}' is an object array; expected integer labels"),
        )),
    }
}

fn to_ints(values: &[f32], name: &str, path: &Path) -> Result<Vec<i64>> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if v.is_finite() && v.fract() == 0.0 {
                Ok(v as i64)
            } else {
                Err(Error::file(
                    path,
                    format!("member '{name}' element {i} is {v}, not an integer"),
                ))
            }
        })
        .collect()
}

fn check_len(x: &[Vec<i64>], y: &[i64], xn: &str, yn: &str, path: &Path) -> Result<()> {
    if x.len() != y.len() {
        return Err(Error::file(
            path,
            format!(
                "'{xn}' has {} sequences but '{yn}' has {} labels",
                x.len(),
                y.len()
            ),
        ));
    }
    Ok(())
}

fn shuffled(x: Vec<Vec<i64>>, y: Vec<i64>, rng: &mut Rng) -> (Vec<Vec<i64>>, Vec<i64>) {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    rng.shuffle(&mut idx);
    let mut slots: Vec<Option<Vec<i64>>> = x.into_iter().map(Some).collect();
    let xs = idx
        .iter()
        .map(|&i| slots[i].take().unwrap_or_default())
        .collect();
    let ys = idx.iter().map(|&i| y[i]).collect();
    (xs, ys)
}

fn shift(x: Vec<Vec<i64>>, opts: &LoadOptions) -> Vec<Vec<i64>> {
    x.into_iter()
        .map(|s| {
            let mut out = Vec::with_capacity(s.len() + 1);
            if let Some(c) = opts.start_char {
                out.push(c);
            }
            out.extend(s.into_iter().map(|w| w.saturating_add(opts.index_from)));
            out
        })
        .collect()
}

fn remove_long(split: &mut Split, maxlen: usize) {
    let keep: Vec<bool> = split.x.iter().map(|s| s.len() < maxlen).collect();
    let mut k = keep.iter();
    split.x.retain(|_| *k.next().unwrap_or(&false));
    let mut k = keep.iter();
    split.y.retain(|_| *k.next().unwrap_or(&false));
}

fn resolve_num_words<'a>(opts: &LoadOptions, xs: impl Iterator<Item = &'a Vec<i64>>) -> i64 {
    match opts.num_words {
        Some(n) if n > 0 => i64::try_from(n).unwrap_or(i64::MAX),
        _ => xs.flat_map(|s| s.iter().copied()).max().unwrap_or(0),
    }
}

fn replace_oov(xs: &mut [Vec<i64>], num_words: i64, opts: &LoadOptions) {
    let skip_top = i64::try_from(opts.skip_top).unwrap_or(i64::MAX);
    let keep = |w: i64| skip_top <= w && w < num_words;
    for s in xs.iter_mut() {
        match opts.oov_char {
            Some(oov) => s.iter_mut().filter(|w| !keep(**w)).for_each(|w| *w = oov),
            None => s.retain(|&w| keep(w)),
        }
    }
}
