//! Char-level corpora, as in Karpathy's char-rnn and Keras's
//! `lstm_text_generation` example.
//!
//! The pipeline is:
//!
//! 1. [`read_text`]: the file as strict UTF-8 (binary files and invalid bytes are
//!    errors that name the byte offset; an empty file is an error).
//! 2. [`CharVocab::from_text`]: the sorted set of distinct characters; a
//!    character's id is its rank in that order. [`CharVocab::encode`] turns the
//!    text into one stream of ids.
//! 3. [`split_stream`]: char-rnn's split of the *contiguous* stream into train,
//!    validation and test parts (in that order, no shuffling, so that each part
//!    is a continuous text).
//! 4. [`ContiguousBatches`]: the stream cut into `batch_size` contiguous lanes,
//!    read `seq_len` characters at a time. Chunk `k + 1` of lane `b` continues
//!    exactly where chunk `k` of lane `b` stopped, so a stateful recurrent layer
//!    can carry its state from one chunk to the next (truncated BPTT): call
//!    `reset_states` at the start of every pass over the chunks, never between
//!    chunks.
//!
//! ```
//! use gated::data::{CharVocab, ContiguousBatches};
//!
//! # fn main() -> gated::Result<()> {
//! let text = "hello world, hello lanes";
//! let vocab = CharVocab::from_text(text)?;
//! let ids = vocab.encode(text)?;
//! assert_eq!(vocab.decode(&ids)?, text);
//!
//! // 2 lanes, 4 characters per chunk.
//! let batches = ContiguousBatches::new(&ids, 2, 4)?;
//! let first = batches.chunk(0).unwrap();
//! assert_eq!(first.inputs.shape(), &[2, 4]);
//! // The target of every input position is the next character of the stream.
//! assert_eq!(first.targets.data()[0], first.inputs.data()[1]);
//! # Ok(())
//! # }
//! ```

use crate::tensor::Tensor;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Reads a text file as strict UTF-8. A leading byte-order mark is dropped.
///
/// Errors: the file cannot be read ([`Error::Io`]); it is empty, holds a NUL
/// byte (a binary file) or is not valid UTF-8 ([`Error::File`], naming the byte
/// offset of the first offending byte).
pub fn read_text(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_text(path, bytes)
}

/// The checks of [`read_text`] on bytes already in memory; `path` is only
/// used in error messages.
pub fn decode_text(path: impl AsRef<Path>, bytes: Vec<u8>) -> Result<String> {
    let path = path.as_ref();
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let bom = bytes.len() - body.len();
    if body.is_empty() {
        return Err(Error::file(
            path,
            "the text file is empty; a char-level corpus needs at least a few characters",
        ));
    }
    if let Some(at) = body.iter().position(|&b| b == 0) {
        return Err(Error::file(
            path,
            format!(
                "looks like a binary file: NUL byte at byte offset {}; expected UTF-8 text",
                at + bom
            ),
        ));
    }
    match std::str::from_utf8(body) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => {
            let at = e.valid_up_to();
            Err(Error::file(
                path,
                format!(
                    "not valid UTF-8: byte 0x{:02X} at byte offset {} (after {} valid characters); \
                     convert the file to UTF-8 first",
                    body[at],
                    at + bom,
                    body[..at].iter().filter(|&&b| (b & 0xC0) != 0x80).count()
                ),
            ))
        }
    }
}

/// The vocabulary of a char-level model: the distinct characters of a text,
/// sorted by Unicode code point; a character's id is its index.
///
/// Serialised as JSON `{"chars": ["\n", " ", "a", ...]}`; deserialising checks
/// that every entry is exactly one character and that they are sorted and
/// distinct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "VocabFile", into = "VocabFile")]
pub struct CharVocab {
    chars: Vec<char>,
}

#[derive(Serialize, Deserialize)]
struct VocabFile {
    chars: Vec<String>,
}

impl From<CharVocab> for VocabFile {
    fn from(v: CharVocab) -> Self {
        VocabFile {
            chars: v.chars.iter().map(|c| c.to_string()).collect(),
        }
    }
}

impl TryFrom<VocabFile> for CharVocab {
    type Error = String;

