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
