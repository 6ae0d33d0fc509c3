//! Data-set loaders against hand-worked expectations on the fixtures written
//! by `scripts/make_dataset_fixtures.py`, and every malformed-input path.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use gated::datasets::csv::{read_csv, window, Column, CsvOptions, ScaleKind, Scaler};
use gated::datasets::idx::{load_idx_images, load_idx_labels, load_idx_pair, read_idx};
use gated::datasets::keras::{load_imdb, load_reuters, LoadOptions, Split};
use gated::datasets::sequence::{pad_sequences, Padding, Tokenizer};
use gated::datasets::ts::read_ts;
use gated::datasets::{load_aclimdb, load_aclimdb_split};
use gated::Error;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/datasets")
        .join(name)
}

/// A fresh, empty scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gated-datasets-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The message of an `Error::File`, checking it names `path`.
fn file_err<T: std::fmt::Debug>(r: gated::Result<T>, path: &Path) -> String {
    match r {
        Err(Error::File { path: p, message }) => {
            assert!(
                p.starts_with(path) || p == path,
                "error names {} instead of {}: {message}",
                p.display(),
                path.display()
            );
            message
        }
        other => panic!(
            "expected a file error for {}, got {other:?}",
            path.display()
        ),
    }
}

/// (sequence, label) pairs in a canonical order, so that the (seeded)
/// shuffle order does not matter but pairs must stay together.
fn pairs(s: &Split) -> Vec<(Vec<i64>, i64)> {
    assert_eq!(s.x.len(), s.y.len());
    let mut v: Vec<_> = s.x.iter().cloned().zip(s.y.iter().copied()).collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<(Vec<i64>, i64)>) -> Vec<(Vec<i64>, i64)> {
    v.sort();
    v
}

// Raw imdb_tiny.npz: train [1,5,2]/0, [3,3,7,9]/1, [4]/1; test [2,8]/1, [6,1,1,1,1]/0.

#[test]
fn imdb_defaults() {
    let (train, test) = load_imdb(fixture("imdb_tiny.npz"), &LoadOptions::default()).unwrap();
    // +3, start_char 1 prepended; num_words = largest index (12), which
    // itself is then out of range (w < num_words) and becomes oov 2, as in Keras.
    assert_eq!(
        pairs(&train),
        sorted(vec![
            (vec![1, 4, 8, 5], 0),
            (vec![1, 6, 6, 10, 2], 1),
            (vec![1, 7], 1)
        ])
    );
    assert_eq!(
        pairs(&test),
        sorted(vec![(vec![1, 5, 11], 1), (vec![1, 9, 4, 4, 4, 4], 0)])
    );
}

#[test]
fn imdb_num_words_skip_top() {
    let opts = LoadOptions {
        num_words: Some(8),
        skip_top: 4,
        ..LoadOptions::default()
    };
    let (train, test) = load_imdb(fixture("imdb_tiny.npz"), &opts).unwrap();
    // Shifted: [1,4,8,5] [1,6,6,10,12] [1,7] | [1,5,11] [1,9,4,4,4,4];
    // w < 4 or w >= 8 -> 2 (start_char 1 included, as in Keras).
    assert_eq!(
        pairs(&train),
        sorted(vec![
            (vec![2, 4, 2, 5], 0),
            (vec![2, 6, 6, 2, 2], 1),
            (vec![2, 7], 1)
        ])
    );
    assert_eq!(
        pairs(&test),
        sorted(vec![(vec![2, 5, 2], 1), (vec![2, 2, 4, 4, 4, 4], 0)])
    );
}

