//! File-format tests: NumPy fixtures written by scripts/make_io_fixtures.py,
//! round trips, and malformed files that must give an error naming the file.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use gated::io::{
    load_safetensors, load_safetensors_with_metadata, read_npy, read_npz, save_safetensors,
    save_safetensors_with_metadata, write_atomic, write_npy, write_npy_i32, write_npz, NpzArray,
};
use gated::Tensor;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/io")
        .join(name)
}

fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gated-io-{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// The error message for `r`, asserting it is an error that names `path`.
fn err_naming<T: std::fmt::Debug>(r: gated::Result<T>, path: &Path) -> String {
    let msg = r.expect_err("expected an error").to_string();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(msg.contains(&name), "error does not name {name}: {msg}");
    msg
}

fn base() -> Vec<f32> {
    (0..12).map(|i| i as f32 * 0.5 - 1.25).collect()
}

#[test]
fn numpy_float_fixtures() {
    for name in [
        "f32.npy",
        "f64.npy",
        "f16.npy",
        "be_f4.npy",
        "v2.npy",
        "v3.npy",
    ] {
        let t = read_npy(fixture(name)).unwrap();
        assert_eq!(t.shape(), &[3, 4], "{name}");
        assert_eq!(t.data(), &base()[..], "{name}");
    }
    let s = read_npy(fixture("scalar.npy")).unwrap();
    assert_eq!((s.shape(), s.data()), (&[][..], &[3.5f32][..]));
    let e = read_npy(fixture("empty.npy")).unwrap();
    assert_eq!(e.shape(), &[0, 3]);
    assert!(e.is_empty());
}

#[test]
fn numpy_integer_and_bool_fixtures() {
    let ints = [0.0, 1.0, -2.0, 3.0, -16777216.0, 16777216.0];
    for name in ["i32.npy", "i64.npy"] {
        let t = read_npy(fixture(name)).unwrap();
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.data(), &ints[..], "{name}");
    }
    assert_eq!(
        read_npy(fixture("i8.npy")).unwrap().data(),
        &[-128.0, 0.0, 127.0]
    );
    assert_eq!(
        read_npy(fixture("u8.npy")).unwrap().data(),
        &[0.0, 1.0, 255.0]
    );
    assert_eq!(
        read_npy(fixture("u16.npy")).unwrap().data(),
        &[0.0, 65535.0]
    );
    assert_eq!(
        read_npy(fixture("bool.npy")).unwrap().data(),
        &[1.0, 0.0, 1.0, 1.0]
    );
}

#[test]
fn inexact_integer_is_an_error_naming_the_value() {
    let p = fixture("big_i64.npy");
    let msg = err_naming(read_npy(&p), &p);
    assert!(
        msg.contains("16777217") && msg.contains("element 1"),
        "{msg}"
    );
}

#[test]
fn fortran_order_and_object_arrays_are_refused() {
    let p = fixture("fortran.npy");
    assert!(err_naming(read_npy(&p), &p).contains("fortran_order"));
    let p = fixture("object.npy");
    assert!(err_naming(read_npy(&p), &p).contains("object"));
}

fn keras_expected() -> Vec<(&'static str, NpzArray)> {
    vec![
        (
            "x_train",
            NpzArray::Sequences(vec![
                vec![1, 14, 22, 16],
                vec![1, 194, 70000],
                vec![],
                vec![(1i64 << 31) + 5, -3, 255, 256],
            ]),
        ),
        (
            "y_train",
            NpzArray::Tensor(Tensor::from_vec(&[4], vec![1.0, 0.0, 0.0, 1.0]).unwrap()),
        ),
        (
            "x_test",
            NpzArray::Sequences(vec![vec![7, 8, 9], vec![4, 1 << 40], vec![7, 8, 9]]),
        ),
        (
            "y_test",
            NpzArray::Tensor(Tensor::from_vec(&[3], vec![0.0, 1.0, 1.0]).unwrap()),
        ),
    ]
}

#[test]
fn keras_dataset_npz_stored_and_deflated() {
    for name in ["keras.npz", "keras_compressed.npz"] {
        let got = read_npz(fixture(name)).unwrap();
        let want = keras_expected();
        assert_eq!(got.len(), want.len(), "{name}");
        for ((gn, ga), (wn, wa)) in got.iter().zip(&want) {
            assert_eq!(gn, wn, "{name}");
            assert_eq!(ga, wa, "{name}: {gn}");
        }
        let x = got[0].1.as_sequences().unwrap();
        assert_eq!(x[1], vec![1, 194, 70000]);
        assert!(got[1].1.as_tensor().is_some());
    }
}

