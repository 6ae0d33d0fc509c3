//! A top-level save that runs out of space leaves the previous model in the
//! directory loadable (issue 19, item 4). Its own test binary, because the
//! file-size limit that stands in for a full disk applies to the whole process.

#[cfg(unix)]
#[test]
fn a_save_that_runs_out_of_space_leaves_the_previous_model_loadable() {
    use gated::model::dir::WEIGHTS_FILE;
    use gated::model::spec::parse_spec;
    use gated::model::{load_model_dir, save_model_dir, SaveExtras};
    use std::path::Path;

    let spec = |units: usize| {
        format!(
            "[input]\nshape = [4, 3]\n[[layer]]\ntype = \"lstm\"\nunits = {units}\n\
             [[layer]]\ntype = \"dense\"\nunits = 1\n"
        )
    };
    let (small_spec, large_spec) = (spec(4), spec(64));
    let small = parse_spec(Path::new("small.toml"), &small_spec, false, 1).unwrap();
    let large = parse_spec(Path::new("large.toml"), &large_spec, false, 2).unwrap();
    let d = std::env::temp_dir().join(format!("gated-disk-full-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    save_model_dir(&d, &small, &small_spec, &SaveExtras::default()).unwrap();
    let small_bytes = std::fs::metadata(d.join(WEIGHTS_FILE)).unwrap().len();

    // Files may grow to a little more than the small model's weights, far
    // less than the large model's (~70 KB): writing those fails with EFBIG,
    // as it would with ENOSPC on a full disk.
    let limit = small_bytes + 4096;
    // SAFETY: plain libc calls on values owned here; SIGXFSZ would otherwise
    // kill the process at the first write past the limit.
    let before = unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut old = std::mem::zeroed::<libc::rlimit>();
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut old), 0);
        let new = libc::rlimit {
            rlim_cur: limit,
            rlim_max: old.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &new), 0);
        old
    };
    let result = save_model_dir(&d, &large, &large_spec, &SaveExtras::default());
    // SAFETY: restores the limit read above.
    unsafe {
        libc::setrlimit(libc::RLIMIT_FSIZE, &before);
    }
    let e = result
        .expect_err("the large save should not fit")
        .to_string();
    assert!(e.contains(WEIGHTS_FILE), "{e}");

    let loaded = load_model_dir(&d).expect("the previous model must stay loadable");
    assert_eq!(loaded.spec_text, small_spec);
    for (a, b) in loaded.model.params().iter().zip(small.params()) {
        assert_eq!(a.values, b.values);
    }
    let debris: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(debris.is_empty(), "left behind: {debris:?}");
    // And a save that fits replaces it.
    save_model_dir(&d, &large, &large_spec, &SaveExtras::default()).unwrap();
    assert_eq!(load_model_dir(&d).unwrap().spec_text, large_spec);
    std::fs::remove_dir_all(&d).ok();
}