    fn try_from(f: VocabFile) -> std::result::Result<Self, String> {
        let mut chars = Vec::with_capacity(f.chars.len());
        for (i, s) in f.chars.iter().enumerate() {
            let mut it = s.chars();
            match (it.next(), it.next()) {
                (Some(c), None) => chars.push(c),
                _ => return Err(format!("entry {i} ({s:?}) is not exactly one character")),
            }
        }
        CharVocab::from_sorted(chars).map_err(|e| e.to_string())
    }
}

impl CharVocab {
    /// The sorted distinct characters of `text`. Errors when `text` is empty.
    pub fn from_text(text: &str) -> Result<Self> {
        if text.is_empty() {
            return Err(Error::invalid(
                "text",
                "cannot build a vocabulary from an empty text",
            ));
        }
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        Ok(CharVocab { chars })
    }

    /// A vocabulary from characters that must already be sorted and distinct
    /// (and not empty).
    pub fn from_sorted(chars: Vec<char>) -> Result<Self> {
        if chars.is_empty() {
            return Err(Error::invalid("vocabulary", "it has no characters"));
        }
        if let Some(w) = chars.windows(2).position(|w| w[0] >= w[1]) {
            return Err(Error::invalid(
                "vocabulary",
                format!(
                    "characters must be sorted and distinct, but entry {} ({:?}) is followed by {:?}",
                    w,
                    chars[w],
                    chars[w + 1]
                ),
            ));
        }
        Ok(CharVocab { chars })
    }

    /// Number of characters (the model's input and output size).
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Always false for a vocabulary built by this type's constructors.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The characters in id order.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The id of `c`, if it is in the vocabulary.
    pub fn id(&self, c: char) -> Option<usize> {
        self.chars.binary_search(&c).ok()
    }

    /// The character with id `id`, if any.
    pub fn char_of(&self, id: usize) -> Option<char> {
        self.chars.get(id).copied()
    }

    /// The ids of the characters of `text`. A character outside the vocabulary is
    /// an error naming it and its position (0-based, counted in characters).
    pub fn encode(&self, text: &str) -> Result<Vec<usize>> {
        text.chars()
            .enumerate()
            .map(|(pos, c)| {
                self.id(c).ok_or_else(|| {
                    Error::invalid(
                        "text",
                        format!(
                            "character {c:?} (U+{:04X}) at position {pos} is not in the vocabulary \
                             of {} characters",
                            c as u32,
                            self.len()
                        ),
                    )
                })
            })
            .collect()
    }

    /// The text of `ids`. An id outside `0..len()` is an error naming it and its position.
    pub fn decode(&self, ids: &[usize]) -> Result<String> {
        ids.iter()
            .enumerate()
            .map(|(pos, &id)| {
                self.char_of(id).ok_or_else(|| {
                    Error::invalid(
                        "token id",
                        format!(
                            "id {id} at position {pos} is outside the vocabulary (0..{})",
                            self.len()
                        ),
                    )
                })
            })
            .collect()
    }

    /// The JSON form, `{"chars": [...]}`.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self)
            .map_err(|e| Error::invalid("vocabulary", format!("cannot serialise: {e}")))
    }

    /// Parses the JSON form; `path` is only used in error messages.
    pub fn from_json(path: impl AsRef<Path>, json: &str) -> Result<Self> {
        serde_json::from_str(json)
            .map_err(|e| Error::file(path.as_ref(), format!("not a character vocabulary: {e}")))
    }

    /// Writes the JSON form atomically (temporary file, then rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::io::atomic::write_atomic(path, self.to_json()?.as_bytes())
    }

    /// Reads a vocabulary written by [`CharVocab::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(path, &text)
    }
}

/// The three contiguous parts of a stream, in stream order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamSplit {
    /// The first `1 - val - test` of the stream.
    pub train: Vec<usize>,
    /// The following `val` fraction.
    pub val: Vec<usize>,
    /// The last `test` fraction.
    pub test: Vec<usize>,
}

