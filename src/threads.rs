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
//! Measured (probe of the training step in parts, 2 threads, three alternating
//! rounds, medians): A's forward 1.86-1.88 ms against 2.19-2.35 from the main
//! thread, backward 2.38-2.40 against 2.65-2.86; B's forward 5.80-5.88 against
//! 6.19-6.33, backward 10.1-10.2 against 10.9-11.0.

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