#[test]
fn every_pickle_protocol() {
    let got = read_npz(fixture("pickles.npz")).unwrap();
    let map: HashMap<_, _> = got.into_iter().collect();
    let seqs = NpzArray::Sequences(vec![vec![5, 6, 7], vec![70000], vec![-1, 0]]);
    for p in 2..=5 {
        assert_eq!(map[&format!("x_p{p}")], seqs, "protocol {p}");
    }
    assert_eq!(
        map["x_equal"],
        NpzArray::Sequences(vec![vec![1, 2], vec![3, 4]])
    );
    assert_eq!(map["w"].as_tensor().unwrap().data(), &base()[..]);
}

#[test]
fn object_array_of_other_things_is_refused() {
    let p = fixture("bad_object.npz");
    let msg = err_naming(read_npz(&p), &p);
    assert!(
        msg.contains("s.npy") && msg.contains("pickle at byte 285: unsupported opcode EMPTY_DICT"),
        "{msg}"
    );
}

#[test]
fn npy_and_npz_round_trips() {
    let d = scratch("roundtrip");
    let a = Tensor::from_vec(&[2, 3], vec![1.0, -2.5, 3.25, 0.0, 1e-7, -1e7]).unwrap();
    let b = Tensor::from_vec(&[], vec![42.0]).unwrap();
    write_npy(d.join("a.npy"), &a).unwrap();
    assert_eq!(read_npy(d.join("a.npy")).unwrap(), a);
    write_npy_i32(d.join("i.npy"), &[3], &[-7, 0, 16777216]).unwrap();
    assert_eq!(
        read_npy(d.join("i.npy")).unwrap().data(),
        &[-7.0, 0.0, 16777216.0]
    );
    assert!(write_npy_i32(d.join("bad.npy"), &[2], &[1]).is_err());
    write_npz(d.join("m.npz"), &[("a", &a), ("b", &b)]).unwrap();
    let got = read_npz(d.join("m.npz")).unwrap();
    assert_eq!(
        got,
        vec![
            ("a".to_string(), NpzArray::Tensor(a.clone())),
            ("b".to_string(), NpzArray::Tensor(b.clone()))
        ]
    );
    assert!(write_npz(d.join("dup.npz"), &[("a", &a), ("a", &b)]).is_err());
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn truncated_and_corrupt_npy_files_name_the_file() {
    let d = scratch("badnpy");
    let good = fs::read(fixture("f32.npy")).unwrap();
    let p = d.join("trunc.npy");
    for n in [0, 3, 7, 9, 40, good.len() - 1] {
        fs::write(&p, &good[..n]).unwrap();
        err_naming(read_npy(&p), &p);
    }
    let p = d.join("magic.npy");
    let mut bad = good.clone();
    bad[1] = b'X';
    fs::write(&p, &bad).unwrap();
    assert!(err_naming(read_npy(&p), &p).contains("bad magic at byte 0"));

    // A header that claims a huge shape must fail before allocating.
    let p = d.join("huge.npy");
    let text = good[10..]
        .iter()
        .map(|&b| b as char)
        .collect::<String>()
        .replace("(3, 4)", "(900000000000, 4)");
    let mut lying = good[..10].to_vec();
    lying.extend(text.bytes());
    let hl = (text.find('\n').unwrap() + 1) as u16;
    lying[8..10].copy_from_slice(&hl.to_le_bytes());
    fs::write(&p, &lying).unwrap();
    let msg = err_naming(read_npy(&p), &p);
    assert!(msg.contains("needs 14400000000000 bytes"), "{msg}");

    let p = d.join("garbage_header.npy");
    let mut g = good[..10].to_vec();
    g.extend_from_slice(b"{'descr': <f4}\n");
    g[8..10].copy_from_slice(&15u16.to_le_bytes());
    fs::write(&p, &g).unwrap();
    assert!(err_naming(read_npy(&p), &p).contains("does not parse at byte"));

    let p = d.join("missing.npy");
    err_naming(read_npy(&p), &p);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn truncated_and_corrupt_npz_files_name_the_file() {
    let d = scratch("badnpz");
    for src in ["keras.npz", "keras_compressed.npz"] {
        let good = fs::read(fixture(src)).unwrap();
        let p = d.join(format!("trunc_{src}"));
        for n in (0..good.len()).step_by(37) {
            fs::write(&p, &good[..n]).unwrap();
            err_naming(read_npz(&p), &p);
        }
        // Flipping any byte must never panic; where it fails, it names the file.
        let p = d.join(format!("flip_{src}"));
        for i in (0..good.len()).step_by(3) {
            let mut c = good.clone();
            c[i] ^= 0x5a;
            fs::write(&p, &c).unwrap();
            if let Err(e) = read_npz(&p) {
                assert!(e.to_string().contains("flip_"), "{e}");
            }
        }
    }
    let p = d.join("notzip.npz");
    fs::write(&p, b"hello, this is not a zip file").unwrap();
    err_naming(read_npz(&p), &p);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn safetensors_round_trip_with_metadata() {
    let d = scratch("st");
    let a = Tensor::from_vec(&[2, 2], vec![1.0, 2.0, 3.0, -4.5]).unwrap();
    let b = Tensor::from_vec(&[3], vec![0.25, 0.0, 1e-30]).unwrap();
    let p = d.join("w.safetensors");
    save_safetensors(&p, &[("weight_ih_l0", &a), ("bias_ih_l0", &b)]).unwrap();
    let got = load_safetensors(&p).unwrap();
    assert_eq!(
        got,
        vec![
            ("bias_ih_l0".to_string(), b.clone()),
            ("weight_ih_l0".to_string(), a.clone())
        ]
    );
    let meta: HashMap<String, String> = [("mode".to_string(), "LSTM".to_string())].into();
    save_safetensors_with_metadata(&p, &[("a", &a)], &meta).unwrap();
    let (t, m) = load_safetensors_with_metadata(&p).unwrap();
    assert_eq!((t.len(), m), (1, meta));
    assert!(save_safetensors(&p, &[("a", &a), ("a", &b)]).is_err());
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn rnn_fixture_loads_with_metadata() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rnn/lstm_l2_bi_b5_t7_i3_h5.safetensors");
    let (t, m) = load_safetensors_with_metadata(&p).unwrap();
    assert_eq!(m["mode"], "LSTM");
    let map: HashMap<_, _> = t.into_iter().collect();
    assert_eq!(map["x"].shape(), &[5, 7, 3]);
    assert_eq!(map["weight_ih_l1_reverse"].shape(), &[20, 10]);
    assert_eq!(map["grad.weight_ih_l1_reverse"].shape(), &[20, 10]);
}

/// A hand-built safetensors file with the given dtype and data.
fn raw_safetensors(dtype: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let header = format!(
        "{{\"t\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[0,{}]}}}}",
        data.len()
    );
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn safetensors_dtypes_and_corruption() {
    let d = scratch("stdt");
    let p = d.join("f64.safetensors");
    let data: Vec<u8> = [1.5f64, -2.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    write_atomic(&p, &raw_safetensors("F64", &[2], &data)).unwrap();
    assert_eq!(load_safetensors(&p).unwrap()[0].1.data(), &[1.5, -2.0]);

    let p = d.join("f16.safetensors");
    write_atomic(&p, &raw_safetensors("F16", &[2], &[0x00, 0x3c, 0x00, 0xc0])).unwrap();
    assert_eq!(load_safetensors(&p).unwrap()[0].1.data(), &[1.0, -2.0]);

    let p = d.join("bf16.safetensors");
    write_atomic(&p, &raw_safetensors("BF16", &[1], &[0x80, 0x3f])).unwrap();
    assert_eq!(load_safetensors(&p).unwrap()[0].1.data(), &[1.0]);

    let p = d.join("i64.safetensors");
    write_atomic(&p, &raw_safetensors("I64", &[1], &[0; 8])).unwrap();
    let msg = err_naming(load_safetensors(&p), &p);
    assert!(msg.contains("'t'") && msg.contains("I64"), "{msg}");

    let p = d.join("lying.safetensors");
    let mut lying = raw_safetensors("F32", &[1_000_000_000, 1_000_000], &[0; 8]);
    lying.truncate(lying.len() - 4);
    write_atomic(&p, &lying).unwrap();
    err_naming(load_safetensors(&p), &p);

    let p = d.join("overflow.safetensors");
    let big = 1usize << 32;
    write_atomic(&p, &raw_safetensors("F32", &[big, big, big], &[0; 8])).unwrap();
    err_naming(load_safetensors(&p), &p);

    let p = d.join("trunc.safetensors");
    let good = raw_safetensors("F32", &[2], &[0; 8]);
    for n in [0, 4, 8, 20, good.len() - 1] {
        fs::write(&p, &good[..n]).unwrap();
        err_naming(load_safetensors(&p), &p);
    }
    let p = d.join("huge_header.safetensors");
    fs::write(&p, u64::MAX.to_le_bytes()).unwrap();
    err_naming(load_safetensors(&p), &p);
    fs::remove_dir_all(&d).unwrap();
}
