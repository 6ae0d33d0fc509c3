//! Keras's `pad_sequences` and word-level `Tokenizer`.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::{Error, Result, Tensor};

/// Which end of a sequence padding or truncation applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// The start of the sequence (Keras's default `'pre'`).
    #[default]
    Pre,
    /// The end of the sequence (`'post'`).
    Post,
}

/// Pads or truncates integer sequences into one `[N, maxlen]` tensor, as
/// `keras.utils.pad_sequences(seqs, maxlen, padding=, truncating=, value=)`.
///
/// - `maxlen: None` is the longest sequence's length (0 for no sequences).
/// - `truncating: Pre` keeps the last `maxlen` elements, `Post` the first.
/// - `padding: Pre` fills with `value` before the sequence, `Post` after it.
///
/// Keras's defaults are `None, Pre, Pre, 0.0`. Indices are stored as f32,
/// which is exact below 2^24.
pub fn pad_sequences<S: AsRef<[i64]>>(
    seqs: &[S],
    maxlen: Option<usize>,
    padding: Padding,
    truncating: Padding,
    value: f32,
) -> Tensor {
    let maxlen = maxlen.unwrap_or_else(|| seqs.iter().map(|s| s.as_ref().len()).max().unwrap_or(0));
    let mut data = vec![value; seqs.len() * maxlen];
    for (row, s) in data.chunks_exact_mut(maxlen.max(1)).zip(seqs) {
        let s = s.as_ref();
        let kept = match truncating {
            Padding::Pre => &s[s.len().saturating_sub(maxlen)..],
            Padding::Post => &s[..s.len().min(maxlen)],
        };
        let start = match padding {
            Padding::Pre => maxlen - kept.len(),
            Padding::Post => 0,
        };
        for (dst, &v) in row[start..].iter_mut().zip(kept) {
            *dst = v as f32;
        }
    }
    Tensor::from_vec(&[seqs.len(), maxlen], data).unwrap_or_default()
}

/// Keras's default `Tokenizer` filters: these characters are replaced by the
/// split string before splitting.
pub const DEFAULT_FILTERS: &str = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n";

/// A word tokenizer with the semantics of `keras.preprocessing.text.Tokenizer`
/// (word level, no custom analyzer).
///
/// ```
/// use gated::datasets::Tokenizer;
/// let mut tok = Tokenizer::new();
/// tok.fit_on_texts(["the cat sat", "The dog!"]).unwrap();
/// assert_eq!(tok.word_index()["the"], 1); // most frequent first
/// assert_eq!(tok.texts_to_sequences(["the cat ran"]).unwrap(), vec![vec![1, 2]]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tokenizer {
    /// Keep only indices below this in [`Tokenizer::texts_to_sequences`]
    /// (`None` or 0: all).
    pub num_words: Option<usize>,
    /// Characters replaced by `split` before splitting.
    pub filters: String,
    /// Lower-case the text first.
    pub lower: bool,
    /// The separator between words.
    pub split: String,
    /// The out-of-vocabulary token; when set it gets index 1.
    pub oov_token: Option<String>,
    /// Number of texts seen by `fit_on_texts`.
    pub document_count: usize,
    /// Word counts, in order of first appearance.
    word_counts: Vec<(String, usize)>,
    word_index: BTreeMap<String, usize>,
}

impl Default for Tokenizer {
    fn default() -> Self {
        Tokenizer::new()
    }
}

impl Tokenizer {
    /// Keras's defaults: all words, [`DEFAULT_FILTERS`], lower-case, split on
    /// `' '`, no OOV token.
    pub fn new() -> Self {
        Tokenizer {
            num_words: None,
            filters: DEFAULT_FILTERS.to_string(),
            lower: true,
            split: " ".to_string(),
            oov_token: None,
            document_count: 0,
            word_counts: Vec::new(),
            word_index: BTreeMap::new(),
        }
    }

    /// Sets `num_words`.
    pub fn with_num_words(mut self, num_words: usize) -> Self {
        self.num_words = Some(num_words);
        self
    }

