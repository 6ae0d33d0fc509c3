//! Crafted data files against the `gated` CLI (issue 19): each test builds
//! its attack file itself, small on disk, and checks that gated refuses it
//! with one `error: ` line naming the file (and the member, line or value at
//! fault), without a panic, an abort or the memory the file asks for.
//!
//! `compare` prints a `loading ...` progress line before it reads a data set,
//! so its cases require exactly one `error: ` line, and that it is the last.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gated-crafted-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gated(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gated"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap()
}

/// The one error line of a failed run, after checking that it failed by
/// exiting (not by a signal), did not panic, printed exactly one `error: `
/// line and printed it last, and that the line names `file` and each of `also`.
fn refused(o: &Output, file: &Path, also: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code().is_some_and(|c| c != 0),
        "{:?}: {stderr}",
        o.status
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().last(),
        Some(errors[0]),
        "{stderr}"
    );
    let line = errors[0].to_string();
    assert!(line.contains(&file.display().to_string()), "{line}");
    for a in also {
        assert!(line.contains(a), "{line} lacks {a:?}");
    }
    line
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// A univariate two-class `.ts` file whose second case holds `value`.
fn ts_with(path: &Path, value: &str) {
    write(
        path,
        &format!(
            "@problemName T\n@univariate true\n@classLabel true a b\n@data\n\
             1,2,3,4:a\n1,{value},3,4:b\n1,?,3,4:a\n4,3,2,NaN:b\n"
        ),
    );
}