/// Splits a stream as char-rnn does: train first, then validation, then test,
/// each a contiguous piece (char-rnn's defaults are `val_frac = 0.05`,
/// `test_frac = 0.0`). The validation and test parts get `floor(n * frac)`
/// elements; train gets the rest.
///
/// Errors when a fraction is negative or not finite, when the two together are
/// 1 or more, or when a part that was asked for (fraction > 0) would be empty.
pub fn split_stream(ids: &[usize], val_frac: f64, test_frac: f64) -> Result<StreamSplit> {
    for (name, f) in [("val_frac", val_frac), ("test_frac", test_frac)] {
        if !f.is_finite() || f < 0.0 {
            return Err(Error::invalid(
                name,
                format!("{f} is not a fraction in [0, 1)"),
            ));
        }
    }
    if val_frac + test_frac >= 1.0 {
        return Err(Error::invalid(
            "val_frac + test_frac",
            format!("{val_frac} + {test_frac} leaves nothing to train on; the sum must be below 1"),
        ));
    }
    let n = ids.len();
    let n_val = (n as f64 * val_frac).floor() as usize;
    let n_test = (n as f64 * test_frac).floor() as usize;
    for (name, f, k) in [
        ("val_frac", val_frac, n_val),
        ("test_frac", test_frac, n_test),
    ] {
        if f > 0.0 && k == 0 {
            return Err(Error::invalid(
                name,
                format!("{f} of {n} characters is less than one character; use a longer text or a larger fraction"),
            ));
        }
    }
    let n_train = n - n_val - n_test;
    if n_train == 0 {
        return Err(Error::invalid("text", "nothing left for training"));
    }
    Ok(StreamSplit {
        train: ids[..n_train].to_vec(),
        val: ids[n_train..n_train + n_val].to_vec(),
        test: ids[n_train + n_val..].to_vec(),
    })
}

/// One chunk of [`ContiguousBatches`]: token ids stored as exact f32 values.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// `[batch_size, seq_len]` input ids.
    pub inputs: Tensor,
    /// `[batch_size, seq_len]` target ids: each input's next character in the stream.
    pub targets: Tensor,
}

/// Contiguous-lane batching for truncated BPTT (char-rnn, Keras stateful RNNs).
///
/// A stream of `n` ids gives `n - 1` (input, next id) pairs. They are cut into
/// `batch_size` lanes of equal length `lane_len = chunks * seq_len`, where
/// `chunks = floor((n - 1) / (batch_size * seq_len))`; lane `b` covers stream
/// positions `b * lane_len .. (b + 1) * lane_len` (inputs; targets one further
/// on). Chunk `k` is `[batch_size, seq_len]`: row `b` holds lane `b`'s
/// positions `k * seq_len .. (k + 1) * seq_len`. So chunk `k + 1` of lane `b`
/// starts where chunk `k` of lane `b` ended: a stateful layer's carried state
/// for batch row `b` is exactly the state at the end of the previous piece of
/// the same text.
///
/// Every chunk has the full shape; the last `n - 1 - batch_size * lane_len`
/// pairs (fewer than `batch_size * seq_len`) are not used.
#[derive(Debug, Clone)]
pub struct ContiguousBatches {
    ids: Vec<usize>,
    batch_size: usize,
    seq_len: usize,
    chunks: usize,
}

impl ContiguousBatches {
    /// Cuts `ids` into lanes. Errors when `batch_size` or `seq_len` is zero or the
    /// stream is too short for a single chunk (the message gives the minimum).
    pub fn new(ids: &[usize], batch_size: usize, seq_len: usize) -> Result<Self> {
        if batch_size == 0 || seq_len == 0 {
            return Err(Error::invalid(
                "batching",
                format!("batch_size ({batch_size}) and seq_len ({seq_len}) must be positive"),
            ));
        }
        let pairs = ids.len().saturating_sub(1);
        let chunks = pairs / (batch_size * seq_len);
        if chunks == 0 {
            return Err(Error::invalid(
                "batching",
                format!(
                    "a stream of {} characters is too short for batch_size {batch_size} and \
                     seq_len {seq_len}: it needs at least batch_size * seq_len + 1 = {} characters",
                    ids.len(),
                    batch_size * seq_len + 1
                ),
            ));
        }
        Ok(ContiguousBatches {
            ids: ids.to_vec(),
            batch_size,
            seq_len,
            chunks,
        })
    }