    /// Sets the OOV token.
    pub fn with_oov_token(mut self, token: impl Into<String>) -> Self {
        self.oov_token = Some(token.into());
        self
    }

    /// Keras's `text_to_word_sequence` with this tokenizer's filters, `lower`
    /// and `split`: empty words are dropped. Errors when `split` is empty.
    pub fn words(&self, text: &str) -> Result<Vec<String>> {
        if self.split.is_empty() {
            return Err(Error::invalid("split", "the separator must not be empty"));
        }
        let text = if self.lower {
            text.to_lowercase()
        } else {
            text.to_string()
        };
        let mut translated = String::with_capacity(text.len());
        for c in text.chars() {
            if self.filters.contains(c) {
                translated.push_str(&self.split);
            } else {
                translated.push(c);
            }
        }
        Ok(translated
            .split(self.split.as_str())
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Counts the words of `texts` (adding to earlier calls) and rebuilds the
    /// word index: the OOV token (when set) is 1, then words by descending
    /// count, ties in order of first appearance. Index 0 is never assigned.
    pub fn fit_on_texts<I, T>(&mut self, texts: I) -> Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let mut pos: HashMap<String, usize> = self
            .word_counts
            .iter()
            .enumerate()
            .map(|(i, (w, _))| (w.clone(), i))
            .collect();
        for text in texts {
            self.document_count += 1;
            for w in self.words(text.as_ref())? {
                match pos.get(&w) {
                    Some(&i) => self.word_counts[i].1 += 1,
                    None => {
                        pos.insert(w.clone(), self.word_counts.len());
                        self.word_counts.push((w, 1));
                    }
                }
            }
        }
        let mut sorted: Vec<&(String, usize)> = self.word_counts.iter().collect();
        sorted.sort_by_key(|wc| std::cmp::Reverse(wc.1)); // stable: ties keep first appearance
        self.word_index.clear();
        let vocab = self.oov_token.iter().chain(sorted.iter().map(|(w, _)| w));
        for (i, w) in vocab.enumerate() {
            // As Keras's dict(zip(...)): a later duplicate overwrites.
            self.word_index.insert(w.clone(), i + 1);
        }
        Ok(())
    }

    /// The word index built by [`Tokenizer::fit_on_texts`] (sorted by word,
    /// so that a serialised tokenizer is byte-for-byte reproducible).
    pub fn word_index(&self) -> &BTreeMap<String, usize> {
        &self.word_index
    }

    /// Word counts in order of first appearance.
    pub fn word_counts(&self) -> &[(String, usize)] {
        &self.word_counts
    }

    /// The word with index `i`, if any.
    pub fn index_word(&self, i: usize) -> Option<&str> {
        self.word_index
            .iter()
            .find(|(_, &v)| v == i)
            .map(|(w, _)| w.as_str())
    }

    /// Maps each text to word indices. Unknown words, and words with an index
    /// `>= num_words`, become the OOV index when an OOV token is set and are
    /// dropped otherwise.
    pub fn texts_to_sequences<I, T>(&self, texts: I) -> Result<Vec<Vec<i64>>>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let num_words = self.num_words.filter(|&n| n > 0);
        let oov = self
            .oov_token
            .as_ref()
            .and_then(|t| self.word_index.get(t))
            .map(|&i| i as i64);
        let mut out = Vec::new();
        for text in texts {
            let mut seq = Vec::new();
            for w in self.words(text.as_ref())? {
                match self.word_index.get(&w) {
                    Some(&i) if num_words.is_some_and(|n| i >= n) => seq.extend(oov),
                    Some(&i) => seq.push(i as i64),
                    None => seq.extend(oov),
                }
            }
            out.push(seq);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_zero_maxlen_and_empty() {
        let t = pad_sequences(
            &[vec![1, 2], vec![]],
            Some(0),
            Padding::Pre,
            Padding::Pre,
            0.0,
        );
        assert_eq!(t.shape(), &[2, 0]);
        let none: [Vec<i64>; 0] = [];
        let t = pad_sequences(&none, None, Padding::Pre, Padding::Pre, 0.0);
        assert_eq!(t.shape(), &[0, 0]);
    }
}