#[test]
fn imdb_maxlen_filters_before_num_words() {
    let opts = LoadOptions {
        maxlen: Some(5),
        ..LoadOptions::default()
    };
    let (train, test) = load_imdb(fixture("imdb_tiny.npz"), &opts).unwrap();
    // Lengths (with start_char) 4, 5, 2 | 3, 6: keep those < 5. The largest
    // index left is 11, which becomes oov.
    assert_eq!(
        pairs(&train),
        sorted(vec![(vec![1, 4, 8, 5], 0), (vec![1, 7], 1)])
    );
    assert_eq!(pairs(&test), vec![(vec![1, 5, 2], 1)]);

    let opts = LoadOptions {
        maxlen: Some(2),
        ..LoadOptions::default()
    };
    match load_imdb(fixture("imdb_tiny.npz"), &opts) {
        Err(Error::Invalid { name, message }) => {
            assert_eq!(name, "maxlen");
            assert!(message.contains("maxlen=2"), "{message}");
        }
        other => panic!("expected an invalid-maxlen error, got {other:?}"),
    }
}

#[test]
fn imdb_no_start_no_shift_oov_removed() {
    let opts = LoadOptions {
        num_words: Some(8),
        start_char: None,
        oov_char: None,
        index_from: 0,
        ..LoadOptions::default()
    };
    let (train, test) = load_imdb(fixture("imdb_tiny.npz"), &opts).unwrap();
    assert_eq!(
        pairs(&train),
        sorted(vec![(vec![1, 5, 2], 0), (vec![3, 3, 7], 1), (vec![4], 1)])
    );
    assert_eq!(
        pairs(&test),
        sorted(vec![(vec![2], 1), (vec![6, 1, 1, 1, 1], 0)])
    );
}

#[test]
fn imdb_shuffle_is_seeded() {
    let load = |seed| {
        let opts = LoadOptions {
            seed,
            ..LoadOptions::default()
        };
        load_imdb(fixture("imdb_tiny.npz"), &opts).unwrap()
    };
    assert_eq!(load(113), load(113));
    let base = load(113).0.x;
    assert!(
        (0..20).any(|s| load(s).0.x != base),
        "no seed changes the order"
    );
}

// Raw reuters_tiny.npz: [1,2]/3, [3]/1, [4,4,4]/4, [5,1]/0, [2,2,2,2]/2.

#[test]
fn reuters_split_and_contents() {
    let (train, test) = load_reuters(fixture("reuters_tiny.npz"), &LoadOptions::default()).unwrap();
    // int(5 * 0.8) = 4 training sequences, 1 test. Largest index 8 -> oov.
    assert_eq!((train.x.len(), test.x.len()), (4, 1));
    let all = Split {
        x: train.x.iter().chain(&test.x).cloned().collect(),
        y: train.y.iter().chain(&test.y).copied().collect(),
    };
    assert_eq!(
        pairs(&all),
        sorted(vec![
            (vec![1, 4, 5], 3),
            (vec![1, 6], 1),
            (vec![1, 7, 7, 7], 4),
            (vec![1, 2, 4], 0),
            (vec![1, 5, 5, 5, 5], 2)
        ])
    );
    let opts = LoadOptions {
        test_split: 0.5,
        ..LoadOptions::default()
    };
    let (train, test) = load_reuters(fixture("reuters_tiny.npz"), &opts).unwrap();
    assert_eq!((train.x.len(), test.x.len()), (2, 3)); // int(2.5) = 2
    let bad = LoadOptions {
        test_split: 1.5,
        ..LoadOptions::default()
    };
    assert!(matches!(
        load_reuters(fixture("reuters_tiny.npz"), &bad),
        Err(Error::Invalid { .. })
    ));
}

#[test]
fn reuters_missing_member_and_imdb_on_reuters() {
    let path = fixture("reuters_tiny.npz");
    let msg = file_err(load_imdb(&path, &LoadOptions::default()), &path);
    assert!(msg.contains("x_train"), "{msg}");
}

/// Rewrites `src`'s members into a stored zip at `dst`, passing each through `edit`.
fn rewrite_npz(src: &Path, dst: &Path, edit: impl Fn(&str, Vec<u8>) -> Vec<u8>) {
    let mut zin = zip::ZipArchive::new(fs::File::open(src).unwrap()).unwrap();
    let mut zout = zip::ZipWriter::new(fs::File::create(dst).unwrap());
    for i in 0..zin.len() {
        let mut m = zin.by_index(i).unwrap();
        let name = m.name().unwrap().to_string();
        let mut bytes = Vec::new();
        m.read_to_end(&mut bytes).unwrap();
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zout.start_file(name.clone(), opts).unwrap();
        zout.write_all(&edit(&name, bytes)).unwrap();
    }
    zout.finish().unwrap();
}