    /// Number of chunks in one pass (one epoch).
    pub fn len(&self) -> usize {
        self.chunks
    }

    /// Always false: construction fails for a stream without a chunk.
    pub fn is_empty(&self) -> bool {
        self.chunks == 0
    }

    /// Rows per chunk (lanes).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Time steps per chunk.
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// Input positions per lane (`len() * seq_len()`).
    pub fn lane_len(&self) -> usize {
        self.chunks * self.seq_len
    }

    /// Stream position of the first input of lane `lane`, chunk `chunk`.
    pub fn position(&self, lane: usize, chunk: usize) -> usize {
        lane * self.lane_len() + chunk * self.seq_len
    }

    /// Chunk `k` (`None` past the end).
    pub fn chunk(&self, k: usize) -> Option<Chunk> {
        if k >= self.chunks {
            return None;
        }
        let (b, s) = (self.batch_size, self.seq_len);
        let mut inputs = Tensor::zeros(&[b, s]);
        let mut targets = Tensor::zeros(&[b, s]);
        for lane in 0..b {
            let start = self.position(lane, k);
            let row = lane * s;
            for t in 0..s {
                inputs.data_mut()[row + t] = self.ids[start + t] as f32;
                targets.data_mut()[row + t] = self.ids[start + t + 1] as f32;
            }
        }
        Some(Chunk { inputs, targets })
    }