/// `inf` in a `.ts` file was read as 0 without a word; now it is refused with
/// the line and value, while `?` and NaN (missing values) still load.
#[test]
fn ts_infinity_is_refused_with_its_line() {
    let d = temp_dir("ts");
    let ok = d.join("ok_TEST.ts");
    ts_with(&ok, "2");
    let out = d.join("out");
    for (i, value) in ["inf", "-Infinity", "1e39"].iter().enumerate() {
        let bad = d.join(format!("bad{i}_TRAIN.ts"));
        ts_with(&bad, value);
        let spec = format!("ts:{},{}", bad.display(), ok.display());
        let o = gated(&[&"compare", &"--data", &spec, &"--out", &out]);
        let want = format!("'{value}' is not finite");
        refused(&o, &bad, &["line 6", "value 2", &want]);
    }
    assert!(!out.join("report.md").exists());
    // The same files with a finite value train (missing values read as 0).
    let good = d.join("good_TRAIN.ts");
    ts_with(&good, "2.5");
    let spec = format!("ts:{},{}", good.display(), ok.display());
    let o = gated(&[
        &"compare",
        &"--data",
        &spec,
        &"--cells",
        &"gru",
        &"--epochs",
        &"1",
        &"--out",
        &out,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_dir_all(&d);
}

/// NaN in a CSV named no file or line (the scaler's "column 0 has non-finite
/// values"); now each non-finite cell is refused where it is, with the file's
/// own line numbers even when columns are skipped and blank lines precede it.
#[test]
fn csv_non_finite_values_name_file_line_and_column() {
    let d = temp_dir("csv");
    let out = d.join("out");
    for (i, cell) in ["NaN", "inf", "-inf", "1e39"].iter().enumerate() {
        let csv = d.join(format!("series{i}.csv"));
        let mut text = String::from("Date,value\n\n");
        for t in 0..30 {
            let v = if t == 20 {
                cell.to_string()
            } else {
                format!("{}", t as f32 * 0.5)
            };
            text.push_str(&format!("2020-{t},{v}\n"));
        }
        write(&csv, &text);
        let spec = format!("csv:{},target=value,lookback=3,skip=Date", csv.display());
        let o = gated(&[&"compare", &"--data", &spec, &"--out", &out]);
        let want = format!("'{cell}' is not a finite number");
        let line = refused(&o, &csv, &["line 23", "column 2 ('value')", &want]);
        assert!(!line.contains("gated-compare-"), "{line}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

// ---------------------------------------------------------------------------
// Zip bombs: `.npz` members that declare or inflate to gigabytes.

/// Runs `gated` with at most `mib` MiB of address space (`ulimit -v`), so an
/// attempt to allocate what a crafted file asks for fails (an abort, which
/// the checks see as a signal) instead of taking the test machine's memory.
fn gated_limited(mib: u64, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {} && exec \"$0\" \"$@\"", mib * 1024))
        .arg(env!("CARGO_BIN_EXE_gated"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap()
}

/// The header of an `.npy` file with this descr and shape.
fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    gated::io::npy::npy_file_bytes(descr, shape, 0)
}

/// Raw deflate blocks (not final) holding `bytes`, ending byte-aligned, so
/// that such segments can be concatenated.
fn deflate_segment(bytes: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut c = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(bytes.len() / 500 + 1024);
    loop {
        let done = c.total_in() as usize;
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity());
        }
        c.compress_vec(&bytes[done..], &mut out, FlushCompress::Full)
            .unwrap();
        if c.total_in() as usize == bytes.len() && out.capacity() > out.len() {
            return out;
        }
    }
}

/// A raw deflate stream of `head` followed by `copies` times `segment` (all
/// from [`deflate_segment`]), closed by an empty final block.
fn deflate_stream(head: &[u8], segment: &[u8], copies: usize) -> Vec<u8> {
    let mut s = deflate_segment(head);
    for _ in 0..copies {
        s.extend_from_slice(segment);
    }
    s.extend_from_slice(&[0x03, 0x00]);
    s
}

/// One zip member: its name, raw deflate data, the uncompressed size the
/// archive declares for it, and its CRC-32 (0 where the test does not care).
struct Member {
    name: &'static str,
    deflated: Vec<u8>,
    declared: u32,
    crc: u32,
}

/// A member holding `bytes`, declared truthfully.
fn honest(name: &'static str, bytes: &[u8]) -> Member {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    Member {
        name,
        deflated: deflate_stream(bytes, &[], 0),
        declared: bytes.len() as u32,
        crc: crc.sum(),
    }
}

/// A zip archive, written by hand so that a member may declare any size.
fn zip_of(members: &[Member]) -> Vec<u8> {
    let u16le = |v: u16| v.to_le_bytes();
    let u32le = |v: u32| v.to_le_bytes();
    let mut out = Vec::new();
    let mut central = Vec::new();
    for m in members {
        let offset = out.len() as u32;
        let fixed = |sig: u32, out: &mut Vec<u8>| {
            out.extend_from_slice(&u32le(sig));
            if sig == 0x0201_4b50 {
                out.extend_from_slice(&u16le(20)); // version made by
            }
            out.extend_from_slice(&u16le(20)); // version needed
            out.extend_from_slice(&u16le(0)); // flags
            out.extend_from_slice(&u16le(8)); // deflate
            out.extend_from_slice(&u16le(0)); // time
            out.extend_from_slice(&u16le(0x21)); // date
            out.extend_from_slice(&u32le(m.crc));
            out.extend_from_slice(&u32le(m.deflated.len() as u32));
            out.extend_from_slice(&u32le(m.declared));
            out.extend_from_slice(&u16le(m.name.len() as u16));
            out.extend_from_slice(&u16le(0)); // extra
        };
        fixed(0x0403_4b50, &mut out);
        out.extend_from_slice(m.name.as_bytes());
        out.extend_from_slice(&m.deflated);
        fixed(0x0201_4b50, &mut central);
        central.extend_from_slice(&u16le(0)); // comment
        central.extend_from_slice(&u16le(0)); // disk
        central.extend_from_slice(&u16le(0)); // internal attributes
        central.extend_from_slice(&u32le(0)); // external attributes
        central.extend_from_slice(&u32le(offset));
        central.extend_from_slice(m.name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&u32le(0x0605_4b50));
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&u16le(members.len() as u16));
    out.extend_from_slice(&u16le(members.len() as u16));
    out.extend_from_slice(&u32le(central.len() as u32));
    out.extend_from_slice(&u32le(cd_offset));
    out.extend_from_slice(&u16le(0));
    out
}

/// A small honest `<i4` member.
fn ints(name: &'static str, shape: &[usize], values: &[i32]) -> Member {
    let mut b = npy_header("<i4", shape);
    for v in values {
        b.extend_from_slice(&v.to_le_bytes());
    }
    honest(name, &b)
}

/// Zeros are deflated in segments of this many bytes, repeated.
const SEGMENT: usize = 1 << 26;
/// Segments in a bomb: 45 x 64 MiB = 3,019,898,880 bytes of zeros.
const COPIES: usize = 45;

/// A valid member whose data is `COPIES * SEGMENT` zeros after `header`
/// (about 3 GB, CRC included), from a few MB of deflate.
fn bomb(name: &'static str, header: Vec<u8>, zero_segment: &[u8], zeros: &[u8]) -> Member {
    let declared = header.len() + COPIES * SEGMENT;
    let mut crc = flate2::Crc::new();
    crc.update(&header);
    for _ in 0..COPIES {
        crc.update(zeros);
    }
    Member {
        name,
        deflated: deflate_stream(&header, zero_segment, COPIES),
        declared: u32::try_from(declared).unwrap(),
        crc: crc.sum(),
    }
}

/// The attack of issue 19: `gated compare --data imdb:bomb.npz` with a
/// 3 MB file whose members inflate to 3 GB took 6.4 GB of RSS before the
/// shape was rejected. Each bomb must now be refused from its headers (or,
/// for a central directory that lies, after at most the declared bytes),
/// within 1 GiB of address space, naming the file and the member.
#[test]
fn npz_bombs_are_refused_before_they_inflate() {
    let d = temp_dir("bomb");
    let out = d.join("out");
    let zeros = vec![0u8; SEGMENT];
    let zero_segment = deflate_segment(&zeros);
    let small_test = || {
        [
            ints("x_test.npy", &[2, 2], &[4, 5, 6, 7]),
            ints("y_test.npy", &[2], &[1, 0]),
        ]
    };

    // 1. x_train declares 755 million float32 zeros: not a list of sequences.
    let [xt, yt] = small_test();
    let shape = [COPIES * SEGMENT / 4];
    let a = zip_of(&[
        bomb(
            "x_train.npy",
            npy_header("<f4", &shape),
            &zero_segment,
            &zeros,
        ),
        ints("y_train.npy", &[3], &[0, 1, 1]),
        xt,
        yt,
    ]);
    // 2. A consistent bomb: 45 sequences of 67 million int8 zeros, and 45
    //    labels; as f32 that is 12 GB, over any cap.
    let [xt, yt] = small_test();
    let b = zip_of(&[
        bomb(
            "x_train.npy",
            npy_header("|i1", &[COPIES, SEGMENT]),
            &zero_segment,
            &zeros,
        ),
        honest("y_train.npy", &{
            let mut y = npy_header("|i1", &[COPIES]);
            y.extend(std::iter::repeat_n(1u8, COPIES));
            y
        }),
        xt,
        yt,
    ]);
    // 3. A central directory that lies: y_test declares its 2 labels
    //    (header + 8 bytes), but its stream inflates to 3 GB. (This one was
    //    already read through a `take` of the declared size; kept as a guard.)
    let [xt, _] = small_test();
    let mut y = npy_header("<i4", &[2]);
    y.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
    let liar = Member {
        name: "y_test.npy",
        deflated: deflate_stream(&y, &zero_segment, COPIES),
        declared: y.len() as u32,
        crc: 0,
    };
    drop(zeros);
    let c = zip_of(&[
        ints("x_train.npy", &[3, 2], &[1, 2, 3, 4, 5, 6]),
        ints("y_train.npy", &[3], &[0, 1, 1]),
        xt,
        liar,
    ]);

    for (name, bytes, also) in [
        ("shape_bomb.npz", a, &["x_train", "[754974720]"][..]),
        (
            "consistent_bomb.npz",
            b,
            &["x_train", "nothing was inflated"][..],
        ),
        ("lying_size.npz", c, &["y_test.npy", "declared"][..]),
    ] {
        let p = d.join(name);
        assert!(bytes.len() < 8 << 20, "{name}: {} bytes", bytes.len());
        std::fs::write(&p, &bytes).unwrap();
        let spec = format!("imdb:{}", p.display());
        let o = gated_limited(1024, &[&"compare", &"--data", &spec, &"--out", &out]);
        refused(&o, &p, also);
    }
    assert!(!out.join("report.md").exists());
    if std::env::var_os("GATED_KEEP_BOMBS").is_none() {
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// The same hand-made archive, with honest sizes, loads: the refusals above
/// are for the bombs, not for the way the test writes zips.
#[test]
fn a_hand_made_npz_of_honest_members_loads() {
    use gated::datasets::keras::{load_imdb, LoadOptions};
    use gated::io::{NpzFile, NpzLimits};
    let d = temp_dir("honest");
    let p = d.join("imdb.npz");
    std::fs::write(
        &p,
        zip_of(&[
            ints("x_train.npy", &[3, 2], &[1, 2, 3, 4, 5, 6]),
            ints("y_train.npy", &[3], &[0, 1, 1]),
            ints("x_test.npy", &[2, 2], &[4, 5, 6, 7]),
            ints("y_test.npy", &[2], &[1, 0]),
        ]),
    )
    .unwrap();
    let (train, test) = load_imdb(&p, &LoadOptions::default()).unwrap();
    assert_eq!((train.x.len(), test.x.len()), (3, 2));
    // The cap counts every member as f32: 6 + 3 + 4 + 2 values = 60 bytes.
    NpzFile::open(&p, NpzLimits { max_bytes: 60 }).unwrap();
    let e = NpzFile::open(&p, NpzLimits { max_bytes: 59 })
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("y_test.npy") && e.contains("60 bytes in memory"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

// ---------------------------------------------------------------------------
// Memory: inputs read in batches, and allocations that fail cleanly.

/// A model directory taking `[1, width]` float sequences, 2 outputs.
fn wide_model(dir: &Path, width: usize) {
    use gated::model::dir::{save_model_dir, SaveExtras};
    let spec = format!(
        "[input]\nshape = [1, {width}]\ndtype = \"float32\"\n\
         [[layer]]\ntype = \"lstm\"\nunits = 2\n\
         [[layer]]\ntype = \"dense\"\nunits = 2\n"
    );
    let m = gated::model::spec::parse_spec(Path::new("spec.toml"), &spec, false, 1).unwrap();
    save_model_dir(dir, &m, &spec, &SaveExtras::default()).unwrap();
}

/// An `<f4` (or other) `.npy` file of `shape`, all zeros, sparse on disk.
fn sparse_npy(path: &Path, descr: &str, shape: &[usize], elem: usize) {
    let header = npy_header(descr, shape);
    let n: usize = shape.iter().product();
    std::fs::write(path, &header).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len((header.len() + n * elem) as u64).unwrap();
}

/// `gated predict` held the whole input twice (its bytes and its f32
/// tensor): 200,000 x [50, 32] took 2.51 GB. Now it reads and writes one
/// batch at a time: a 629 MB input runs within 512 MiB of address space,
/// which the input alone would not fit in, and so does `gated eval`.
#[test]
fn predict_and_eval_stream_inputs_larger_than_their_memory() {
    let d = temp_dir("stream");
    let model = d.join("model");
    let width = 1 << 16;
    let n = 2400;
    wide_model(&model, width);
    let x = d.join("x.npy");
    sparse_npy(&x, "<f4", &[n, 1, width], 4);
    let out = d.join("y_pred.npy");
    let o = gated_limited(
        512,
        &[&"predict", &"--model", &model, &"--x", &x, &"--out", &out],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let y = gated::io::read_npy(&out).unwrap();
    assert_eq!(y.shape(), [n, 2]);
    // Every input is zeros, so every output equals the first.
    let first = [y.data()[0], y.data()[1]];
    assert!(first.iter().all(|v| v.is_finite()));
    assert!(y.data().chunks(2).all(|r| r == first), "rows differ");

    let labels = d.join("y.npy");
    gated::io::write_npy_i32(&labels, &[n], &vec![1; n]).unwrap();
    let o = gated_limited(
        512,
        &[&"eval", &"--model", &model, &"--x", &x, &"--y", &labels],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("loss: "));
    let _ = std::fs::remove_dir_all(&d);
}

/// Out of memory was an abort (`memory allocation of 1280000000 bytes
/// failed`, SIGABRT). A layer whose parameters, or an array whose values,
/// do not fit is now one error line naming the file.
#[test]
fn allocations_that_do_not_fit_are_errors() {
    let d = temp_dir("oom");
    // 200 million parameters (800 MB, 1.6 GB with gradients): under the
    // per-model limit, over the 512 MiB the run may use.
    let spec = d.join("wide.toml");
    write(
        &spec,
        "[input]\nshape = [10000]\n[[layer]]\ntype = \"dense\"\nunits = 20000\n",
    );
    let o = gated_limited(512, &[&"summary", &spec]);
    refused(&o, &spec, &["weight [20000, 10000]", "not enough memory"]);

    // Labels of 2 GB (sparse on disk) for `eval`.
    let model = d.join("model");
    wide_model(&model, 4);
    let x = d.join("x.npy");
    sparse_npy(&x, "<f4", &[3, 1, 4], 4);
    let y = d.join("y.npy");
    sparse_npy(&y, "<f4", &[1 << 29], 4);
    let o = gated_limited(512, &[&"eval", &"--model", &model, &"--x", &x, &"--y", &y]);
    refused(&o, &y, &["[536870912]", "not enough memory"]);
    let _ = std::fs::remove_dir_all(&d);
}
