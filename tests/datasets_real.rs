//! Checks on the real data sets where a machine has them (see
//! `docs/datasets.md`); each test passes without checking anything, and says
//! so, when its files are absent.
//!
//! - Fashion-MNIST from Debian's `dataset-fashion-mnist` package, at
//!   `/usr/share/datasets/fashion-mnist/` (or `GATED_FASHION_MNIST_DIR`).
//! - JapaneseVowels from the aeon or sktime wheel: set
//!   `GATED_JAPANESE_VOWELS_DIR` to the folder holding
//!   `JapaneseVowels_TRAIN.ts` and `JapaneseVowels_TEST.ts`.

use std::path::PathBuf;

use gated::datasets::idx::load_idx_pair;
use gated::datasets::ts::read_ts;

#[test]
fn fashion_mnist_from_debian() {
    let dir = PathBuf::from(
        std::env::var("GATED_FASHION_MNIST_DIR")
            .unwrap_or_else(|_| "/usr/share/datasets/fashion-mnist".into()),
    );
    let images = dir.join("t10k-images-idx3-ubyte.gz");
    if !images.exists() {
        eprintln!("skipped: {} not found", images.display());
        return;
    }
    let (x, y) = load_idx_pair(&images, dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(x.shape(), &[10_000, 28, 28]);
    assert_eq!(y.len(), 10_000);
    assert!(x.data().iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(x.data().contains(&1.0));
    // Ten classes, 1,000 test images each.
    let mut counts = [0usize; 10];
    for &l in &y {
        counts[l as usize] += 1;
    }
    assert_eq!(counts, [1000; 10]);
    let (x, y) = load_idx_pair(
        dir.join("train-images-idx3-ubyte.gz"),
        dir.join("train-labels-idx1-ubyte.gz"),
    )
    .unwrap();
    assert_eq!((x.shape(), y.len()), (&[60_000usize, 28, 28][..], 60_000));
}

#[test]
fn japanese_vowels_from_aeon_or_sktime() {
    let Ok(dir) = std::env::var("GATED_JAPANESE_VOWELS_DIR") else {
        eprintln!("skipped: GATED_JAPANESE_VOWELS_DIR not set");
        return;
    };
    let dir = PathBuf::from(dir);
    for (name, n) in [
        ("JapaneseVowels_TRAIN.ts", 270),
        ("JapaneseVowels_TEST.ts", 370),
    ] {
        let d = read_ts(dir.join(name)).unwrap();
        assert_eq!(d.problem_name.as_deref(), Some("JapaneseVowels"));
        assert_eq!(d.class_labels.len(), 9);
        assert_eq!(d.x.shape()[0], n, "{name}");
        assert_eq!(d.x.shape()[2], 12);
        assert!(d.x.shape()[1] <= 29);
        assert!(d.lengths.iter().all(|&l| (7..=29).contains(&l)));
        let real: f32 = d.mask.data().iter().sum();
        assert_eq!(real as usize, d.lengths.iter().sum::<usize>());
        assert!(d.labels.iter().all(|&l| (0..9).contains(&l)));
    }
}