    /// The chunks of one pass, in order.
    pub fn iter(&self) -> impl Iterator<Item = Chunk> + '_ {
        (0..self.chunks).filter_map(|k| self.chunk(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_errors_name_the_byte_offset() {
        let mut bytes = "héllo".as_bytes().to_vec(); // é is 2 bytes: h=0, é=1..3, l=3
        bytes.insert(3, 0xFF);
        let e = decode_text("corpus.txt", bytes).unwrap_err().to_string();
        assert!(e.contains("corpus.txt"), "{e}");
        assert!(e.contains("byte offset 3"), "{e}");
        assert!(e.contains("0xFF"), "{e}");

        let e = decode_text("bin.dat", b"ab\0cd".to_vec())
            .unwrap_err()
            .to_string();
        assert!(e.contains("NUL byte at byte offset 2"), "{e}");

        // A truncated multi-byte sequence at the end.
        let e = decode_text("t.txt", vec![b'a', 0xC3])
            .unwrap_err()
            .to_string();
        assert!(e.contains("byte offset 1"), "{e}");

        let e = decode_text("empty.txt", Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty"), "{e}");
        // BOM only is empty too; a BOM is dropped from real text.
        assert!(decode_text("bom.txt", b"\xEF\xBB\xBF".to_vec()).is_err());
        assert_eq!(
            decode_text("bom.txt", b"\xEF\xBB\xBFok".to_vec()).unwrap(),
            "ok"
        );
        // Offsets count the BOM, so they are offsets in the file.
        let e = decode_text("bom.txt", b"\xEF\xBB\xBFa\xFF".to_vec())
            .unwrap_err()
            .to_string();
        assert!(e.contains("byte offset 4"), "{e}");
    }

    #[test]
    fn read_text_from_disk() {
        let dir = std::env::temp_dir().join(format!("gated-text-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.txt");
        std::fs::write(&good, "Zwölf Boxkämpfer\n").unwrap();
        assert_eq!(read_text(&good).unwrap(), "Zwölf Boxkämpfer\n");
        let bad = dir.join("bad.txt");
        std::fs::write(&bad, [b'o', b'k', 0x80]).unwrap();
        let e = read_text(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.txt") && e.contains("byte offset 2"), "{e}");
        let missing = read_text(dir.join("missing.txt")).unwrap_err();
        assert!(matches!(missing, Error::Io { .. }));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn vocab_sorted_roundtrip_and_json() {
        let text = "banana bread\n";
        let v = CharVocab::from_text(text).unwrap();
        assert_eq!(v.chars(), &['\n', ' ', 'a', 'b', 'd', 'e', 'n', 'r']);
        assert_eq!(v.len(), 8);
        let ids = v.encode(text).unwrap();
        assert_eq!(ids[0], 3);
        assert_eq!(v.decode(&ids).unwrap(), text);

        let e = v.encode("bad!").unwrap_err().to_string();
        assert!(e.contains("'!'") && e.contains("position 3"), "{e}");
        let e = v.decode(&[0, 8]).unwrap_err().to_string();
        assert!(e.contains("id 8 at position 1"), "{e}");

        let json = v.to_json().unwrap();
        assert_eq!(CharVocab::from_json("v.json", &json).unwrap(), v);
        let e = CharVocab::from_json("v.json", r#"{"chars": ["b", "a"]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("v.json") && e.contains("sorted"), "{e}");
        assert!(CharVocab::from_json("v.json", r#"{"chars": ["ab"]}"#).is_err());
        assert!(CharVocab::from_json("v.json", r#"{"chars": []}"#).is_err());
        assert!(CharVocab::from_text("").is_err());

        let dir = std::env::temp_dir().join(format!("gated-vocab-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("vocab.json");
        v.save(&p).unwrap();
        assert_eq!(CharVocab::load(&p).unwrap(), v);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn split_is_contiguous_in_order() {
        let ids: Vec<usize> = (0..100).collect();
        let s = split_stream(&ids, 0.1, 0.05).unwrap();
        assert_eq!(s.train, (0..85).collect::<Vec<_>>());
        assert_eq!(s.val, (85..95).collect::<Vec<_>>());
        assert_eq!(s.test, (95..100).collect::<Vec<_>>());
        let s = split_stream(&ids, 0.05, 0.0).unwrap();
        assert_eq!((s.train.len(), s.val.len(), s.test.len()), (95, 5, 0));
        assert!(split_stream(&ids, 0.6, 0.4).is_err());
        assert!(split_stream(&ids, -0.1, 0.0).is_err());
        assert!(split_stream(&ids, f64::NAN, 0.0).is_err());
        assert!(split_stream(&ids[..5], 0.1, 0.0).is_err());
    }

    #[test]
    fn lanes_are_contiguous_across_chunks() {
        let n = 203;
        let ids: Vec<usize> = (0..n).collect();
        let (b, s) = (3, 7);
        let batches = ContiguousBatches::new(&ids, b, s).unwrap();
        let chunks = (n - 1) / (b * s);
        assert_eq!(batches.len(), chunks);
        assert_eq!(batches.lane_len(), chunks * s);
        let all: Vec<Chunk> = batches.iter().collect();
        assert_eq!(all.len(), chunks);
        for (k, c) in all.iter().enumerate() {
            assert_eq!(c.inputs.shape(), &[b, s]);
            assert_eq!(c.targets.shape(), &[b, s]);
            for lane in 0..b {
                let row = &c.inputs.data()[lane * s..(lane + 1) * s];
                let trow = &c.targets.data()[lane * s..(lane + 1) * s];
                // Within a chunk: consecutive stream positions, targets one ahead.
                for t in 0..s {
                    assert_eq!(trow[t], row[t] + 1.0);
                    if t > 0 {
                        assert_eq!(row[t], row[t - 1] + 1.0);
                    }
                }
                // Across chunks: lane `lane` of chunk k+1 starts where chunk k ended.
                if let Some(next) = all.get(k + 1) {
                    let next_first = next.inputs.data()[lane * s];
                    assert_eq!(next_first, row[s - 1] + 1.0);
                    assert_eq!(next_first, trow[s - 1]);
                }
            }
        }
        // Lanes start lane_len apart and cover disjoint pieces.
        let first = &all[0].inputs;
        for lane in 0..b {
            assert_eq!(first.data()[lane * s] as usize, lane * batches.lane_len());
        }
        assert!(batches.chunk(chunks).is_none());
        // Too short, zero sizes.
        assert!(ContiguousBatches::new(&ids[..21], 3, 7).is_err());
        assert!(ContiguousBatches::new(&ids[..22], 3, 7).is_ok());
        assert!(ContiguousBatches::new(&ids, 0, 7).is_err());
        assert!(ContiguousBatches::new(&ids, 3, 0).is_err());
    }
}
