//! Where gated's parallel work runs.
//!
//! Every parallel region of a training step (the recurrent layers' row blocks,
//! the parts of a large product, the optimizer's halves, clearing a large
//! gradient) is a `rayon` join or scope. Started from a thread outside rayon's
//! pool (a program's main thread), each region is handed to the pool while the
//! caller sleeps until it is done: two thread wake-ups per region, dozens per
//! step. Started from a worker of the pool, the second half is pushed on the
//! worker's own queue and taken by the other, still spinning, worker.
//! [`in_pool`] moves a whole step onto a worker once; the model's and the
//! optimizer's entry points call it, so nested calls cost nothing more.
//!
//! Measured (`gated bench`, 2 threads, three alternating rounds against the
//! code without it): A's training step 5.77-5.82 ms against 6.13-6.57, B's
//! 19.4-19.7 against 22.3-23.8; C (long GEMMs, few regions) within the noise.
//!
//! How many threads: [`resolve`] picks the count the way `gated` does (the
//! `--threads` flag, else [`ENV_VAR`], else every core, as PyTorch's
//! `torch.set_num_threads` / `OMP_NUM_THREADS`), and [`set_num_threads`]
//! applies it. Results do not depend on the count: every parallel region
//! splits its work at fixed points or into independent outputs (see
//! `tests/threads.rs`).

use std::ffi::OsStr;

use crate::{Error, Result};

/// The environment variable read when no thread count is given explicitly.
pub const ENV_VAR: &str = "GATED_NUM_THREADS";

/// The cores this process may use (`std::thread::available_parallelism`;
/// 1 when that is unknown).
pub fn available() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The thread count from a `--threads` value, else the [`ENV_VAR`] value,
/// else [`available`]. An empty environment value counts as unset. A value
/// that is not a whole number of at least 1 is an error naming the flag or
/// the variable.
pub fn resolve(flag: Option<&str>, env: Option<&OsStr>) -> Result<usize> {
    if let Some(v) = flag {
        return parse_count(v).ok_or_else(|| {
            Error::invalid(
                "--threads",
                format!("{v:?} is not a thread count; give a whole number of 1 or more"),
            )
        });
    }
    match env {
        Some(v) if !v.is_empty() => v.to_str().and_then(parse_count).ok_or_else(|| {
            Error::invalid(
                ENV_VAR,
                format!(
                    "{v:?} is not a thread count; set a whole number of 1 or more, or unset it \
                     to use every core ({})",
                    available()
                ),
            )
        }),
        _ => Ok(available()),
    }
}

fn parse_count(v: &str) -> Option<usize> {
    v.trim().parse::<usize>().ok().filter(|&n| n >= 1)
}

/// Runs the parallel parts of gated on `n` threads (at least 1): the split of
/// the products and of the other parallel regions, and the size of rayon's
/// global pool when this is called before the pool first runs anything (later
/// calls change the split only). `gated` calls it once at startup.
pub fn set_num_threads(n: usize) {
    let n = n.max(1);
    crate::kernels::gemm::set_threads(n);
    // Fails only when the pool already exists; its size then stays as it is.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global();
}

/// The thread count set by [`set_num_threads`] (1 until it is called).
pub fn num_threads() -> usize {
    crate::kernels::gemm::threads()
}

/// Runs `f` on a worker thread of rayon's pool, or directly when the calling
/// thread is one already. The result (and a panic) comes back to the caller.
pub fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    rayon::scope(|_| f())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_environment_beats_every_core() {
        let env = |s: &str| Some(OsStr::new(s).to_owned());
        assert_eq!(resolve(Some("3"), env("5").as_deref()).unwrap(), 3);
        assert_eq!(resolve(None, env(" 5 ").as_deref()).unwrap(), 5);
        assert_eq!(resolve(None, None).unwrap(), available());
        assert_eq!(resolve(None, env("").as_deref()).unwrap(), available());
        for bad in ["0", "abc", "-2", "1.5", ""] {
            let e = resolve(Some(bad), None).unwrap_err().to_string();
            assert!(e.contains("--threads") && e.contains("1 or more"), "{e}");
        }
        for bad in ["0", "abc", "-1"] {
            let e = resolve(Some("2"), env(bad).as_deref()).unwrap();
            assert_eq!(e, 2, "the flag wins even over a bad variable");
            let e = resolve(None, env(bad).as_deref()).unwrap_err().to_string();
            assert!(e.contains(ENV_VAR) && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn runs_on_a_worker_once_and_returns_the_result() {
        assert_eq!(rayon::current_thread_index(), None);
        let (outer, inner) = in_pool(|| {
            let outer = rayon::current_thread_index();
            (outer, in_pool(rayon::current_thread_index))
        });
        assert!(outer.is_some());
        assert_eq!(inner, outer, "a nested call stays on the same worker");
        let r = std::panic::catch_unwind(|| in_pool(|| panic!("boom")));
        assert!(r.is_err(), "a panic reaches the caller");
    }
}