#[test]
fn truncated_npz_names_file() {
    let dir = scratch("npz");
    // The archive itself cut short: the zip directory is gone.
    let bytes = fs::read(fixture("imdb_tiny.npz")).unwrap();
    let cut = dir.join("cut.npz");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    file_err(load_imdb(&cut, &LoadOptions::default()), &cut);
    // A member whose pickled data is cut short: the error names the member
    // and the byte offset.
    let member = dir.join("member.npz");
    rewrite_npz(&fixture("imdb_tiny.npz"), &member, |name, b| {
        if name == "x_train.npy" {
            b[..b.len() - 20].to_vec()
        } else {
            b
        }
    });
    let msg = file_err(load_imdb(&member, &LoadOptions::default()), &member);
    assert!(msg.contains("at byte"), "{msg}");
    // A member header that lies about the number of rows.
    let liar = dir.join("liar.npz");
    rewrite_npz(&fixture("imdb_tiny.npz"), &liar, |name, b| {
        if name == "x_train.npy" {
            let at = b
                .windows(4)
                .position(|w| w == b"(3,)")
                .expect("shape in the header");
            let mut b = b;
            b[at + 1] = b'9';
            b
        } else {
            b
        }
    });
    let msg = file_err(load_imdb(&liar, &LoadOptions::default()), &liar);
    assert!(msg.contains("(3 rows)") || msg.contains("[9]"), "{msg}");
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn pad_sequences_pre_and_post() {
    let seqs = vec![vec![1, 2, 3], vec![4, 5], vec![6, 7, 8, 9]];
    let t = pad_sequences(&seqs, None, Padding::Pre, Padding::Pre, 0.0);
    assert_eq!(t.shape(), &[3, 4]);
    assert_eq!(t.data(), &[0., 1., 2., 3., 0., 0., 4., 5., 6., 7., 8., 9.]);
    let t = pad_sequences(&seqs, Some(3), Padding::Pre, Padding::Pre, 0.0);
    assert_eq!(t.data(), &[1., 2., 3., 0., 4., 5., 7., 8., 9.]);
    let t = pad_sequences(&seqs, Some(3), Padding::Post, Padding::Post, 0.0);
    assert_eq!(t.data(), &[1., 2., 3., 4., 5., 0., 6., 7., 8.]);
    let t = pad_sequences(&seqs, Some(3), Padding::Pre, Padding::Post, 0.0);
    assert_eq!(t.data(), &[1., 2., 3., 0., 4., 5., 6., 7., 8.]);
    let t = pad_sequences(&seqs, Some(3), Padding::Post, Padding::Pre, -1.0);
    assert_eq!(t.data(), &[1., 2., 3., 4., 5., -1., 7., 8., 9.]);
    let t = pad_sequences(&[vec![], vec![1]], None, Padding::Pre, Padding::Pre, 0.0);
    assert_eq!((t.shape(), t.data()), (&[2usize, 1][..], &[0., 1.][..]));
}

const TEXTS: [&str; 3] = [
    "The cat sat on the mat.",
    "The dog ate the cat's food!",
    "A dog? A DOG.",
];

#[test]
fn tokenizer_word_index_order() {
    let mut tok = Tokenizer::new();
    tok.fit_on_texts(TEXTS).unwrap();
    // Counts: the 4, dog 3, a 2, then the 1-counts in order of first
    // appearance (the apostrophe is not a default filter).
    let order = [
        "the", "dog", "a", "cat", "sat", "on", "mat", "ate", "cat's", "food",
    ];
    for (i, w) in order.iter().enumerate() {
        assert_eq!(tok.word_index()[*w], i + 1, "{w}");
    }
    assert_eq!(tok.word_index().len(), order.len());
    assert_eq!(tok.document_count, 3);
    assert_eq!(tok.index_word(2), Some("dog"));
    let seqs = tok
        .texts_to_sequences(["the cat and the bird sat"])
        .unwrap();
    assert_eq!(seqs, vec![vec![1, 4, 1, 5]]);
    tok.num_words = Some(5);
    let seqs = tok
        .texts_to_sequences(["the cat and the bird sat"])
        .unwrap();
    assert_eq!(seqs, vec![vec![1, 4, 1]]);
}

#[test]
fn tokenizer_oov() {
    let mut tok = Tokenizer::new().with_oov_token("<OOV>").with_num_words(5);
    tok.fit_on_texts(TEXTS).unwrap();
    assert_eq!(tok.word_index()["<OOV>"], 1);
    assert_eq!(tok.word_index()["the"], 2);
    assert_eq!(tok.word_index()["cat"], 5);
    // the=2, cat=5 (>= num_words -> oov), and/bird unknown -> oov, sat=6 -> oov.
    let seqs = tok
        .texts_to_sequences(["the cat and the bird sat"])
        .unwrap();
    assert_eq!(seqs, vec![vec![2, 1, 1, 2, 1, 1]]);
    // Keras's options: no lower-casing, custom split.
    let mut tok = Tokenizer::new();
    tok.lower = false;
    tok.split = "|".into();
    tok.fit_on_texts(["A|b|a", "b"]).unwrap();
    assert_eq!(tok.word_index()["b"], 1);
    assert_eq!(tok.word_index()["A"], 2);
    assert_eq!(tok.word_index()["a"], 3);
    // Serialisable (serde) for the model directory.
    let json = serde_json::to_string(&tok).unwrap();
    let back: Tokenizer = serde_json::from_str(&json).unwrap();
    assert_eq!(back, tok);
    tok.split = String::new();
    assert!(tok.fit_on_texts(["x"]).is_err());
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

#[test]
fn aclimdb_layout() {
    let root = scratch("aclimdb").join("aclImdb");
    write(
        &root.join("train/pos/1_9.txt"),
        b"Great.<br /><br />Loved it",
    );
    write(&root.join("train/pos/0_7.txt"), b"Good");
    write(&root.join("train/neg/0_2.txt"), b"Bad");
    write(&root.join("train/neg/notes.md"), b"ignored");
    write(&root.join("train/unsup/0_0.txt"), b"ignored");
    write(&root.join("test/pos/0_10.txt"), b"Fine");
    write(&root.join("test/neg/0_1.txt"), b"Awful");
    let (train, test) = load_aclimdb(&root).unwrap();
    assert_eq!(train.texts, vec!["Bad", "Good", "Great.  Loved it"]);
    assert_eq!(train.labels, vec![0, 1, 1]);
    assert_eq!(train.files[2], root.join("train/pos/1_9.txt"));
    assert_eq!(test.texts, vec!["Awful", "Fine"]);
    assert_eq!(test.labels, vec![0, 1]);

    // Non-UTF-8: the file and the byte offset.
    let bad = root.join("test/neg/1_3.txt");
    write(&bad, b"ok \xff no");
    let msg = file_err(load_aclimdb_split(&root, "test"), &bad);
    assert!(msg.contains("byte offset 3"), "{msg}");
    fs::remove_file(&bad).unwrap();

    // Empty folder, then missing folder: named.
    for f in fs::read_dir(root.join("test/neg")).unwrap() {
        fs::remove_file(f.unwrap().path()).unwrap();
    }
    file_err(load_aclimdb_split(&root, "test"), &root.join("test/neg"));
    fs::remove_dir(root.join("test/neg")).unwrap();
    let msg = file_err(load_aclimdb(&root), &root.join("test/neg"));
    assert!(msg.contains("not found"), "{msg}");
    let _ = fs::remove_dir_all(root.parent().unwrap());
}

#[test]
fn csv_header_columns_and_window() {
    let path = fixture("series.csv");
    let table = read_csv(&path, &CsvOptions::default()).unwrap();
    assert!(table.has_header());
    assert_eq!(table.names(), &["time", "temp", "load"]);
    assert_eq!(table.rows(), 6);
    let feats = table
        .select(&[Column::from("temp"), Column::from(2usize)])
        .unwrap();
    assert_eq!(feats.shape(), &[6, 2]);
    assert_eq!(&feats.data()[..4], &[10., 1.5, 12., 2.5]);
    let temp = table.column(&"temp".into()).unwrap();
    assert_eq!(temp, vec![10., 12., 14., 16., 18., 20.]);

    // lookback 3, horizon 2: N = 6 - 3 - 2 + 1 = 2; y[i] = temp[i+3 .. i+5].
    let (x, y) = window(&feats, &temp, 3, 2).unwrap();
    assert_eq!(x.shape(), &[2, 3, 2]);
    assert_eq!(&x.data()[..6], &[10., 1.5, 12., 2.5, 14., 3.5]);
    assert_eq!(&x.data()[6..], &[12., 2.5, 14., 3.5, 16., 4.5]);
    assert_eq!(y.shape(), &[2, 2]);
    assert_eq!(y.data(), &[16., 18., 18., 20.]);
    assert!(window(&feats, &temp, 3, 4).is_err());
    assert!(window(&feats, &temp, 0, 1).is_err());

    let msg = file_err(table.column_index(&"pressure".into()), &path);
    assert!(msg.contains("pressure") && msg.contains("temp"), "{msg}");
    file_err(table.column_index(&Column::Index(3)), &path);

    let plain = read_csv(
        fixture("noheader.csv"),
        &CsvOptions {
            delimiter: ';',
            header: None,
        },
    )
    .unwrap();
    assert!(!plain.has_header());
    assert_eq!(plain.names(), &["0", "1"]);
    assert_eq!(plain.column(&Column::Index(1)).unwrap(), vec![2., 4., 6.]);
}

#[test]
fn scaler_fit_roundtrip_and_save() {
    let table = read_csv(fixture("series.csv"), &CsvOptions::default()).unwrap();
    let cols = [Column::from("temp"), Column::from("load")];
    let feats = table.select(&cols).unwrap();
    let names = table.column_names(&cols).unwrap();
    // Min-max on the first 4 rows: temp in [10, 16], load in [1.5, 4.5].
    let s = Scaler::fit(ScaleKind::MinMax, &feats, Some(4), names).unwrap();
    assert_eq!(s.offset, vec![10.0, 1.5]);
    assert_eq!(s.scale, vec![6.0, 3.0]);
    let scaled = s.transform(&feats).unwrap();
    assert_eq!(&scaled.data()[..2], &[0.0, 0.0]);
    assert!((scaled.data()[10] - 10.0 / 6.0).abs() < 1e-6);
    assert!((scaled.data()[11] - 5.0 / 3.0).abs() < 1e-6);
    let back = s.inverse_transform(&scaled).unwrap();
    assert!(back.max_abs_diff(&feats) < 1e-5);
    // Predictions of the temp column ([N, horizon]) back in degrees.
    let pred = gated::Tensor::from_vec(&[1, 2], vec![0.5, 1.0]).unwrap();
    let inv = s.inverse_transform_column(0, &pred).unwrap();
    assert_eq!(inv.data(), &[13.0, 16.0]);
    assert!(s.inverse_transform_column(2, &pred).is_err());

    // Standard: temp mean 15, population variance 70/6.
    let st = Scaler::fit(ScaleKind::Standard, &feats, None, vec![]).unwrap();
    assert!((st.offset[0] - 15.0).abs() < 1e-6);
    assert!((st.scale[0] - (70.0f32 / 6.0).sqrt()).abs() < 1e-5);

    let dir = scratch("scaler");
    let path = dir.join("scaler.json");
    s.save(&path).unwrap();
    assert_eq!(Scaler::load(&path).unwrap(), s);
    fs::write(&path, "{\"kind\":\"minmax\"").unwrap();
    file_err(Scaler::load(&path), &path);
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn csv_errors_name_line_and_column() {
    let dir = scratch("csv");
    let ragged = dir.join("ragged.csv");
    fs::write(&ragged, "a,b\n1,2\n\n3\n").unwrap();
    let msg = file_err(read_csv(&ragged, &CsvOptions::default()), &ragged);
    assert!(msg.contains("line 4") && msg.contains("1 fields"), "{msg}");
    let text = dir.join("text.csv");
    fs::write(&text, "a,b\n1,2\n3,x\n").unwrap();
    let msg = file_err(read_csv(&text, &CsvOptions::default()), &text);
    assert!(msg.contains("line 3, column 2 ('b')"), "{msg}");
    let empty = dir.join("empty.csv");
    fs::write(&empty, "\n").unwrap();
    file_err(read_csv(&empty, &CsvOptions::default()), &empty);
    let _ = fs::remove_dir_all(dir);
}

fn pixel(n: usize, r: usize, c: usize) -> f32 {
    (5 * (16 * n + 5 * r + c)) as f32 / 255.0
}

#[test]
fn idx_images_and_labels() {
    for name in ["tiny-images-idx3-ubyte", "tiny-images-idx3-ubyte.gz"] {
        let x = load_idx_images(fixture(name)).unwrap();
        assert_eq!(x.shape(), &[3, 4, 5]);
        for (i, v) in x.data().iter().enumerate() {
            let (n, r, c) = (i / 20, (i / 5) % 4, i % 5);
            assert!((v - pixel(n, r, c)).abs() < 1e-7, "{name} [{n},{r},{c}]");
        }
        assert_eq!(x.data()[59], 1.0);
    }
    assert_eq!(
        load_idx_labels(fixture("tiny-labels-idx1-ubyte")).unwrap(),
        vec![7, 0, 9]
    );
    let (x, y) = load_idx_pair(
        fixture("tiny-images-idx3-ubyte.gz"),
        fixture("tiny-labels-idx1-ubyte"),
    )
    .unwrap();
    assert_eq!((x.shape()[0], y.len()), (3, 3));
    // Labels are not images, and vice versa.
    let labels = fixture("tiny-labels-idx1-ubyte");
    file_err(load_idx_images(&labels), &labels);
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn idx_errors_name_file_and_offset() {
    let dir = scratch("idx");
    let good = fs::read(fixture("tiny-images-idx3-ubyte")).unwrap();

    let cut = dir.join("cut-idx3-ubyte");
    fs::write(&cut, &good[..good.len() - 10]).unwrap();
    let msg = file_err(read_idx(&cut), &cut);
    assert!(
        msg.contains("byte offset 16") && msg.contains("50"),
        "{msg}"
    );

    // A header that claims 60000 x 28 x 28 images over 100 bytes: rejected
    // before any allocation (plain file: from the file length).
    let mut lying = vec![0, 0, 8, 3];
    for d in [60_000u32, 28, 28] {
        lying.extend_from_slice(&d.to_be_bytes());
    }
    lying.extend_from_slice(&[0u8; 100]);
    let liar = dir.join("liar-idx3-ubyte");
    fs::write(&liar, &lying).unwrap();
    let msg = file_err(read_idx(&liar), &liar);
    assert!(
        msg.contains("47040000") && msg.contains("byte offset 16"),
        "{msg}"
    );

    // The same inside gzip: the buffer only grows with the data there is.
    let liar_gz = dir.join("liar-idx3-ubyte.gz");
    fs::write(&liar_gz, gz(&lying)).unwrap();
    let msg = file_err(read_idx(&liar_gz), &liar_gz);
    assert!(msg.contains("ends at byte offset 116"), "{msg}");

    // Dimensions whose product overflows.
    let huge = dir.join("huge-idx3-ubyte");
    let mut h = vec![0, 0, 8, 3];
    for d in [u32::MAX, u32::MAX, u32::MAX] {
        h.extend_from_slice(&d.to_be_bytes());
    }
    fs::write(&huge, gz(&h)).unwrap();
    let msg = file_err(read_idx(&huge), &huge);
    assert!(msg.contains("byte offset 4"), "{msg}");

    let cut_gz = dir.join("cut.gz");
    let whole = gz(&good);
    fs::write(&cut_gz, &whole[..whole.len() / 2]).unwrap();
    file_err(read_idx(&cut_gz), &cut_gz);

    let long = dir.join("long-idx1-ubyte");
    fs::write(&long, [0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3]).unwrap();
    let msg = file_err(read_idx(&long), &long);
    assert!(msg.contains("holds 3"), "{msg}");

    let short_head = dir.join("head-idx1-ubyte");
    fs::write(&short_head, [0, 0, 8, 2, 0, 0]).unwrap();
    let msg = file_err(read_idx(&short_head), &short_head);
    assert!(msg.contains("byte offset 6"), "{msg}");

    let bad_type = dir.join("type-idx1-ubyte");
    fs::write(&bad_type, [0, 0, 7, 1, 0, 0, 0, 0]).unwrap();
    let msg = file_err(read_idx(&bad_type), &bad_type);
    assert!(msg.contains("byte offset 2"), "{msg}");
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn ts_variable_length_multivariate() {
    let d = read_ts(fixture("toy.ts")).unwrap();
    assert_eq!(d.problem_name.as_deref(), Some("Toy"));
    assert_eq!(d.class_labels, vec!["a", "b", "c"]);
    assert_eq!(d.labels, vec![1, 0, 2]);
    assert_eq!(d.lengths, vec![3, 2, 4]);
    assert_eq!(d.x.shape(), &[3, 4, 2]);
    let x = d.x.data();
    assert_eq!(&x[..8], &[1., 4., 2., 5., 3., 6., 0., 0.]);
    assert_eq!(&x[8..16], &[7., 9., 8., 10., 0., 0., 0., 0.]);
    assert_eq!((x[16], x[17]), (1.5, 0.));
    assert!(x[18].is_nan()); // '?' is missing
    assert_eq!(&x[19..24], &[0., 2.5, 0., 3.5, 1.]);
    assert_eq!(
        d.mask.data(),
        &[1., 1., 1., 0., 1., 1., 0., 0., 1., 1., 1., 1.]
    );
    // ARFF-style `%` comments, as in aeon's UnitTest files.
    let dir = scratch("ts-comments");
    let path = dir.join("pct.ts");
    let text = fs::read_to_string(fixture("toy.ts")).unwrap();
    fs::write(&path, format!("% a comment\n%\n{text}")).unwrap();
    let e = read_ts(&path).unwrap();
    assert_eq!((e.labels, e.lengths, e.mask), (d.labels, d.lengths, d.mask));
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn ts_errors_name_line_and_label() {
    let dir = scratch("ts");
    let good = fs::read_to_string(fixture("toy.ts")).unwrap();
    let cases = [
        (
            "label.ts",
            good.replace("7,8:9,10:a", "7,8:9,10:d"),
            "line 11",
        ),
        ("dims.ts", good.replace("7,8:9,10:a", "7,8:a"), "line 11"),
        ("lens.ts", good.replace("7,8:9,10:a", "7,8:9:a"), "line 11"),
        (
            "num.ts",
            good.replace("7,8:9,10:a", "7,x:9,10:a"),
            "line 11, dimension 1, value 2",
        ),
        (
            "stamps.ts",
            good.replace("@timeStamps false", "@timeStamps true"),
            "line 3",
        ),
        ("nodata.ts", good.replace("@data", "@dataz"), "line 10"),
    ];
    for (name, text, want) in cases {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        let msg = file_err(read_ts(&path), &path);
        assert!(msg.contains(want), "{name}: {msg}");
        if name == "label.ts" {
            assert!(msg.contains("'d'"), "{msg}");
        }
    }
    let _ = fs::remove_dir_all(dir);
}
